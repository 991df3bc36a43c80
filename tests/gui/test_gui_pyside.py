"""The installed PySide6 keeps None's reference count intact (6.12.0 on Python 3.11 did not)."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtWidgets import QWidget


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12 on")
def test_calls_returning_nothing_keep_none_alive(qtbot):
    widget = QWidget()
    qtbot.addWidget(widget)
    before = sys.getrefcount(None)
    for _ in range(1000):
        widget.update()
    # A broken build loses one reference per call and aborts the app within minutes of use.
    assert sys.getrefcount(None) - before > -100
