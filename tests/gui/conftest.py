"""GUI fixtures: a main window on a temp library with the colour encoder, temp QSettings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from .guihelpers import COLOUR_MODEL
from PySide6.QtCore import QSettings

from clipdesk._gui.mainwindow import MainWindow
from clipdesk._library import LibraryOptions


@pytest.fixture
def qsettings(tmp_path: Path) -> QSettings:
    """Settings in a temp file, so tests never read or write the user's real ones."""
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


WindowFactory = Callable[..., MainWindow]


@pytest.fixture
def make_window(qtbot, db_path: Path, qsettings: QSettings) -> Iterator[WindowFactory]:
    windows: list[MainWindow] = []

    def make(model: str = COLOUR_MODEL, **kw: object) -> MainWindow:
        window = MainWindow(LibraryOptions(db_path=db_path, model=model), qsettings=qsettings, **kw)
        qtbot.addWidget(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.shutdown()
