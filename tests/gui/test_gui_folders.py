"""Adding folders: the empty state, progress to the total, the grid filling; removing."""

from __future__ import annotations

import sys
import threading
import traceback

from .guihelpers import drop, photo, wait_idle

from clipdesk._library import Library, LibraryOptions


def test_first_run_add_folder_progress_reaches_total_and_grid_fills(qtbot, make_window, photos):
    window = make_window()
    qtbot.waitUntil(lambda: window._folders_known, timeout=10_000)
    assert window.pages.currentWidget() is window.empty  # says what to do

    bar: list[tuple[int, int]] = []
    window.progress.valueChanged.connect(lambda v: bar.append((v, window.progress.maximum())))
    drop(window, [photos])  # a folder dropped on the window is added
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


def test_closing_while_indexing_stops_cleanly_and_keeps_the_work(qtbot, make_window, tmp_path, db_path):
    earlier = set(threading.enumerate())  # only this test's threads are its business
    folder = tmp_path / "many"
    for i in range(150):
        photo(folder / f"{i:03d}.png", ("red", "green", "blue")[i % 3])
    window = make_window()
    window.add_folder(str(folder))
    qtbot.waitUntil(lambda: window.progress.isVisibleTo(window), timeout=20_000)
    window.shutdown()  # what closing the window does
    leftover = [t for t in threading.enumerate() if t.name.startswith("clipdesk") and t not in earlier]
    for t in leftover:  # say where a thread that did not stop is stuck
        print(t.name, t.ident, "".join(traceback.format_stack(sys._current_frames()[t.ident])))
    assert [t.name for t in leftover] == []
    with Library(LibraryOptions(db_path=db_path)) as library:
        assert library.store.integrity() == "ok"
        assert len(library.folders()) == 1


def test_without_a_model_the_window_says_what_to_do(qtbot, make_window, tmp_path, photos):
    window = make_window(model=str(tmp_path / "no-such-model"))
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=20_000)
    assert "No model folder" in window.last_error
    assert "Settings" in window.last_error
    window.search_box.setText("red")
    window.run_search()  # answered with a message, not a crash
    qtbot.waitUntil(lambda: window.worker.in_flight == 0, timeout=10_000)
    assert window.notice.isVisibleTo(window)


def test_status_bar_shows_download_and_indexing_progress_and_pauses(qtbot, make_window):
    from clipdesk._events import Idle, ModelDownloading, ModelReady, Progress

    window = make_window()
    wait_idle(qtbot, window)
    window._on_event(ModelDownloading(50, 200, "model.safetensors"))
    assert window.progress.isVisibleTo(window) and window.progress.text() == "25%"
    window._on_event(ModelReady("clipdesk-test:colours"))
    assert not window.progress.isVisibleTo(window)

    window._on_event(Progress(300, 1200, encoded=300, failed=0, rate=10.0, folder="/photos/2024"))
    assert window.progress.text() == "300 / 1200"
    assert window.progress_label.text() == "Indexing 2024 · 10.0 photos/s · 2 min left"
    window.toggle_pause()
    qtbot.waitUntil(lambda: window.worker.paused, timeout=5_000)
    assert window.pause_button.text() == "Resume"
    window.toggle_pause()
    qtbot.waitUntil(lambda: not window.worker.paused, timeout=5_000)
    window._on_event(Idle(1200))
    assert not window.progress.isVisibleTo(window)


def test_an_edited_photo_shows_its_new_picture(qtbot, make_window, photos):
    window = make_window()
    window.show()
    window.add_folder(str(photos))
    qtbot.waitUntil(lambda: window.model.rowCount() == 8, timeout=20_000)
    wait_idle(qtbot, window)
    target = str(photos / "yellow1.gif")
    row = window.model.row_of(next(h.image_id for h in window.model.hits() if h.path == target))
    image_id = window.model.hit(row).image_id
    qtbot.waitUntil(lambda: window.loader.pixmap(image_id, target) is not None, timeout=10_000)

    photo(photos / "yellow1.gif", "blue")  # edited in another program: same file, new content

    def shows_blue() -> bool:
        window.view.viewport().repaint()  # rows on screen ask for their thumbnails
        pixmap = window.loader.pixmap(image_id, target)
        if pixmap is None:
            return False
        c = pixmap.toImage().pixelColor(pixmap.width() // 2, pixmap.height() // 2)
        return c.blue() > 200 and c.red() < 50

    qtbot.waitUntil(shows_blue, timeout=20_000)


def test_pause_and_closing_do_not_wait_behind_file_work(qtbot, make_window):
    window = make_window()
    wait_idle(qtbot, window)
    began, release, finished = threading.Event(), threading.Event(), threading.Event()

    def long_copy() -> None:  # a sort into folders of many large photos
        began.set()
        release.wait(30)
        finished.set()

    window.worker.run(long_copy)
    assert began.wait(10)
    try:
        window.toggle_pause()
        qtbot.waitUntil(lambda: window.worker.paused, timeout=5_000)
        window.toggle_pause()
        qtbot.waitUntil(lambda: not window.worker.paused, timeout=5_000)
        window.shutdown()  # what closing the window does
        assert not finished.is_set()  # it returned without waiting for the copy
        assert window.worker.closing  # which stops at its next file
    finally:
        release.set()


def test_sorting_stops_at_the_next_file_when_asked(tmp_path):
    from clipdesk._gui.mainwindow import sort_photos
    from clipdesk._sorting import plan_sort

    sources = [photo(tmp_path / "in" / f"{i}.png", "red") for i in range(3)]
    plan = plan_sort([(str(p), "red") for p in sources], tmp_path / "out")
    asked = iter([False, True])
    report = sort_photos(plan, move=False, stop=lambda: next(asked))
    assert report.done == 1 and not report.failed
    assert len(list((tmp_path / "out" / "red").iterdir())) == 1
