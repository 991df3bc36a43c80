"""The filter row: dates, folders, type, camera and shape narrow what the window shows."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QToolButton

from clipdesk._gui.filterstate import FilterInputs, FilterProblem
from clipdesk._gui.mainwindow import MainWindow
from exifphotos import (
    COMBINED_AFTER, COMBINED_BEFORE, COMBINED_CAMERA, COMBINED_EXPECTED, COMBINED_FOLDER, COMBINED_NOT,
    COMBINED_TEXT, COMBINED_TYPE, add_combined_photos, make_camera_roll,
)

from .guihelpers import WAIT_MS, index, row_paths, wait_idle

EVERY_PHOTO = ["beach.jpg", "sunset.jpg", "poppies.png", "forest.webp", "scan.bmp"]  # by path


@pytest.fixture
def roll(tmp_path: Path, db_path: Path) -> Path:
    root = make_camera_roll(tmp_path / "roll")
    index(db_path, root)
    return root


def names(window: MainWindow) -> list[str]:
    return [Path(p).name for p in row_paths(window)]


def settled(qtbot, window: MainWindow, action: Callable[[], object]) -> None:  # type: ignore[no-untyped-def]
    """Do something to the window and wait until its results and counts have answered."""
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS):
        action()
    wait_idle(qtbot, window)


def choose(box: QComboBox, value: str) -> None:
    index = box.findData(value)
    assert index > 0, [box.itemText(i) for i in range(box.count())]
    box.setCurrentIndex(index)


def type_date(qtbot, edit, text: str) -> None:  # type: ignore[no-untyped-def]
    edit.clear()
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key.Key_Return)


def tick_type(window: MainWindow, file_type: str, checked: bool = True) -> None:
    item = window.filter_bar.type_item(file_type)
    assert item is not None, f"{file_type} is not in the list of types"
    item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)  # as a click does


def type_items(window: MainWindow) -> list[str]:
    model = window.filter_bar.type_model
    return [model.item(row).text() for row in range(model.rowCount())]


def check_folder(window: MainWindow, path: Path, checked: bool = True) -> None:
    item = window.filter_bar.folder_model.item_for(str(path))
    assert item is not None, f"{path} is not in the folder tree"
    item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)  # as a click does


def chip(window: MainWindow, text: str) -> QToolButton:
    found = [c for c in window.filter_bar.chips if c.text().startswith(text)]
    assert len(found) == 1, [c.text() for c in window.filter_bar.chips]
    return found[0]


def items(box: QComboBox) -> list[str]:
    return [box.itemText(i) for i in range(box.count())]


def open_window(qtbot, make_window) -> MainWindow:  # type: ignore[no-untyped-def]
    window = make_window()
    qtbot.waitUntil(lambda: window.model.rowCount() > 0, timeout=WAIT_MS)
    wait_idle(qtbot, window)
    return window


def test_each_filter_narrows_the_photos_shown_without_words(qtbot, make_window, roll):
    window = open_window(qtbot, make_window)
    bar = window.filter_bar
    assert names(window) == EVERY_PHOTO and not bar.chips

    def shown_with(action: Callable[[], object], expected: list[str], chip_text: str) -> None:
        settled(qtbot, window, action)
        assert names(window) == expected
        assert window.count_label.text() == f"{len(expected)} photos"
        noun = "photo matches" if len(expected) == 1 else "photos match"
        assert bar.match_label.text() == f"{len(expected)} of 5 {noun} the filters"
        settled(qtbot, window, chip(window, chip_text).click)  # one click removes it
        assert names(window) == EVERY_PHOTO and not bar.chips

    # Dates as on the command line: a day, month or year, both ends inclusive.
    shown_with(lambda: type_date(qtbot, bar.after, "2019-07-31"), ["sunset.jpg", "poppies.png", "forest.webp"],
               "From 2019-07-31")
    shown_with(lambda: type_date(qtbot, bar.before, "2019-07"), ["beach.jpg", "sunset.jpg", "scan.bmp"],
               "To 2019-07")
    # Any folder inside the library, not only the one added.
    shown_with(lambda: check_folder(window, roll / "2019" / "trip"), ["poppies.png"], "In trip")
    shown_with(lambda: check_folder(window, roll / "2019"), ["beach.jpg", "sunset.jpg", "poppies.png"], "In 2019")
    shown_with(lambda: tick_type(window, "png"), ["poppies.png"], "PNG")
    settled(qtbot, window, lambda: tick_type(window, "webp"))
    settled(qtbot, window, lambda: tick_type(window, "png"))
    assert names(window) == ["poppies.png", "forest.webp"] and bar.types_button.text() == "WebP, PNG"
    settled(qtbot, window, chip(window, "WebP").click)
    settled(qtbot, window, chip(window, "PNG").click)
    assert names(window) == EVERY_PHOTO and bar.types_button.text() == "Any type"
    shown_with(lambda: choose(bar.camera_box, "Apple iPhone 12"), ["sunset.jpg"], "Apple iPhone 12")
    shown_with(lambda: choose(bar.shape_box, "square"), ["poppies.png"], "Square")
    assert not bar.after.text() and not bar.before.text()
    assert bar.camera_box.currentIndex() == bar.shape_box.currentIndex() == 0 and bar.inputs().types == ()


def test_filters_combine_and_clear_with_one_click(qtbot, make_window, roll):
    window = open_window(qtbot, make_window)
    bar = window.filter_bar
    settled(qtbot, window, lambda: choose(bar.camera_box, "Canon EOS 5D"))
    settled(qtbot, window, lambda: type_date(qtbot, bar.after, "2019-08"))
    assert names(window) == ["poppies.png"]
    assert [c.text() for c in bar.chips] == ["From 2019-08 ✕", "Canon EOS 5D ✕"]
    settled(qtbot, window, lambda: qtbot.mouseClick(chip(window, "From"), Qt.MouseButton.LeftButton))
    assert names(window) == ["beach.jpg", "poppies.png"]
    settled(qtbot, window, lambda: choose(bar.shape_box, "landscape"))
    assert names(window) == ["beach.jpg"]
    assert bar.clear_button.isVisibleTo(window)
    settled(qtbot, window, lambda: qtbot.mouseClick(bar.clear_button, Qt.MouseButton.LeftButton))
    assert names(window) == EVERY_PHOTO
    assert bar.inputs() == FilterInputs() and not bar.chips
    assert not bar.clear_button.isVisibleTo(window) and bar.match_label.text() == ""
    assert not bar.status_row.isVisibleTo(window)  # no empty line under the row


def test_counts_follow_the_other_filters(qtbot, make_window, roll):
    window = open_window(qtbot, make_window)
    bar, tree = window.filter_bar, window.filter_bar.folder_model
    assert (tree.count_of(str(roll)), tree.count_of(str(roll / "2019")), tree.count_of(str(roll / "2020"))) == (5, 3, 1)
    assert tree.count_of(str(roll / "2019" / "trip")) == 1
    assert items(bar.shape_box) == ["Any shape", "Landscape (3)", "Portrait (1)", "Square (1)"]
    assert items(bar.camera_box) == ["Any camera", "Canon EOS 5D (2)", "Apple iPhone 12 (1)"]

    settled(qtbot, window, lambda: choose(bar.camera_box, "Canon EOS 5D"))
    # What each choice would give now, with the Canon filter in force; the camera's own list stays.
    assert (tree.count_of(str(roll)), tree.count_of(str(roll / "2019")), tree.count_of(str(roll / "2020"))) == (2, 2, 0)
    assert items(bar.shape_box) == ["Any shape", "Landscape (1)", "Portrait (0)", "Square (1)"]
    assert items(bar.camera_box) == ["Any camera", "Canon EOS 5D (2)", "Apple iPhone 12 (1)"]
    assert type_items(window) == ["JPEG (1)", "PNG (1)"]
    assert bar.match_label.text() == "2 of 5 photos match the filters"

    settled(qtbot, window, lambda: check_folder(window, roll / "2020"))
    assert names(window) == [] and bar.match_label.text() == "0 of 5 photos match the filters"
    assert tree.count_of(str(roll / "2019")) == 2  # the folders' own filter is left out of their counts
    assert items(bar.camera_box) == ["Any camera", "Canon EOS 5D (0)"]  # only forest.webp, no camera


def test_the_filters_survive_a_restart(qtbot, make_window, roll):
    window = open_window(qtbot, make_window)
    bar = window.filter_bar
    settled(qtbot, window, lambda: type_date(qtbot, bar.after, "2019"))
    settled(qtbot, window, lambda: check_folder(window, roll / "2019"))
    settled(qtbot, window, lambda: choose(bar.shape_box, "landscape"))
    settled(qtbot, window, lambda: tick_type(window, "jpeg"))
    assert names(window) == ["beach.jpg"]
    saved = bar.inputs()
    window.shutdown()

    again = make_window()
    assert again.filter_bar.inputs() == saved
    assert [c.text() for c in again.filter_bar.chips] == ["From 2019 ✕", "In 2019 ✕", "JPEG ✕", "Landscape ✕"]
    qtbot.waitUntil(lambda: names(again) == ["beach.jpg"], timeout=WAIT_MS)
    wait_idle(qtbot, again)
    assert again.filter_bar.folder_model.item_for(str(roll / "2019")).checkState() == Qt.CheckState.Checked
    assert again.filter_bar.shape_box.currentData() == "landscape"
    assert again.filter_bar.type_item("jpeg").checkState() == Qt.CheckState.Checked
    assert (again.filter_bar.folders_button.text(), again.filter_bar.types_button.text()) == ("In 2019", "JPEG")


def test_words_and_browsing_use_the_same_filters(qtbot, make_window, roll):
    window = open_window(qtbot, make_window)
    bar = window.filter_bar
    settled(qtbot, window, lambda: window.page.order.setCurrentIndex(window.page.order.findData("newest")))
    settled(qtbot, window, lambda: choose(bar.camera_box, "Canon EOS 5D"))
    assert names(window) == ["poppies.png", "beach.jpg"]  # browsing, newest first
    settled(qtbot, window, lambda: window.search_box.setText("red"))
    assert names(window) == ["poppies.png", "beach.jpg"]  # searching: the red one first, only Canon's
    assert window.count_label.text() == "2 matches, best first"
    settled(qtbot, window, lambda: tick_type(window, "jpeg"))
    assert names(window) == ["beach.jpg"]
    settled(qtbot, window, lambda: window.search_box.clear())
    assert names(window) == ["beach.jpg"]


def test_filters_words_and_a_negative_combine(qtbot, make_window, tmp_path, db_path):
    # The same photos and expectations as the command line's test (tests/test_filters.py).
    roll = make_camera_roll(tmp_path / "roll")
    add_combined_photos(roll)
    index(db_path, roll)
    window = open_window(qtbot, make_window)
    bar = window.filter_bar
    settled(qtbot, window, lambda: check_folder(window, roll / COMBINED_FOLDER))
    settled(qtbot, window, lambda: tick_type(window, COMBINED_TYPE))
    settled(qtbot, window, lambda: choose(bar.camera_box, COMBINED_CAMERA))
    settled(qtbot, window, lambda: type_date(qtbot, bar.after, COMBINED_AFTER))
    settled(qtbot, window, lambda: type_date(qtbot, bar.before, COMBINED_BEFORE))
    settled(qtbot, window, lambda: window.search_box.setText(f"{COMBINED_TEXT} -{COMBINED_NOT}"))
    assert names(window) == COMBINED_EXPECTED
    settled(qtbot, window, lambda: window.search_box.setText(COMBINED_TEXT))
    assert names(window) == ["beach.jpg", "purple-canon.jpg", "red-canon.jpg"]


def test_a_date_that_cannot_be_is_said_in_the_window(qtbot, make_window, roll):
    window = open_window(qtbot, make_window)
    bar = window.filter_bar
    settled(qtbot, window, lambda: type_date(qtbot, bar.after, "2019-07"))
    with qtbot.assertNotEmitted(bar.changed):
        type_date(qtbot, bar.before, "2019-02-30")
    assert bar.problem == "“2019-02-30” is not a date: type 2019, 2019-07 or 2019-07-14."
    assert bar.problem_label.isVisibleTo(window)
    with qtbot.assertNotEmitted(bar.changed):
        type_date(qtbot, bar.before, "2019-06")
    assert bar.problem == "“From 2019-07” is later than “to 2019-06”: no photo can match."
    assert names(window) == ["beach.jpg", "sunset.jpg", "poppies.png", "forest.webp"]  # the last good filter
    settled(qtbot, window, lambda: type_date(qtbot, bar.before, "2019"))
    assert bar.problem is None and not bar.problem_label.isVisibleTo(window)
    assert names(window) == ["beach.jpg", "sunset.jpg", "poppies.png"]


def test_saved_filters_that_no_longer_make_sense_are_left_out():
    saved = FilterInputs(after="2019-07", before="2019", folders=("/p/2019",), types=("png",),
                         camera="Canon", orientation="square")
    assert FilterInputs.from_json(saved.to_json()) == saved
    assert FilterInputs.from_json("{not json") == FilterInputs()
    assert FilterInputs.from_json('{"after": "2020", "before": "2019", "types": ["svg", "png"], '
                                  '"orientation": "round", "folders": [3, "/p"]}') == FilterInputs(
        types=("png",), folders=("/p",))
    with pytest.raises(FilterProblem):
        FilterInputs(after="tomorrow").to_filter()


def test_the_window_can_open_with_filters_from_the_command_line(tmp_path):
    from clipdesk._cli import build_parser
    from clipdesk._gui.app import _filter_inputs

    folder = tmp_path / "photos" / "2019"
    folder.mkdir(parents=True)
    args = build_parser().parse_args(["gui", "--after", "2019", "--before", "2019-08", "--in", str(folder),
                                      "--type", "jpg,heic", "--camera", "canon", "--orientation", "portrait"])
    assert _filter_inputs(args) == FilterInputs(after="2019", before="2019-08", folders=(os.path.realpath(folder),),
                                                types=("jpeg", "heif"), camera="canon", orientation="portrait")
    assert _filter_inputs(build_parser().parse_args(["gui"])) is None


@pytest.mark.parametrize(("options", "says"), [
    (["--after", "2019-02-30"], "clipdesk: --after 2019-02-30 is not a date that exists"),
    (["--type", "jpeg,svg"], "clipdesk: --type 'svg' is not a photo type clipdesk knows"),
])
def test_filters_the_window_cannot_open_with_are_one_line(data_dir, options, says):
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(data_dir), QT_QPA_PLATFORM="offscreen")
    result = subprocess.run([sys.executable, "-m", "clipdesk", "gui", *options, "--screenshot", "x.png"],
                            check=False, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(says)


def test_a_count_asked_for_again_before_it_began_is_skipped(qtbot):
    from clipdesk._gui.filterbar import FilterBar

    class Counting:
        def __init__(self):
            self.asked: list[object] = []

        def filter_choices(self, keep):
            self.asked.append(keep)
            return None

    bar = FilterBar(FilterInputs(camera="Canon"))
    qtbot.addWidget(bar)
    library = Counting()
    first = bar.counting_job()
    second = bar.counting_job()
    first(library)  # the worker reaches the first only after the second was asked for
    second(library)
    assert [keep.camera for keep in library.asked] == ["Canon"]


def test_filtering_and_counting_never_query_the_library_on_the_gui_thread(qtbot, make_window, roll,
                                                                          monkeypatch):
    import threading

    from clipdesk._store import Store

    threads: list[str] = []
    query = Store._query

    def watched(self, sql, params=()):
        threads.append(threading.current_thread().name)
        return query(self, sql, params)

    monkeypatch.setattr(Store, "_query", watched)
    window = open_window(qtbot, make_window)
    bar = window.filter_bar
    threads.clear()
    settled(qtbot, window, lambda: check_folder(window, roll / "2019"))
    settled(qtbot, window, lambda: choose(bar.shape_box, "portrait"))
    settled(qtbot, window, lambda: window.search_box.setText("red"))
    assert names(window) == ["sunset.jpg"]
    assert threads and threading.main_thread().name not in threads
