"""Reliability, round two: folders that cannot be read, edits that keep size and mtime,
files that always fail, and two writers at once. Each ends in a correct library."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import clipdesk._scanner as scanner_mod
from clipdesk._indexer import Indexer
from clipdesk._store import Store
from clipdesk._testing.colours import ColourEncoder

from .helpers import (
    COLOUR_MODEL,
    check_library_matches,
    clipdesk_argv,
    clipdesk_env,
    read_library,
    run_clipdesk,
)


def _photo(path: Path, colour: tuple[int, int, int], fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (48, 32), colour).save(path, fmt)
    return path


def _album(root: Path) -> list[Path]:
    """Two photos at the top and three in a subfolder `locked`."""
    return [
        _photo(root / "a.jpg", (200, 10, 10)),
        _photo(root / "b.jpg", (10, 200, 10)),
        *(_photo(root / "locked" / f"l{i}.jpg", (10, 10, 60 * i + 50)) for i in range(3)),
    ]


# -- 1. a folder that cannot be listed -------------------------------------------------


class _LockedOs:
    """The os module as the scanner sees it, with some folders refusing to be listed."""

    def __init__(self, locked: set[str]) -> None:
        self.locked = locked

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def scandir(self, path: Any) -> Any:
        if os.fspath(path) in self.locked:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return os.scandir(path)


@pytest.fixture
def locked(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Folders (add to the set) that the scanner cannot list, as without read permission."""
    folders: set[str] = set()
    monkeypatch.setattr(scanner_mod, "os", _LockedOs(folders))
    return folders


@pytest.mark.parametrize("which", ["subfolder", "root"])
def test_unreadable_folder_keeps_its_photos(tmp_path: Path, locked: set[str], which: str) -> None:
    root = tmp_path / "photos"
    _album(root)
    with Store(tmp_path / "lib.db") as store:
        indexer = Indexer(store, ColourEncoder(), workers=2)
        assert indexer.index([str(root)]).indexed == 5
        before = {p: (s.id, s.hash) for p, s in store.image_states(1).items()}

        unreadable = str(root / "locked") if which == "subfolder" else str(root)
        locked.add(unreadable)
        report = indexer.index([str(root)])
        assert report.removed == 0
        assert {p: (s.id, s.hash) for p, s in store.image_states(1).items()} == before
        kept = 3 if which == "subfolder" else 5
        assert [(f.path, f.error) for f in report.failed] == [
            (unreadable, f"cannot read folder: Permission denied; its {kept} photos were kept")
        ]

        # Readable again: nothing to redo.
        locked.clear()
        report = indexer.index([str(root)])
        assert (report.indexed, report.encoded, report.unchanged, report.failed) == (0, 0, 5, [])


def test_reconcile_keeps_the_photos_of_an_unreadable_folder(tmp_path: Path, locked: set[str]) -> None:
    from clipdesk._library import LibraryOptions
    from clipdesk._events import FileSkipped, Idle, PhotosRemoved, ServiceEvent
    from clipdesk._service import IndexService

    root = tmp_path / "photos"
    _album(root)
    db = tmp_path / "lib.db"
    with Store(db) as store:
        Indexer(store, ColourEncoder(), workers=2).index([str(root)])
    locked.add(str(root / "locked"))
    events: list[ServiceEvent] = []
    service = IndexService(
        LibraryOptions(db_path=db), on_event=events.append, encoder=ColourEncoder(), debounce=0.1
    )
    service.start()  # reconciles every folder at start
    try:
        _wait(lambda: any(isinstance(e, FileSkipped) for e in events) and any(isinstance(e, Idle) for e in events))
    finally:
        service.stop()
    assert not [e for e in events if isinstance(e, PhotosRemoved)]
    failed = [e for e in events if isinstance(e, FileSkipped)]
    assert [(e.path, e.message) for e in failed] == [
        (str(root / "locked"), "cannot read folder: Permission denied; its 3 photos were kept")
    ]
    assert len(read_library(db).rows) == 5


def _wait(condition: Any, timeout: float = 20.0) -> None:
    from watchutil import wait_for

    wait_for(condition, timeout=timeout)


