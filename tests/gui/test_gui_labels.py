"""Labels in the app: Apply to library (background, progress, pause, cancel), label:name in the
search box, chips in the preview, the Labels panel's counts, and the Safe search setting."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialog

from .guihelpers import COLOUR_MODEL, colour_of, index, photo, row_paths, wait_idle

from clipdesk._gui.applylabels import ApplyLabelsDialog
from clipdesk._gui.labelscontroller import label_search_text
from clipdesk._gui.settingsdialog import SettingsDialog
from clipdesk._labels import LabelDefinition, SafeSearch
from clipdesk._library import Library, LibraryOptions
from clipdesk._store import Store

WAIT_MS = 30_000  # a bound, not a sleep


@pytest.fixture
def two_folders(tmp_path: Path, db_path: Path) -> tuple[Path, Path]:
    """A library of two folders: 'mine' (3 red, 2 green, 1 blue) and 'other' (2 red)."""
    mine, other = tmp_path / "mine", tmp_path / "other"
    for name in ("red1", "red2", "red3", "green1", "green2", "blue1"):
        photo(mine / f"{name}.png", colour_of(name))
    for name in ("red8", "red9"):
        photo(other / f"{name}.png", "red")
    index(db_path, mine)
    index(db_path, other)
    return mine.resolve(), other.resolve()


def accept_dialog(monkeypatch: pytest.MonkeyPatch, *, folder: str | None = None) -> list[ApplyLabelsDialog]:
    """Answer the 'apply to the library' dialog as a user would: a folder (or the whole library), Apply."""
    shown: list[ApplyLabelsDialog] = []

    def exec_(dialog: ApplyLabelsDialog) -> int:
        shown.append(dialog)
        if folder is not None:
            dialog.in_folder.setChecked(True)
            dialog.folder.setCurrentText(folder)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(ApplyLabelsDialog, "exec", exec_)
    return shown


def label_sets(db_path: Path) -> list[str]:
    with Library(LibraryOptions(db_path=db_path), create=False, read_only=True) as library:
        return [s.name for s in library.label_sets()]


def search(qtbot, window, text: str) -> list[str]:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS):
        window.search_box.setText(text)
        window.run_search()
    return sorted(Path(p).name for p in row_paths(window))


def apply(qtbot, window, monkeypatch, labels: str, folder: str | None = None):  # type: ignore[no-untyped-def]
    accept_dialog(monkeypatch, folder=folder)
    window.classify_panel.labels_edit.setText(labels)
    with qtbot.waitSignal(window.labels.run_finished, timeout=WAIT_MS) as done:
        window.classify_panel.apply_button.click()
    return done.args[0]


def test_labels_applied_to_a_folder_are_listed_and_searchable(qtbot, make_window, two_folders, monkeypatch, db_path):
    mine, other = two_folders
    window = make_window()
    window.show()  # the notice below is judged as the user sees it
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: window.folders_panel.model.rowCount() == 2, timeout=WAIT_MS)  # the dialog lists them
    assert window.labels_panel.hint.isVisibleTo(window.labels_panel)  # says how to get labels

    report = apply(qtbot, window, monkeypatch, "red, green, blue", folder=str(mine))
    assert report is not None and not report.cancelled and report.labelled == 6
    qtbot.waitUntil(lambda: window.labels_panel.labels() == {"red": 3, "green": 2, "blue": 1}, timeout=WAIT_MS)
    assert label_sets(db_path) == ["red, green, blue"]

    # label: in the search box keeps the photos carrying it, browsing and with words.
    assert search(qtbot, window, "label:red") == ["red1.png", "red2.png", "red3.png"]  # not other/
    assert search(qtbot, window, "label:green green") == ["green1.png", "green2.png"]
    # Clicking a label in the Labels panel searches for it.
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS):
        window.labels_panel.tree.itemClicked.emit(window.labels_panel.item_for("blue"), 0)
    assert window.search_box.text() == "label:blue"
    assert sorted(Path(p).name for p in row_paths(window)) == ["blue1.png"]
    # A label no set has is said plainly.
    with qtbot.waitSignal(window.worker.busy_changed, timeout=WAIT_MS, check_params_cb=lambda n: n == 0):
        window.search_box.setText("label:purple")
        window.run_search()
    assert "No label set of this library has the label 'purple'" in (window.last_error or "")
    assert window.notice.isVisibleTo(window)
    assert search(qtbot, window, "label:blue") == ["blue1.png"]  # the next that works clears it
    assert not window.notice.isVisibleTo(window)
    wait_idle(qtbot, window)


def test_the_preview_shows_label_chips_that_search(qtbot, make_window, two_folders, monkeypatch):
    window = make_window()
    wait_idle(qtbot, window)
    apply(qtbot, window, monkeypatch, "red, green, blue")  # the whole library
    assert search(qtbot, window, "label:red") == ["red1.png", "red2.png", "red3.png", "red8.png", "red9.png"]
    search(qtbot, window, "")
    row = next(i for i, p in enumerate(row_paths(window)) if p.endswith("green1.png"))
    window.view.setCurrentIndex(window.model.index(row, 0))
    qtbot.waitUntil(lambda: bool(window.preview.chips), timeout=WAIT_MS)
    assert [c.text().split()[0] for c in window.preview.chips] == ["green"]
    assert "red, green, blue" in window.preview.chips[0].toolTip()
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS):
        window.preview.chips[0].click()
    assert window.search_box.text() == "label:green"
    assert sorted(Path(p).name for p in row_paths(window)) == ["green1.png", "green2.png"]


def test_a_run_can_be_paused_resumed_and_cancelled_and_cancel_writes_nothing(
    qtbot, make_window, two_folders, monkeypatch, db_path
):
    window = make_window()
    wait_idle(qtbot, window)
    accept_dialog(monkeypatch)
    panel = window.classify_panel
    panel.labels_edit.setText("red, green")

    def start_paused() -> None:
        # The library's writer is held until Pause is pressed, so the run cannot finish first.
        gate = threading.Event()
        window.worker.write(lambda library, task: gate.wait(WAIT_MS / 1000))
        panel.apply_button.click()
        panel.run_bar.pause_button.click()
        gate.set()

    start_paused()
    run = window.labels.run
    assert run is not None and panel.run_bar.isVisibleTo(panel)
    assert panel.run_bar.pause_button.text() == "Resume"
    qtbot.waitUntil(run.holding.is_set, timeout=WAIT_MS)  # held after its batch, nothing saved yet
    assert label_sets(db_path) == []
    qtbot.waitUntil(lambda: (panel.run_bar.bar.value(), panel.run_bar.bar.maximum()) == (8, 8), timeout=WAIT_MS)
    assert panel.run_bar.label.text() == "Paused applying \u201cred, green\u201d."
    with qtbot.waitSignal(window.labels.run_finished, timeout=WAIT_MS) as done:
        panel.run_bar.cancel_button.click()
    assert done.args[0].cancelled and label_sets(db_path) == []
    assert not panel.run_bar.isVisibleTo(panel) and window.labels.run is None

    start_paused()
    qtbot.waitUntil(window.labels.run.holding.is_set, timeout=WAIT_MS)
    with qtbot.waitSignal(window.labels.run_finished, timeout=WAIT_MS) as done:
        panel.run_bar.pause_button.click()  # Resume
    assert not done.args[0].cancelled and label_sets(db_path) == ["red, green"]


def test_a_saved_set_is_applied_under_its_name_and_the_dialog_offers_the_scopes(qtbot, make_window, two_folders):
    mine, other = two_folders
    window = make_window()
    wait_idle(qtbot, window)
    panel = window.classify_panel
    panel.label_sets["colours"] = ["red", "green"]
    panel._fill_sets()
    panel.sets.setCurrentText("Saved: colours")
    panel.labels_edit.setText("red, green")
    definition = panel.label_definition()
    assert definition.name == "colours"
    dialog = ApplyLabelsDialog(definition, [str(mine), str(other)], ["/a.jpg", "/b.jpg"])
    qtbot.addWidget(dialog)
    assert dialog.scope().describe() == "the whole library"
    dialog.selection.setChecked(True)
    assert dialog.scope().paths == ("/a.jpg", "/b.jpg") and "2 selected" in dialog.selection.text()
    dialog.in_folder.setChecked(True)
    dialog.folder.setCurrentText(str(other))
    dialog.min_probability.setValue(0.6)
    dialog.active.setChecked(False)
    assert dialog.scope().folder == str(other)
    assert (dialog.definition().min_probability, dialog.definition().active) == (0.6, False)
    panel.labels_edit.setText("red, green, blue")  # edited: now typed labels
    assert panel.label_definition().name == "red, green, blue"
    wait_idle(qtbot, window)


def test_search_text_for_a_label_quotes_spaces():
    assert label_search_text("beach") == "label:beach"
    assert label_search_text("sandy beach") == 'label:"sandy beach"'


def _mark_unsafe(db_path: Path, names: tuple[str, ...]) -> None:
    """Make the moderation preset judge these photos unsafe and the others safe (the colour
    test model cannot tell: it finds every photo equally likely everything)."""
    with Store(db_path) as store, store.write():
        store.conn.execute(
            "UPDATE image_labels SET probability = CASE WHEN (SELECT path FROM images WHERE id = image_id) "
            f"IN ({','.join('?' * len(names))}) THEN 0.05 ELSE 0.95 END "
            "WHERE label_id = (SELECT sl.id FROM set_labels sl JOIN label_sets ls ON ls.id = sl.set_id "
            "WHERE ls.name = 'moderation' AND sl.name = 'safe')",
            names,
        )


def test_safe_search_is_off_by_default_explained_and_hides_unsafe_photos(
    qtbot, make_window, two_folders, monkeypatch, db_path
):
    mine, _ = two_folders
    window = make_window()
    wait_idle(qtbot, window)
    dialog = SettingsDialog(window.settings, safe_search=window.labels.state.safe)
    qtbot.addWidget(dialog)
    assert not dialog.safe_search.isChecked()
    assert any("Hides photos that look unsafe" in label.text() for label in dialog.findChildren(type(window.library_label)))

    asked: list[str] = []
    window.labels.confirm = lambda text: asked.append(text) or True

    def switch_on(dialog: SettingsDialog) -> int:
        dialog.safe_search.setChecked(True)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(SettingsDialog, "exec", switch_on)
    with qtbot.waitSignal(window.labels.run_finished, timeout=WAIT_MS):
        window.open_settings()  # no moderation labels yet: asked first, then labelled
    assert "moderation labels" in asked[0]
    qtbot.waitUntil(lambda: window.labels.state.safe.enabled, timeout=WAIT_MS)
    with Library(LibraryOptions(db_path=db_path), create=False, read_only=True) as library:
        assert library.safe_search().enabled  # kept in the library, as the command line sees it

    unsafe = (str(mine / "red1.png"), str(mine / "green1.png"))
    _mark_unsafe(db_path, unsafe)
    everything = search(qtbot, window, "")
    assert "red1.png" not in everything and "green1.png" not in everything and len(everything) == 6
    assert "red1.png" not in search(qtbot, window, "red")
    # Thumbnails elsewhere: the Duplicates window (the red photos are identical files) hides red1's.
    window.duplicates_action.trigger()
    with qtbot.waitSignal(window.duplicates_view.scan_finished, timeout=WAIT_MS):
        pass
    cards = {Path(c.copy.path).name: c for n in range(len(window.duplicates_view.groups))
             for c in window.duplicates_view.cards(n)}
    assert cards["red1.png"].picture.text() == "Hidden by\nsafe search"
    assert cards["red1.png"].picture.pixmap().isNull()
    assert cards["red2.png"].picture.text() != "Hidden by\nsafe search"
    window.duplicates_view.close()
    # Off again: everything is back.
    monkeypatch.setattr(SettingsDialog, "exec", lambda d: (d.safe_search.setChecked(False), 1)[1])
    window.open_settings()
    qtbot.waitUntil(lambda: not window.labels.state.safe.enabled, timeout=WAIT_MS)
    wait_idle(qtbot, window)
    assert len(search(qtbot, window, "")) == 8


def test_declining_the_moderation_labels_leaves_safe_search_off(qtbot, make_window, two_folders, db_path):
    window = make_window()
    wait_idle(qtbot, window)
    window.labels.confirm = lambda text: False
    window.labels.set_safe_search(SafeSearch(True))
    assert window.labels.run is None
    wait_idle(qtbot, window)
    assert label_sets(db_path) == [] and not window.labels.state.safe.enabled


def test_safe_search_already_on_hides_from_the_first_listing_and_follows_the_command_line(
    qtbot, make_window, two_folders, db_path
):
    mine, _ = two_folders
    with Library(LibraryOptions(db_path=db_path, model=COLOUR_MODEL)) as library:
        library.apply_labels(LabelDefinition.preset("moderation"))
    _mark_unsafe(db_path, (str(mine / "blue1.png"),))
    with Library(LibraryOptions(db_path=db_path)) as library:
        library.set_safe_search(SafeSearch(True))
    window = make_window()
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS):
        pass  # the very first listing
    assert row_paths(window) and "blue1.png" not in [Path(p).name for p in row_paths(window)]
    # Switched off elsewhere (clipdesk safe-search off): the next search shows it again.
    with Library(LibraryOptions(db_path=db_path)) as library:
        library.set_safe_search(SafeSearch(False))
    assert "blue1.png" in search(qtbot, window, "")
    wait_idle(qtbot, window)
