"""The "sort into folders" dialog names the folders sorting will really make."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

from clipdesk._gui.sortdialog import SortDialog


def _text(dialog: SortDialog) -> str:
    return "\n".join(label.text() for label in dialog.findChildren(QLabel))


def test_the_dialog_lists_the_folders_sorting_uses(qtbot, tmp_path):
    winners = [("/p/1.jpg", "a/b"), ("/p/2.jpg", "a_b"), ("/p/3.jpg", "a_b"), ("/p/4.jpg", "con"), ("/p/5.jpg", "<b>x")]
    dialog = SortDialog(winners, str(tmp_path))
    qtbot.addWidget(dialog)
    lines = [line.strip() for line in _text(dialog).splitlines()]
    # Two labels that would share "a_b" on disk are shown apart, as sorting keeps them.
    assert "a_b: 2 photos" in lines
    assert "a_b (2): 1 photo (label \u201ca/b\u201d)" in lines
    assert "con_: 1 photo (label \u201ccon\u201d)" in lines
    assert "_b_x: 1 photo (label \u201c<b>x\u201d)" in lines