def _unprivileged() -> list[str]:
    """A command prefix under which file permissions apply (root bypasses them)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a folder unreadable")
    prefix = [setpriv, "--inh-caps=-dac_override,-dac_read_search",
              "--bounding-set=-dac_override,-dac_read_search"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"setpriv cannot drop capabilities here: {probe.stderr.decode(errors='replace')}")
    return prefix


@pytest.fixture
def chmod_back() -> Iterator[list[Path]]:
    """Folders to make readable again after the test (so tmp_path can be removed)."""
    folders: list[Path] = []
    yield folders
    for folder in folders:
        folder.chmod(0o755)


@pytest.mark.parametrize("which", ["subfolder", "root"])
def test_unreadable_folder_without_root_privileges(
    tmp_path: Path, chmod_back: list[Path], which: str
) -> None:
    prefix = _unprivileged()
    root = tmp_path / "photos"
    _album(root)
    env = clipdesk_env(tmp_path / "data")
    db = tmp_path / "data" / "library.db"
    first = run_clipdesk(env, "index", str(root), "--model", COLOUR_MODEL)
    assert first.returncode == 0, first.stderr
    before = sorted(read_library(db).rows)

    folder = root / "locked" if which == "subfolder" else root
    folder.chmod(0)
    chmod_back.append(folder)
    result = subprocess.run(
        [*prefix, *clipdesk_argv("index", "--json")], env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["removed"] == 0
    assert [f["path"] for f in report["failed"]] == [str(folder)]
    assert "Permission denied" in report["failed"][0]["error"]
    assert sorted(read_library(db).rows) == before

    folder.chmod(0o755)
    again = subprocess.run(
        [*prefix, *clipdesk_argv("index", "--json")], env=env, capture_output=True, text=True,
        timeout=120,
    )
    report = json.loads(again.stdout)
    assert (report["encoded"], report["unchanged"], report["failed"]) == (0, 5, [])


# -- 10. two writers at once ----------------------------------------------------------


def _index_with_interruption(db: Path, root: Path, meanwhile: Any) -> Any:
    """Index root; once the run has planned its work, `meanwhile(other_store)` runs in
    another connection (as another process would) before anything is written."""
    done = False

    def progress(p: Any) -> None:
        nonlocal done
        if p.phase == "indexing" and not done:
            done = True
            with Store(db) as other:
                meanwhile(other)

    with Store(db) as store:
        return Indexer(store, ColourEncoder(), workers=2, progress=progress).index([str(root)])


def test_two_runs_on_the_same_new_files(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _album(root)
    db = tmp_path / "lib.db"

    def index_them_too(other: Store) -> None:
        Indexer(other, ColourEncoder(), workers=2).index([str(root)])

    report = _index_with_interruption(db, root, index_them_too)
    assert report.failed == [] and report.indexed == 5
    check_library_matches(db, root)

    # The same race for edited files: both runs see them as changed.
    for path in (root / "a.jpg", root / "locked" / "l0.jpg"):
        _photo(path, (250, 250, 0))
    report = _index_with_interruption(db, root, index_them_too)
    assert report.failed == [] and report.indexed == 2
    check_library_matches(db, root)


def test_forget_during_index(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _album(root)
    db = tmp_path / "lib.db"
    report = _index_with_interruption(db, root, lambda other: other.remove_folder(str(root)))
    assert report.failed == [] and report.indexed == 0
    contents = read_library(db)
    assert contents.rows == [] and contents.vector_ids == 0 and contents.integrity == "ok"

    # Forgotten while a run moves and edits photos it knew.
    with Store(db) as store:
        Indexer(store, ColourEncoder(), workers=2).index([str(root)])
    (root / "b.jpg").rename(root / "b-moved.jpg")
    _photo(root / "a.jpg", (250, 250, 0))
    report = _index_with_interruption(db, root, lambda other: other.remove_folder(str(root)))
    assert report.failed == [] and (report.indexed, report.moved) == (0, 0)
    contents = read_library(db)
    assert contents.rows == [] and contents.vector_ids == 0 and contents.integrity == "ok"


def test_a_photo_removed_by_another_process_while_it_was_touched(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _album(root)
    db = tmp_path / "lib.db"
    with Store(db) as store:
        Indexer(store, ColourEncoder(), workers=2).index([str(root)])
    os.utime(root / "a.jpg", ns=(10**18, 10**18))  # touched: same content

    def drop_it(other: Store) -> None:
        with other.write():
            other.delete_images([other.images_at([str(root / "a.jpg")])[str(root / "a.jpg")].id])

    report = _index_with_interruption(db, root, drop_it)
    assert report.failed == [] and report.indexed == 1
    check_library_matches(db, root)


def _random_photos(root: Path, count: int, seed: int) -> Path:
    """count photos of random colours (a seeded run makes the same ones)."""
    import random

    from .helpers import random_colour

    rng = random.Random(seed)
    for i in range(count):
        _photo(root / f"p{i:04d}.jpg", random_colour(rng))
    return root


def test_two_index_processes_on_the_same_new_files(tmp_path: Path) -> None:
    root = _random_photos(tmp_path / "photos", 400, seed=10)
    env = clipdesk_env(tmp_path / "data")
    db = tmp_path / "data" / "library.db"
    argv = clipdesk_argv("index", str(root), "--model", COLOUR_MODEL, "--batch-size", "4")
    procs = [
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (_out, err) in zip(procs, outputs):
        assert "Traceback" not in err, err
        assert proc.returncode == 0, err
    check_library_matches(db, root)


def test_two_processes_set_up_the_same_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second one looked before the first one's commit: it must not add the folder
    twice, nor drop the first one's vectors as if the model were new."""
    import numpy as np

    from clipdesk._store import NewImage

    db = tmp_path / "lib.db"
    with Store(db) as first, Store(db) as second:
        folder = first.add_folder(str(tmp_path / "photos"))
        first.bind_model("m", 3)
        with first.write():
            photo = NewImage(folder.id, str(tmp_path / "photos" / "a.jpg"), 1, 1, "h", 1, 1, None)
            first.insert_image(photo, np.ones(3))

        looks = {"folder_containing": iter([None]), "model": iter([None])}
        for name, answers in looks.items():
            real = getattr(second, name)
            monkeypatch.setattr(
                second, name, lambda *a, _answers=answers, _real=real: next(_answers, _real(*a))
            )
        assert second.add_folder(str(tmp_path / "photos")).id == folder.id
        second.bind_model("m", 3)
        assert second.count_images() == 1 and second.vector(1) is not None


