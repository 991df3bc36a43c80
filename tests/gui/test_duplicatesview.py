"""The Duplicates window: groups side by side with the suggested photo ticked, one confirmation
with the count and size, the copies not kept go to the system trash (never deleted), the
library forgets them."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from PySide6.QtWidgets import QGroupBox, QLabel, QToolBar

from .guihelpers import index, row_paths, wait_idle

from clipdesk._gui import duplicatesview
from clipdesk._gui.duplicatesview import DuplicatesView
from clipdesk._gui.duplicatework import NO_TRASH, Copy, Removal, trash_files
from clipdesk._gui.preview import file_size
from clipdesk._library import Library, LibraryOptions
from clipdesk._store import PhotoFacts, Store

WAIT_MS = 30_000  # a bound, not a sleep


def scene(seed: int, size: tuple[int, int] = (240, 180)) -> Image.Image:
    """A picture with structure (a solid colour has no perceptual fingerprint to speak of)."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(0, 255, 3) * (x / w)[..., None] + rng.uniform(0, 255, 3) * (y / h)[..., None]
    image = Image.fromarray((base / 2).clip(0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(5):
        x0, y0 = rng.uniform(0, w * 0.7), rng.uniform(0, h * 0.7)
        box = (x0, y0, x0 + rng.uniform(w * 0.1, w * 0.3), y0 + rng.uniform(h * 0.1, h * 0.3))
        draw.rectangle(box, fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return image


@pytest.fixture
def library_photos(tmp_path: Path, db_path: Path) -> dict[str, Path]:
    """Two groups (a photo and its half-size copy; a file and its identical copy) and a loner, indexed."""
    root = tmp_path / "photos"
    (root / "small").mkdir(parents=True)
    (root / "copies").mkdir()
    beach = scene(1)
    files = {
        "beach": root / "beach.png",
        "half": root / "small" / "beach-half.png",
        "park": root / "park.png",
        "park_copy": root / "copies" / "park.png",
        "other": root / "other.png",
    }
    beach.save(files["beach"])
    beach.resize((120, 90), Image.Resampling.LANCZOS).save(files["half"])
    scene(2).save(files["park"])
    shutil.copyfile(files["park"], files["park_copy"])
    scene(3).save(files["other"])
    index(db_path, root)
    return {k: Path(os.path.realpath(v)) for k, v in files.items()}


@pytest.fixture
def trash_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private home and data folder, so Qt's freedesktop trash is one we can look in."""
    home = tmp_path / "home"
    data = home / ".local" / "share"
    data.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    return data / "Trash"


def open_view(qtbot, window) -> DuplicatesView:  # type: ignore[no-untyped-def]
    wait_idle(qtbot, window)
    window.duplicates_action.trigger()
    view = window.duplicates_view
    assert view is not None and view.busy  # it works in the background, with a busy bar and Cancel
    assert view.bar.isVisible() and view.cancel_button.isVisible()
    with qtbot.waitSignal(view.scan_finished, timeout=WAIT_MS):
        pass
    return view


def library_paths(db_path: Path) -> set[str]:
    with Library(LibraryOptions(db_path=db_path), create=False, read_only=True) as library:
        return set(library.all_photos().paths)


def test_groups_are_found_off_the_gui_thread_and_the_suggested_photo_is_ticked(
    qtbot, make_window, library_photos, monkeypatch
):
    threads: list[threading.Thread] = []
    scan = duplicatesview.scan_library

    def recording_scan(library, safe=None):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread())
        return scan(library, safe)

    monkeypatch.setattr(duplicatesview, "scan_library", recording_scan)
    window = make_window()
    assert window.duplicates_action in window.findChild(QToolBar, "tools").actions()
    view = open_view(qtbot, window)

    assert threads and threads[0] is not threading.main_thread()
    assert not view.busy and not view.bar.isVisible()
    firsts = [[c.copy.path for c in view.cards(n)] for n in range(len(view.groups))]
    assert sorted(firsts) == sorted([
        [str(library_photos["beach"]), str(library_photos["half"])],
        [str(library_photos["park"]), str(library_photos["park_copy"])],
    ])
    for number in range(2):
        cards = view.cards(number)
        assert cards[0].keep.isChecked() and "suggested" in cards[0].keep.text()
        assert not any(c.keep.isChecked() for c in cards[1:])
        details = cards[1].details.text()
        assert "pixels" in details and "kB" in details and os.path.dirname(cards[1].copy.path) in details
    boxes = " ".join(label.text() for label in view.findChildren(QLabel))
    assert "Suggested to keep: beach.png (most pixels (240×180))" in boxes
    assert "identical files" in " ".join(b.title() for b in view.findChildren(QGroupBox))
    assert "2 groups of duplicates; 2 photos could go." in view.status.text()


def test_photos_from_an_older_version_are_fingerprinted_first_with_progress(
    qtbot, make_window, library_photos, db_path, monkeypatch
):
    with Store(db_path) as store, store.write():
        store.conn.execute("UPDATE images SET phash = NULL")  # as a library from before fingerprints
    seen: list[tuple[int, int]] = []
    writers: list[str] = []
    fingerprint = duplicatesview.fingerprint_older

    def recording(library, task, progress, cancel):  # type: ignore[no-untyped-def]
        writers.append(threading.current_thread().name)

        def relay(done: int, total: int) -> None:
            seen.append((done, total))
            progress(done, total)

        return fingerprint(library, task, relay, cancel)

    monkeypatch.setattr(duplicatesview, "fingerprint_older", recording)
    window = make_window()
    view = open_view(qtbot, window)
    assert writers == ["clipdesk-index"]  # the library's one writer
    # Every distinct content fingerprinted once (the two identical files share one decode).
    assert seen and seen[-1] == (4, 4)
    assert view.unfingerprinted == 0
    with Store(db_path, read_only=True) as store:
        assert store.missing_phashes() == []
    # The near copy (half size) is found, which needs its fingerprint.
    assert any(str(library_photos["half"]) in [c.path for c in g.copies] for g in view.groups)


def test_copies_not_kept_go_to_the_trash_after_one_confirmation_and_leave_the_library(
    qtbot, make_window, library_photos, trash_home, qsettings, db_path
):
    # Not watched: the library must follow because the app tells it, not because a watcher saw it.
    qsettings.setValue("folders/start_watching", False)
    window = make_window()
    view = open_view(qtbot, window)
    beach_group = next(n for n in range(2) if view.groups[n].copies[0].path == str(library_photos["beach"]))
    cards = view.cards(beach_group)
    # The user keeps the small copy rather than the suggested one: ticking it, then unticking the other.
    cards[1].keep.setChecked(True)
    cards[0].keep.setChecked(False)
    asked: list[str] = []
    view.confirm = lambda text: asked.append(text) or True

    going = [library_photos["beach"], library_photos["park_copy"]]
    with qtbot.waitSignal(view.trash_finished, timeout=WAIT_MS) as done:
        view.trash_button.click()

    size = sum(p.stat().st_size for p in (trash_home / "files").iterdir())
    assert len(asked) == 1
    assert asked[0].startswith(f"Move 2 photos ({file_size(size)}) to the trash?")
    assert sorted(done.args[0].moved) == sorted(map(str, going))
    for path in going:
        assert not path.exists()
        assert (trash_home / "files" / path.name).is_file()  # in the trash, restorable
        assert (trash_home / "info" / f"{path.name}.trashinfo").is_file()
    assert library_photos["half"].exists() and library_photos["park"].exists()
    assert view.groups == [] and "Moved 2 photos" in view.status.text()

    gone = set(map(str, going))
    qtbot.waitUntil(lambda: window.is_idle() and not gone & set(row_paths(window)), timeout=WAIT_MS)
    assert set(row_paths(window)) == {str(p) for k, p in library_photos.items() if k not in ("beach", "park_copy")}
    assert not gone & library_paths(db_path)


def test_no_is_the_answer_nothing_moves(qtbot, make_window, library_photos):
    window = make_window()
    view = open_view(qtbot, window)
    calls: list[str] = []
    view.trash = lambda path: calls.append(path)  # type: ignore[assignment,func-returns-value]
    view.confirm = lambda text: False
    view.trash_button.click()
    assert not view.busy and calls == []
    assert all(p.exists() for p in library_photos.values())


def test_a_file_with_no_trash_stays_and_the_view_says_so(qtbot, make_window, library_photos, db_path):
    window = make_window()
    view = open_view(qtbot, window)
    moved: list[str] = []

    def trash(path: str) -> str | None:
        if path.endswith("beach-half.png"):
            return NO_TRASH
        moved.append(path)
        return None  # pretend: the test must not need a working trash for this

    view.trash = trash
    view.confirm = lambda text: True
    with qtbot.waitSignal(view.trash_finished, timeout=WAIT_MS) as done:
        view.trash_button.click()
    report = done.args[0]
    assert report.failed == [(str(library_photos["half"]), NO_TRASH)]
    assert moved == [str(library_photos["park_copy"])]
    assert library_photos["half"].exists() and library_photos["beach"].exists()
    assert view.notice.isVisible()
    assert "1 photo stayed where they were" in view.notice.label.text()
    assert "no trash for the drive" in view.notice.label.text()
    # The group whose copy stayed is still shown, for another try.
    assert [[c.path for c in g.copies] for g in view.groups] == [
        [str(library_photos["beach"]), str(library_photos["half"])]
    ]


def test_cancel_stops_looking_and_drops_the_answer(qtbot, make_window, library_photos):
    window = make_window()
    wait_idle(qtbot, window)
    window.duplicates_action.trigger()
    view = window.duplicates_view
    assert view is not None and view.busy
    with qtbot.waitSignal(view.scan_finished, timeout=WAIT_MS):
        view.cancel_button.click()
    assert not view.busy and view.status.text() == "Stopped looking for duplicates."
    qtbot.waitUntil(lambda: window.worker.in_flight == 0, timeout=WAIT_MS)
    assert view.groups == [] and view.status.text() == "Stopped looking for duplicates."
    with qtbot.waitSignal(view.scan_finished, timeout=WAIT_MS):
        view.find_button.click()  # and it can look again
    assert len(view.groups) == 2


def test_while_indexing_is_paused_the_window_says_it_waits_and_goes_on_at_resume(
    qtbot, make_window, library_photos
):
    window = make_window()
    wait_idle(qtbot, window)
    window.toggle_pause()
    qtbot.waitUntil(lambda: window.worker.paused, timeout=WAIT_MS)
    window.duplicates_action.trigger()
    view = window.duplicates_view
    assert view is not None and view.busy and "Indexing is paused" in view.status.text()
    with qtbot.waitSignal(view.scan_finished, timeout=WAIT_MS):
        window.toggle_pause()  # Resume
    assert len(view.groups) == 2


def test_every_group_keeps_at_least_one_photo(qtbot, make_window, library_photos):
    window = make_window()
    view = open_view(qtbot, window)
    first = view.cards(0)[0]
    first.keep.setChecked(False)
    assert first.keep.isChecked()
    assert "at least one" in view.status.text()
    assert len(view.removals()) == 2


def _copy(tmp_path: Path, name: str, image_id: int) -> Copy:
    path = tmp_path / name
    path.write_bytes(b"x" * 10)
    return Copy(PhotoFacts(image_id, str(path), "h", None, 1, 1, None), 10, 0)


def test_copies_stay_when_the_photo_kept_is_no_longer_there(tmp_path):
    kept = _copy(tmp_path, "kept.jpg", 1)
    spare = _copy(tmp_path, "spare.jpg", 2)
    os.remove(kept.path)  # deleted by someone else since the search
    calls: list[str] = []
    report = trash_files([Removal((kept.path,), (spare,))], lambda p: calls.append(p), lambda: False)  # type: ignore[func-returns-value]
    assert calls == [] and report.moved == []
    assert report.failed[0][0] == spare.path and Path(spare.path).exists()
