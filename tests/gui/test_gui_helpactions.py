"""Help ▸ Copy diagnostics and Help ▸ Open log folder."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication

from clipdesk._gui import helpactions

from .guihelpers import WAIT_MS, index, photo


def _action(window, text):
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    return next(a for a in help_menu.actions() if a.text() == text)


def test_copy_diagnostics_puts_the_doctor_report_on_the_clipboard(qtbot, make_window, db_path, tmp_path):
    index(db_path, photo(tmp_path / "photos" / "red1.jpg", "red").parent)
    window = make_window()
    QGuiApplication.clipboard().setText("")
    _action(window, "Copy &diagnostics").trigger()
    qtbot.waitUntil(lambda: "Where clipdesk keeps its files" in QGuiApplication.clipboard().text(), timeout=WAIT_MS)
    text = QGuiApplication.clipboard().text()
    assert str(db_path) in text and "1 photo in 1 folder" in text


def test_open_log_folder_opens_the_folder_holding_the_log(make_window, monkeypatch, data_dir):
    opened: list[str] = []
    monkeypatch.setattr(helpactions.desktop, "open_file", lambda path: opened.append(path) or True)
    window = make_window()
    _action(window, "Open &log folder").trigger()
    assert opened == [str(data_dir)]
    assert data_dir.is_dir()