def test_watch_and_index_at_once(tmp_path: Path) -> None:
    import signal
    import time

    root = _random_photos(tmp_path / "photos", 300, seed=11)
    env = clipdesk_env(tmp_path / "data")
    db = tmp_path / "data" / "library.db"
    log = tmp_path / "watch.log"
    with open(log, "w") as err:
        watch = subprocess.Popen(
            clipdesk_argv("watch", str(root), "--model", COLOUR_MODEL, "--batch-size", "4"),
            env=env, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
        )
    try:
        index = run_clipdesk(env, "index", str(root), "--model", COLOUR_MODEL, "--batch-size", "4")
        deadline = time.monotonic() + 120
        while "up to date: 300 images" not in log.read_text() and watch.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        watch.send_signal(signal.SIGTERM)
        watch.wait(timeout=60)
    assert "Traceback" not in index.stderr and index.returncode == 0, index.stderr
    assert "Traceback" not in log.read_text() and watch.returncode == 0, log.read_text()
    check_library_matches(db, root)

# -- 7. work that never ends --------------------------------------------------------------


@pytest.mark.parametrize("interval", ["0", "-1", "nan"])
def test_watch_refuses_a_poll_interval_that_would_spin(tmp_path: Path, interval: str) -> None:
    from .helpers import assert_clean_error

    root = tmp_path / "photos"
    _photo(root / "a.jpg", (1, 2, 3))
    env = clipdesk_env(tmp_path / "data")
    argv = clipdesk_argv("watch", str(root), "--poll", f"--poll-interval={interval}", "--model", COLOUR_MODEL)
    try:
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`watch --poll-interval {interval}` started instead of refusing")
    assert_clean_error(result, "poll interval", "above 0")


def test_watcher_refuses_a_poll_interval_that_would_spin() -> None:
    from clipdesk._errors import ClipdeskError
    from clipdesk._watcher import Watcher

    with pytest.raises(ClipdeskError, match="above 0"):
        Watcher(lambda c, g: None, lambda f, s, m: None, lambda f: None, poll_interval=0)


# -- 3. an edit that keeps size and mtime ---------------------------------------------------


def _stored(db: Path, path: Path) -> tuple[str, bytes]:
    contents = read_library(db)
    return dict(contents.rows)[str(path)], contents.vectors[str(path)]


@pytest.mark.parametrize("how", ["in place", "replaced by a rename"])
def test_an_edit_that_keeps_size_and_mtime_is_seen(tmp_path: Path, how: str) -> None:
    from clipdesk._indexer import hash_path

    root = tmp_path / "photos"
    photo = _photo(root / "p.bmp", (220, 20, 20))  # BMP: same size whatever the colour
    db = tmp_path / "lib.db"
    with Store(db) as store:
        Indexer(store, ColourEncoder(), workers=2).index([str(root)])
    old_hash, old_vector = _stored(db, photo)
    before = photo.stat()

    if how == "in place":
        _photo(photo, (20, 20, 220), "BMP")
    else:
        _photo(root / "p.tmp", (20, 20, 220), "BMP").replace(photo)
    os.utime(photo, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = photo.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)

    with Store(db) as store:
        report = Indexer(store, ColourEncoder(), workers=2).index([str(root)])
    assert (report.indexed, report.encoded) == (1, 1)
    new_hash, new_vector = _stored(db, photo)
    assert new_hash == hash_path(str(photo)) != old_hash and new_vector != old_vector
    check_library_matches(db, root)


