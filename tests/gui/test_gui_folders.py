"""Adding folders: the empty state, progress to the total, the grid filling; removing."""

from __future__ import annotations

from guihelpers import wait_idle


def test_first_run_add_folder_progress_reaches_total_and_grid_fills(qtbot, make_window, photos):
    window = make_window()
    qtbot.waitUntil(lambda: window._folders_known, timeout=10_000)
    assert window.pages.currentWidget() is window.empty  # says what to do

    bar: list[tuple[int, int]] = []
    window.progress.valueChanged.connect(lambda v: bar.append((v, window.progress.maximum())))
    window.add_folder(str(photos))
    qtbot.waitUntil(lambda: window.model.rowCount() == 8, timeout=20_000)
    wait_idle(qtbot, window)
    assert bar and bar[-1] == (8, 8)  # the status bar's progress reached the total
    assert window.pages.currentWidget() is window.view
    assert not window.progress.isVisibleTo(window)  # hidden again when done
    assert window.folders_panel.model.rowCount() == 1
    assert window.folders_panel.model.folder(0).images == 8


def test_remove_and_forget_empties_the_grid(qtbot, make_window, photos):
    window = make_window()
    window.add_folder(str(photos))
    qtbot.waitUntil(lambda: window.model.rowCount() == 8, timeout=20_000)
    wait_idle(qtbot, window)
    window.remove_folder(window.folders_panel.model.folder(0).path, forget=True)
    qtbot.waitUntil(lambda: window.model.rowCount() == 0 and window.folders_panel.model.rowCount() == 0,
                    timeout=20_000)
    assert window.pages.currentWidget() is window.empty
    assert photos.joinpath("red1.jpg").exists()  # the photos themselves are never touched


def test_a_missing_folder_is_a_message_not_a_crash(qtbot, make_window, tmp_path):
    window = make_window()
    window.add_folder(str(tmp_path / "nowhere"))
    assert "not a folder" in (window.last_error or "")
