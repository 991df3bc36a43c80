"""Searching from the window: typed words, negative terms, relevance, more like this."""

from __future__ import annotations

from .guihelpers import colour_of, index, photo, row_paths, wait_idle
from PySide6.QtCore import Qt

from clipdesk._querytext import parse_query


def test_typing_a_query_shows_the_matching_photos_first(qtbot, make_window, photos, db_path):
    index(db_path, photos)
    window = make_window()
    wait_idle(qtbot, window)
    assert window.search_box.hasFocus() or not window.isVisible()  # focused when shown
    with qtbot.waitSignal(window.results_shown, timeout=10_000):
        qtbot.keyClicks(window.search_box, "red")  # debounced: no Enter needed
    first = [colour_of(p) for p in row_paths(window)[:3]]
    assert first == ["red", "red", "red"]
    assert "best first" in window.count_label.text()

    # The relevance control hides the weak matches, without searching again.
    window.relevance.setValue(90)
    assert {colour_of(p) for p in row_paths(window)} == {"red"}
    assert "hidden" in window.count_label.text()


def test_negative_terms_and_more_like_this_combine_with_the_words(qtbot, make_window, tmp_path, db_path):
    folder = tmp_path / "mixed"
    # Orange sits between red and yellow; "-yellow" must push the yellowish orange down.
    for name, colour in [("red.jpg", "red"), ("orange.jpg", "orange"), ("yellow.jpg", "yellow"),
                         ("blue.jpg", "blue")]:
        photo(folder / name, colour)
    index(db_path, folder)
    window = make_window()
    wait_idle(qtbot, window)
    window.search_box.setText("orange -yellow")
    with qtbot.waitSignal(window.results_shown, timeout=10_000):
        qtbot.keyClick(window.search_box, Qt.Key.Key_Return)
    ranked = [colour_of(p) for p in row_paths(window)]
    assert ranked[0] == "orange"
    assert ranked.index("yellow") > ranked.index("red")

    # Drop a blue photo on the search box: blue comes first, and the example itself is left out.
    window.search_box.setText("-yellow")
    with qtbot.waitSignal(window.results_shown, timeout=10_000):
        window.add_examples([str(folder / "red.jpg")])
    ranked = [colour_of(p) for p in row_paths(window)]
    assert "red" not in ranked  # the example itself is left out
    assert ranked[0] == "orange" and ranked[-1] == "yellow"
    assert window.examples_button.isVisibleTo(window)


def test_query_syntax():
    assert parse_query("red car -night") == parse_query("red car not:night")
    parsed = parse_query('beach -"people swimming" not:dog')
    assert parsed.text == "beach"
    assert parsed.negatives == ("people swimming", "dog")
    assert parse_query('unfinished "quote').text == "unfinished quote"
    assert parse_query("- not:").negatives == ()
    parsed = parse_query('label:beach sunset -night label:"sandy beach" LABEL:Beach label:')
    assert parsed.labels == ("beach", "sandy beach") and parsed.text == "sunset" and parsed.negatives == ("night",)


def test_keyboard_preview_find_similar_and_drag_out(qtbot, make_window, photos, db_path, monkeypatch):
    opened: list[str] = []
    monkeypatch.setattr("clipdesk._gui.desktop.open_file", lambda path: opened.append(path) or True)
    index(db_path, photos)
    window = make_window()
    with qtbot.waitSignal(window.results_shown, timeout=10_000):
        window.search_box.setText("green")
        window.run_search()
    wait_idle(qtbot, window)
    view = window.view
    view.setFocus()
    view.setCurrentIndex(window.model.index(0, 0))
    qtbot.keyClick(view, Qt.Key.Key_Right)  # keyboard navigation moves through the grid
    assert view.currentIndex().row() == 1
    second = window.model.hit(1)
    assert window.preview.fields["Name"].text() == second.path.rsplit("/", 1)[-1]
    qtbot.keyClick(view, Qt.Key.Key_Return)  # Enter (like a double-click) opens the photo
    assert opened == [second.path]
    qtbot.waitUntil(lambda: "pixels" in window.preview.fields["Size"].text(), timeout=10_000)
    assert window.preview.fields["Size"].text().startswith("64 × 48 pixels")

    # "Find similar" (also in the context menu) ranks by that photo and leaves it out.
    with qtbot.waitSignal(window.results_shown, timeout=10_000):
        window.find_similar()
    assert second.path not in row_paths(window)
    assert colour_of(row_paths(window)[0]) == "green"

    # Dragging results out carries the files themselves.
    mime = window.model.mimeData([window.model.index(0, 0)])
    assert mime.urls()[0].toLocalFile() == window.model.hit(0).path


def test_a_refresh_after_background_changes_keeps_the_selection(qtbot, make_window, photos, db_path):
    index(db_path, photos)
    window = make_window()
    qtbot.waitUntil(lambda: window.model.rowCount() == 8, timeout=10_000)
    wait_idle(qtbot, window)
    window.view.setCurrentIndex(window.model.index(2, 0))
    chosen = window.model.hit(2)
    with qtbot.assertNotEmitted(window.model.modelReset), qtbot.waitSignal(window.results_shown):
        window.refresh_results()  # nothing changed: the grid is left alone

    photo(photos / "aaa.png", "red")  # sorts first, so every row moves down by one
    index(db_path, photos)
    with qtbot.waitSignal(window.results_shown, timeout=10_000):
        window.refresh_results()
    assert window.model.rowCount() == 9
    assert window.model.hit(window.view.currentIndex().row()).image_id == chosen.image_id
    wait_idle(qtbot, window)


def test_unsearched_photos_can_be_sorted_newest_first(qtbot, make_window, tmp_path, db_path):
    import os
    from datetime import datetime

    root = tmp_path / "photos"
    for name, year in [("red", 2019), ("green", 2023), ("blue", 2021)]:
        path = photo(root / f"{name}.png", name)
        when = datetime(year, 1, 1).timestamp()
        os.utime(path, (when, when))
    index(db_path, root)
    window = make_window()
    window.show()
    wait_idle(qtbot, window)
    assert [colour_of(p) for p in row_paths(window)] == ["blue", "green", "red"]  # by name
    assert window.page.order.isVisibleTo(window) and not window.relevance.isVisibleTo(window)

    with qtbot.waitSignal(window.results_shown, timeout=10_000):
        window.page.order.setCurrentIndex(window.page.order.findData("newest"))
    assert [colour_of(p) for p in row_paths(window)] == ["green", "blue", "red"]

    with qtbot.waitSignal(window.results_shown, timeout=10_000):
        qtbot.keyClicks(window.search_box, "red")  # a search ranks by relevance instead
    assert colour_of(row_paths(window)[0]) == "red"
    assert window.relevance.isVisibleTo(window) and not window.page.order.isVisibleTo(window)
    window.shutdown()
    assert make_window().page.photo_order() == "newest"  # remembered