def test_the_watcher_reindexes_an_edit_that_keeps_size_and_mtime(tmp_path: Path) -> None:
    from clipdesk._indexer import hash_path
    from clipdesk._library import LibraryOptions
    from clipdesk._events import Indexed, ServiceEvent
    from clipdesk._service import IndexService

    root = tmp_path / "photos"
    photo = _photo(root / "p.bmp", (220, 20, 20))
    db = tmp_path / "lib.db"
    events: list[ServiceEvent] = []
    service = IndexService(
        LibraryOptions(db_path=db), on_event=events.append, encoder=ColourEncoder(), debounce=0.1
    )
    service.start()
    try:
        service.add_folder(str(root))
        _wait(lambda: any(isinstance(e, Indexed) for e in events))
        old_hash = _stored(db, photo)[0]
        before = photo.stat()
        _photo(photo, (20, 20, 220), "BMP")
        os.utime(photo, ns=(before.st_atime_ns, before.st_mtime_ns))
        _wait(lambda: _stored(db, photo)[0] != old_hash)
    finally:
        service.stop()
    assert _stored(db, photo)[0] == hash_path(str(photo))
    check_library_matches(db, root)


# -- 7. files that always fail ---------------------------------------------------------------


def _junk(path: Path, n: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a photo %d " % n * 50)
    return path


def test_a_failed_file_is_not_read_again_until_it_changes(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _photo(root / "good.jpg", (1, 200, 3))
    junk = [_junk(root / f"junk{i}.jpg", i) for i in range(6)]
    db = tmp_path / "lib.db"
    with Store(db) as store:
        indexer = Indexer(store, ColourEncoder(), workers=2)
        first = indexer.index([str(root)])
        assert (first.indexed, len(first.failed), first.skipped) == (1, 6, 0)

        reads: list[str] = []
        real_prepare = indexer._prepare
        indexer._prepare = lambda job, known: reads.append(job.stat.path) or real_prepare(job, known)  # type: ignore[method-assign]
        again = indexer.index([str(root)])
        assert (again.unchanged, again.skipped, again.failed, reads) == (1, 6, [], [])

        # Changed files are tried again: one still junk, one now a photo; one is deleted.
        _junk(junk[0], 100)
        junk[1].unlink()
        _photo(junk[2], (9, 9, 9), "JPEG")
        later = indexer.index([str(root)])
        assert sorted(reads) == sorted([str(junk[0]), str(junk[2])])
        assert [f.path for f in later.failed] == [str(junk[0])]
        assert (later.indexed, later.skipped) == (1, 3)
        assert set(store.failures(1)) == {str(junk[0]), *map(str, junk[3:])}

        # Indexing a subfolder alone keeps what it knows of the rest of the folder.
        sub = _junk(root / "sub" / "j.jpg", 7)
        assert len(indexer.index([str(root / "sub")]).failed) == 1
        assert set(store.failures(1)) == {str(junk[0]), *map(str, junk[3:]), str(sub)}


def test_reconcile_does_not_retry_or_report_failed_files_again(tmp_path: Path) -> None:
    from clipdesk._library import LibraryOptions
    from clipdesk._events import FileSkipped, Idle, ServiceEvent
    from clipdesk._service import IndexService

    root = tmp_path / "photos"
    _photo(root / "good.jpg", (1, 200, 3))
    for i in range(5):
        _junk(root / f"junk{i}.jpg", i)
    db = tmp_path / "lib.db"
    with Store(db) as store:
        assert len(Indexer(store, ColourEncoder(), workers=2).index([str(root)]).failed) == 5
    events: list[ServiceEvent] = []
    service = IndexService(
        LibraryOptions(db_path=db), on_event=events.append, encoder=ColourEncoder(), debounce=0.1
    )
    service.start()  # reconciles every folder at start
    try:
        _wait(lambda: any(isinstance(e, Idle) for e in events))
    finally:
        service.stop()
    assert [e for e in events if isinstance(e, FileSkipped)] == []


def test_index_reports_skipped_failures(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _photo(root / "good.jpg", (1, 200, 3))
    for i in range(4):
        _junk(root / f"junk{i}.jpg", i)
    env = clipdesk_env(tmp_path / "data")
    first = run_clipdesk(env, "index", str(root), "--model", COLOUR_MODEL, "--json")
    assert len(json.loads(first.stdout)["failed"]) == 4
    second = run_clipdesk(env, "index", "--json")
    report = json.loads(second.stdout)
    assert (report["failed"], report["skipped"], report["unchanged"]) == ([], 4, 1)
    text = run_clipdesk(env, "index")
    assert "4 skipped (failed before, unchanged since)" in text.stdout, text.stdout
