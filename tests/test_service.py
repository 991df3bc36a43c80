"""The indexing service with real file-system events in temp folders (bounded waits)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import COLOUR_MODEL, make_photo
from watchutil import CountingEncoder, tiny_image, wait_for
from watchutil import Library as View

from clipdesk import _service as service_mod
from clipdesk import _watcher as watcher_mod
from clipdesk._errors import ClipdeskError, ModelUnavailable
from clipdesk._library import Library, LibraryOptions, rebuild
from clipdesk._librarylock import LibraryInUse
from clipdesk._search import Query
from clipdesk._events import (
    ChangesQueued,
    FolderChanged,
    FolderState,
    Idle,
    ModelFailed,
    PhotosRemoved,
    ServiceError,
    ServiceEvent,
    Stopped,
)
from clipdesk._service import IndexService
from clipdesk._store import Store

Factory = Callable[..., tuple[IndexService, list[ServiceEvent]]]


@pytest.fixture(autouse=True)
def quick_health(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watcher_mod, "HEALTH_INTERVAL", 0.2)
    monkeypatch.setattr(service_mod, "LIBRARY_CHECK_INTERVAL", 0.2)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "library.db"


@pytest.fixture
def view(db: Path) -> Iterator[View]:
    v = View(db)
    yield v
    v.close()


@pytest.fixture
def encoder() -> CountingEncoder:
    return CountingEncoder()


@pytest.fixture
def make_service(db: Path, encoder: CountingEncoder) -> Iterator[Factory]:
    services: list[IndexService] = []

    def make(**kwargs: object) -> tuple[IndexService, list[ServiceEvent]]:
        events: list[ServiceEvent] = []
        kwargs.setdefault("debounce", 0.2)
        kwargs.setdefault("poll_interval", 0.2)
        kwargs.setdefault("encoder", encoder)
        service = IndexService(LibraryOptions(db_path=db), on_event=events.append, **kwargs)  # type: ignore[arg-type]
        services.append(service)
        return service, events

    yield make
    for service in services:
        service.stop()


def started(make_service: Factory, root: Path, view: View, count: int, **kwargs: object) -> tuple[IndexService, list[ServiceEvent]]:
    service, events = make_service(**kwargs)
    service.start()
    service.add_folder(str(root))
    wait_for(lambda: len(view.paths()) == count, what=f"{count} images indexed: {events}")
    wait_for(lambda: any(isinstance(e, Idle) for e in events), what="idle")
    return service, events


def quiet(service: IndexService) -> bool:
    """Nothing left anywhere: no unsettled change in the watcher, no work queued or running.

    Waiting for this proves a duplicate job did not happen, without sleeping "long enough".
    """
    with service._cv:
        busy = service._current is not None or not service._pending.empty()
    return not busy and service._watcher.buffer.pending() == 0


def search(service: IndexService, text: str) -> list[str]:
    return [h.path for h in service.submit(lambda lib: lib.search(Query(texts=(text,), limit=3))).result(10)]


def test_new_file_becomes_searchable(make_service: Factory, photos: Path, view: View) -> None:
    service, _ = started(make_service, photos, view, 8)
    make_photo(photos / "new" / "purple.jpg", "purple")
    wait_for(lambda: str(photos / "new" / "purple.jpg") in view.paths(), what="new photo indexed")
    assert search(service, "purple")[0] == str(photos / "new" / "purple.jpg")
    # The photo is in the library a moment before the work item ends and the folder settles.
    wait_for(lambda: [f.state for f in service.folders()] == [FolderState.WATCHING], what="watching again")
    assert service.folders()[0].images == 9


def test_slow_copy_is_indexed_once_when_complete(
    make_service: Factory, photos: Path, view: View, encoder: CountingEncoder, tmp_path: Path
) -> None:
    service, _ = started(make_service, photos, view, 8, debounce=0.4)
    source = make_photo(tmp_path / "big.png", "orange", size=(600, 400))
    data = source.read_bytes()
    before = encoder.count
    target = photos / "slow.png"
    with open(target, "wb") as out:  # a copy in pieces, 0.1 s apart: many events, one job
        for start in range(0, len(data), len(data) // 6 + 1):
            out.write(data[start : start + len(data) // 6 + 1])
            out.flush()
            time.sleep(0.1)
    wait_for(lambda: str(target) in view.paths(), what="slow copy indexed")
    wait_for(lambda: quiet(service), what="nothing left to do")
    assert encoder.count == before + 1
    assert view.store.integrity() == "ok"


def test_modified_file_is_encoded_again_under_the_same_id(
    make_service: Factory, photos: Path, view: View
) -> None:
    service, _ = started(make_service, photos, view, 8)
    target = str(photos / "yellow1.gif")
    image_id = view.paths()[target]
    assert search(service, "yellow")[0] == target
    make_photo(photos / "yellow1.gif", "purple")
    wait_for(lambda: search(service, "purple")[:1] == [target], what="modified photo re-encoded")
    assert view.paths()[target] == image_id


def test_renames_and_moves_keep_vectors(
    make_service: Factory, photos: Path, view: View, encoder: CountingEncoder, tmp_path: Path
) -> None:
    service, _ = started(make_service, photos, view, 8)
    encoded = encoder.count
    ids = view.paths()
    red = ids[str(photos / "red1.jpg")]
    (photos / "red1.jpg").rename(photos / "renamed.jpg")
    wait_for(lambda: str(photos / "renamed.jpg") in view.paths(), what="rename")
    (photos / "other").mkdir()
    (photos / "renamed.jpg").rename(photos / "other" / "renamed.jpg")
    (photos / "trip" / "green2.webp").rename(photos / "other" / "green2.webp")  # between subfolders
    wait_for(
        lambda: {str(photos / "other" / "renamed.jpg"), str(photos / "other" / "green2.webp")}
        <= set(view.paths()),
        what="moves between subfolders",
    )
    after = view.paths()
    assert after[str(photos / "other" / "renamed.jpg")] == red
    assert after[str(photos / "other" / "green2.webp")] == ids[str(photos / "trip" / "green2.webp")]
    assert len(after) == 8 and encoder.count == encoded
    assert search(service, "red")[0] in {str(photos / "other" / "renamed.jpg"), str(photos / "red2.png"),
                                         str(photos / "trip" / "red3.jpg")}
    assert view.store.integrity() == "ok"


def test_folder_renamed_keeps_vectors(
    make_service: Factory, photos: Path, view: View, encoder: CountingEncoder
) -> None:
    started(make_service, photos, view, 8)
    encoded, ids = encoder.count, view.paths()
    (photos / "trip").rename(photos / "holiday")
    wait_for(
        lambda: {str(photos / "holiday" / "red3.jpg"), str(photos / "holiday" / "green2.webp")}
        <= set(view.paths()),
        what="renamed folder",
    )
    after = view.paths()
    assert len(after) == 8 and not any("/trip/" in p for p in after)
    assert after[str(photos / "holiday" / "red3.jpg")] == ids[str(photos / "trip" / "red3.jpg")]
    assert encoder.count == encoded


def test_moved_out_of_and_into_the_tree(
    make_service: Factory, photos: Path, view: View, tmp_path: Path
) -> None:
    service, _ = started(make_service, photos, view, 8)
    outside = tmp_path / "outside"
    outside.mkdir()
    (photos / "blue1.jpg").rename(outside / "blue1.jpg")  # a file out
    (photos / "trip").rename(outside / "trip")  # a folder out
    wait_for(lambda: len(view.paths()) == 5, what="moved-out photos removed")
    assert view.vectors() == 5
    album = tmp_path / "album"
    make_photo(album / "a" / "white.png", "white")
    make_photo(album / "black.jpg", "black")
    album.rename(photos / "album")  # a folder in
    (outside / "blue1.jpg").rename(photos / "blue-back.jpg")  # a file in
    wait_for(lambda: len(view.paths()) == 8, what="moved-in photos indexed")
    assert {str(photos / "album" / "a" / "white.png"), str(photos / "album" / "black.jpg"),
            str(photos / "blue-back.jpg")} <= set(view.paths())
    assert search(service, "white")[0] == str(photos / "album" / "a" / "white.png")


def test_deleted_files_and_folders_lose_their_vectors(
    make_service: Factory, photos: Path, view: View
) -> None:
    service, events = started(make_service, photos, view, 8)
    (photos / "red2.png").unlink()
    shutil.rmtree(photos / "trip")
    wait_for(lambda: len(view.paths()) == 5, what="deletions")
    assert view.vectors() == 5 and view.store.integrity() == "ok"
    assert all("red2" not in p for p in search(service, "red"))
    wait_for(lambda: any(isinstance(e, PhotosRemoved) for e in events), what="removed event")


def test_thousand_files_dropped_at_once_indexed_exactly_once(
    make_service: Factory, photos: Path, view: View, encoder: CountingEncoder
) -> None:
    service, _ = started(make_service, photos, view, 8)
    before = encoder.count
    drop = photos / "drop"
    drop.mkdir()
    for i in range(1000):  # distinct colours, so no two share a vector
        tiny_image(drop / f"{i:04d}.png", (i % 250, (i // 250) * 40, 99))
    wait_for(lambda: len(view.paths()) == 1008, timeout=60, what="1,000 files indexed")
    wait_for(lambda: quiet(service), what="nothing left to do")
    assert encoder.count - before == 1000
    assert len(view.paths()) == 1008 and view.vectors() == 1008
    assert view.store.integrity() == "ok"


def test_changes_made_while_stopped_are_found_at_start(
    make_service: Factory, photos: Path, view: View, encoder: CountingEncoder
) -> None:
    service, _ = started(make_service, photos, view, 8)
    service.stop()
    make_photo(photos / "while-away.png", "purple")
    (photos / "blue2.bmp").unlink()
    (photos / "red1.jpg").rename(photos / "trip" / "red1-moved.jpg")
    encoded = encoder.count
    service, _events = make_service()
    service.start()
    wait_for(lambda: str(photos / "while-away.png") in view.paths()
             and str(photos / "trip" / "red1-moved.jpg") in view.paths()
             and str(photos / "blue2.bmp") not in view.paths(), what="reconcile at start")
    assert len(view.paths()) == 8
    assert encoder.count == encoded + 1  # only the new photo was encoded
    wait_for(lambda: [f.state for f in service.folders()] == [FolderState.WATCHING], what="watching after reconcile")


def test_polling_when_forced(make_service: Factory, photos: Path, view: View) -> None:
    service, _events = started(make_service, photos, view, 8, force_polling=True)
    wait_for(lambda: service.folders()[0].state is FolderState.POLLING, what="polling")
    assert "polling" in (service.folders()[0].message or "")
    make_photo(photos / "polled.png", "purple")
    (photos / "green1.jpg").rename(photos / "trip" / "green1.jpg")
    wait_for(lambda: str(photos / "polled.png") in view.paths()
             and str(photos / "trip" / "green1.jpg") in view.paths(), what="polled changes")
    assert len(view.paths()) == 9


def test_inotify_limit_falls_back_to_polling(
    make_service: Factory, photos: Path, view: View, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Exhausted:
        """An observer whose start fails the way inotify does when the watch limit is reached."""

        daemon = True

        def schedule(self, *args: object, **kwargs: object) -> None:
            pass

        def start(self) -> None:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

        def stop(self) -> None:
            pass

        def is_alive(self) -> bool:
            return False

    monkeypatch.setattr(watcher_mod, "native_observer", Exhausted)
    service, events = started(make_service, photos, view, 8)
    wait_for(lambda: service.folders()[0].state is FolderState.POLLING, what="polling")
    assert "inotify" in (service.folders()[0].message or "")
    assert any(isinstance(e, FolderChanged) and e.status.state is FolderState.POLLING
               and "max_user_watches" in (e.status.message or "") for e in events)
    make_photo(photos / "after-limit.png", "purple")
    wait_for(lambda: str(photos / "after-limit.png") in view.paths(), what="change found by polling")


def test_vanished_folder_is_reported_photos_kept_and_watched_again(
    make_service: Factory, photos: Path, view: View, tmp_path: Path
) -> None:
    service, _events = started(make_service, photos, view, 8, force_polling=True)
    away = tmp_path / "unmounted"
    photos.rename(away)  # like a share going away: the polling observer dies
    wait_for(lambda: service.folders()[0].state is FolderState.MISSING, what="missing state")
    assert "kept" in (service.folders()[0].message or "")
    wait_for(lambda: quiet(service), what="nothing left to do")
    assert len(view.paths()) == 8  # nothing deleted
    make_photo(away / "added-meanwhile.png", "purple")
    away.rename(photos)
    wait_for(lambda: service.folders()[0].state is FolderState.POLLING, what="watched again")
    wait_for(lambda: str(photos / "added-meanwhile.png") in view.paths(), what="reconcile after return")


def test_dead_polling_observer_is_restarted(
    make_service: Factory, photos: Path, view: View
) -> None:
    service, _events = started(make_service, photos, view, 8, force_polling=True)
    folder = service._watcher._folders[str(photos)]
    assert folder.observer is not None
    for emitter in list(folder.observer.emitters):
        emitter.stop()  # the emitter thread dies, as when a poll fails for good
    wait_for(lambda: folder.restarts == 1, what="observer restarted")
    make_photo(photos / "after-restart.png", "purple")
    wait_for(lambda: str(photos / "after-restart.png") in view.paths(), what="watching after restart")


def test_stop_during_a_batch_leaves_a_consistent_library(
    make_service: Factory, tmp_path: Path, db: Path, view: View
) -> None:
    root = tmp_path / "many"
    for i in range(300):
        tiny_image(root / f"{i:03d}.png", (i % 250, 20 + i // 250, 50))
    slow = CountingEncoder(delay=0.05, batch_size=8)
    service, events = make_service(encoder=slow)
    service.start()
    service.add_folder(str(root))
    wait_for(lambda: slow.count >= 16, what="indexing under way")
    service.stop()  # how long this takes is measured in benchmarks/watch_latency.py
    assert not service.running
    with Store(db) as store:
        assert store.integrity() == "ok"
        done = store.count_images()
    assert 0 < done < 300
    assert isinstance(events[-1], Stopped)
    # The next run finishes the job without redoing what was saved.
    again = CountingEncoder()
    service, _ = make_service(encoder=again)
    service.start()
    wait_for(lambda: len(view.paths()) == 300, what="finished after restart")
    assert again.count == 300 - done


def test_search_from_another_thread_and_process_while_indexing(
    make_service: Factory, photos: Path, tmp_path: Path, db: Path, view: View, data_dir: Path
) -> None:
    service, _ = started(make_service, photos, view, 8)
    bulk = tmp_path / "bulk"
    for i in range(400):
        tiny_image(bulk / f"{i:03d}.png", (i % 200, 10 + i // 200, 200))
    slow = service._injected
    assert isinstance(slow, CountingEncoder)
    slow.delay = 0.05  # ~2.5 s for the folder: long enough to search during it
    service.add_folder(str(bulk))
    wait_for(lambda: slow.count > 16, what="bulk indexing under way")
    hits = search(service, "red")
    assert hits[0] in {str(photos / n) for n in ("red1.jpg", "red2.png", "trip/red3.jpg")}
    assert len(view.paths()) < 408  # answered while still indexing, not after
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(data_dir), PYTHONWARNINGS="ignore")
    out = subprocess.run(
        [sys.executable, "-m", "clipdesk", "--db", str(db), "search", "green", "-n", "2"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "green" in out.stdout.splitlines()[0]
    status = subprocess.run(
        [sys.executable, "-m", "clipdesk", "--db", str(db), "status", "--json"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert status.returncode == 0, status.stderr
    wait_for(lambda: len(view.paths()) == 408, timeout=60, what="bulk done")


def test_added_folder_goes_before_a_running_reconcile(
    make_service: Factory, tmp_path: Path, db: Path, view: View
) -> None:
    big, small = tmp_path / "big", tmp_path / "small"
    for i in range(200):
        tiny_image(big / f"{i:03d}.png", (i, 10, 10))
    for i in range(5):
        tiny_image(small / f"{i}.png", (10, i * 40, 10))
    with Store(db) as store:
        store.add_folder(str(big))  # known, not yet indexed: start-up reconcile has 200 to do
    slow = CountingEncoder(delay=0.05, batch_size=8)
    service, _events = make_service(encoder=slow)
    service.start()
    wait_for(lambda: slow.count >= 8, what="reconcile under way")
    service.add_folder(str(small))
    wait_for(lambda: sum(str(small) in p for p in view.paths()) == 5, what="added folder indexed")
    assert sum(str(big) in p for p in view.paths()) < 200
    wait_for(lambda: len(view.paths()) == 205, timeout=60, what="reconcile resumed and finished")
    assert slow.count == 205


def test_pause_holds_indexing_and_resume_continues(
    make_service: Factory, photos: Path, view: View
) -> None:
    service, events = started(make_service, photos, view, 8)
    service.pause()
    assert service.paused
    make_photo(photos / "paused.png", "purple")
    wait_for(lambda: any(isinstance(e, ChangesQueued) and e.path == str(photos / "paused.png") for e in events),
             what="the change handed to the service")
    wait_for(lambda: not service._pending.empty(), what="the change waiting in the queue")
    assert str(photos / "paused.png") not in view.paths()
    assert search(service, "red")  # the interactive lane still answers
    service.resume()
    wait_for(lambda: str(photos / "paused.png") in view.paths(), what="indexed after resume")


def test_remove_folder_forgets_or_keeps_photos(
    make_service: Factory, photos: Path, tmp_path: Path, view: View
) -> None:
    other = tmp_path / "other"
    make_photo(other / "o.png", "white")
    service, _ = started(make_service, photos, view, 8)
    service.add_folder(str(other))
    wait_for(lambda: len(view.paths()) == 9, what="second folder")
    service.remove_folder(str(other), forget=True)
    wait_for(lambda: len(view.paths()) == 8, what="forgotten")
    wait_for(lambda: [f.path for f in service.folders()] == [str(photos)], what="folder list refreshed")
    service.remove_folder(str(photos), forget=False)
    wait_for(lambda: service.folders() == [], what="unwatched")
    assert service._watcher.roots() == []
    make_photo(photos / "not-watched.png", "purple")
    wait_for(lambda: quiet(service), what="nothing left to do")
    assert len(view.paths()) == 8  # kept, but no longer watched
    service.stop()
    service, later = make_service()  # also after a restart
    service.start()
    wait_for(lambda: any(isinstance(e, Idle) for e in later), what="idle")
    assert service.folders() == [] and len(view.paths()) == 8


def test_reindex_folder_rehashes_and_keeps_unchanged_vectors(
    make_service: Factory, photos: Path, view: View, encoder: CountingEncoder
) -> None:
    service, _ = started(make_service, photos, view, 8)
    target = photos / "red1.jpg"
    st = target.stat()
    make_photo(target, "black")  # new content...
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # ...behind an unchanged date
    encoded = encoder.count
    service.reindex_folder(str(photos))
    wait_for(lambda: search(service, "black")[:1] == [str(target)], what="re-indexed by content")
    assert encoder.count == encoded + 1


def test_interactive_errors_land_in_the_future(make_service: Factory, photos: Path, view: View) -> None:
    service, _ = started(make_service, photos, view, 8)

    def boom(lib: Library) -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        service.submit(boom).result(5)
    assert service.submit(lambda lib: threading.current_thread().name).result(5) == "clipdesk-interactive"
    service.stop()
    with pytest.raises(Exception, match="stopped"):
        service.submit(lambda lib: 1).result(5)


def test_add_folder_reports_a_missing_folder(make_service: Factory, tmp_path: Path) -> None:
    service, events = make_service()
    service.add_folder(str(tmp_path / "nope"))
    (tmp_path / "file.jpg").write_bytes(b"x")
    service.add_folder(str(tmp_path / "file.jpg"))
    errors = [e.message for e in events if isinstance(e, ServiceError)]
    assert "No folder at" in errors[0] and "is a file" in errors[1]


def _can_mount(path: Path) -> bool:
    path.mkdir(exist_ok=True)
    ok = subprocess.run(["mount", "-t", "tmpfs", "none", str(path)], capture_output=True, check=False).returncode == 0
    if ok:
        subprocess.run(["umount", str(path)], check=True)
    return ok


@pytest.mark.parametrize("force_polling", [False, True])
def test_unmounted_share_keeps_its_photos(
    make_service: Factory, tmp_path: Path, view: View, force_polling: bool
) -> None:
    share = tmp_path / "share"
    if not sys.platform.startswith("linux") or not _can_mount(share):
        pytest.skip("needs permission to mount a tmpfs (root in a container)")
    subprocess.run(["mount", "-t", "tmpfs", "none", str(share)], check=True)
    try:
        for colour in ("red", "green", "blue"):
            make_photo(share / f"{colour}.jpg", colour)
        service, _ = started(make_service, share, view, 3, force_polling=force_polling)
        subprocess.run(["umount", str(share)], check=True)  # the mount point stays, empty
        wait_for(lambda: service.folders()[0].state is FolderState.MISSING, what="missing after unmount")
        wait_for(lambda: quiet(service), what="nothing left to do")
        assert len(view.paths()) == 3
        subprocess.run(["mount", "-t", "tmpfs", "none", str(share)], check=True)
        for colour in ("red", "green", "blue", "white"):
            make_photo(share / f"{colour}.jpg", colour)
        wait_for(lambda: len(view.paths()) == 4, what="reconciled after the share came back")
        settled = FolderState.POLLING if force_polling else FolderState.WATCHING
        wait_for(lambda: service.folders()[0].state is settled, what="watched again")
    finally:
        subprocess.run(["umount", str(share)], capture_output=True, check=False)


def test_without_a_model_it_says_so_and_still_answers(
    db: Path, photos: Path, tmp_path: Path
) -> None:
    with Library(LibraryOptions(db_path=db, model=COLOUR_MODEL)) as library:
        library.index([str(photos)])
    events: list[ServiceEvent] = []
    options = LibraryOptions(db_path=db, model=str(tmp_path / "no-such-model"))
    service = IndexService(options, on_event=events.append, debounce=0.2)
    service.start()
    try:
        wait_for(lambda: any(isinstance(e, ModelFailed) for e in events), what="model event")
        message = next(e.message for e in events if isinstance(e, ModelFailed))
        assert message and "No model folder" in message
        assert service.submit(lambda lib: lib.store.count_images()).result(10) == 8  # no model needed
        # The folder list is read just after the model's failure is reported.
        wait_for(lambda: [f.state for f in service.folders()] == [FolderState.ERROR], what="folder in error")
        with pytest.raises(ClipdeskError, match="No model folder"):
            service.submit(lambda lib: lib.search(Query(texts=("red",)))).result(10)
    finally:
        service.stop()


def test_periodic_reconcile_finds_what_the_watcher_missed(
    make_service: Factory, photos: Path, view: View
) -> None:
    # Polling once a minute: within the test only the periodic reconcile can see the change.
    started(make_service, photos, view, 8, force_polling=True, poll_interval=60,
            reconcile_interval=0.5)
    make_photo(photos / "missed.png", "purple")
    (photos / "blue1.jpg").unlink()
    wait_for(lambda: str(photos / "missed.png") in view.paths()
             and str(photos / "blue1.jpg") not in view.paths(), what="periodic reconcile")


def test_files_the_app_moved_away_leave_the_library_at_once(
    make_service: Factory, photos: Path, tmp_path: Path, view: View
) -> None:
    # Polling once a minute and no periodic reconcile: only files_removed can tell the library.
    service, events = started(make_service, photos, view, 8, force_polling=True, poll_interval=60,
                              reconcile_interval=0)
    trash = tmp_path / "trash"
    trash.mkdir()
    os.rename(photos / "red2.png", trash / "red2.png")
    service.files_removed([str(photos / "red2.png"), str(photos / "green1.jpg")])
    wait_for(lambda: str(photos / "red2.png") not in view.paths(), what="the moved photo forgotten")
    assert str(photos / "green1.jpg") in view.paths()  # still on disk: kept
    assert len(view.paths()) == 7 and view.vectors() == 7
    wait_for(lambda: any(isinstance(e, PhotosRemoved) for e in events), what="removed event")


def test_writes_run_on_the_indexing_thread_and_errors_go_to_the_caller(
    make_service: Factory, photos: Path, view: View, db: Path
) -> None:
    service, _ = started(make_service, photos, view, 8)

    def write(library: Library, task: service_mod.WriteContext) -> str:
        image_id = library.store.images_at([str(photos / "red1.jpg")])[str(photos / "red1.jpg")].id
        with library.store.write():
            library.store.set_phashes([(image_id, 42)])
        task.between_batches()  # no search waiting: returns at once
        return threading.current_thread().name

    assert service.submit_write(write).future.result(10) == "clipdesk-index"
    with Store(db, read_only=True) as store:
        assert (42, str(photos / "red1.jpg")) in [(p.phash, p.path) for p in store.duplicate_facts()]
    failing = service.submit_write(lambda library, task: 1 // 0)
    assert isinstance(failing.future.exception(10), ZeroDivisionError)  # to the caller, not a service error


def test_a_running_write_is_asked_to_stop_and_a_waiting_one_cancelled_at_stop(
    make_service: Factory, photos: Path, view: View
) -> None:
    service, _ = started(make_service, photos, view, 8)
    running = threading.Event()

    def long_write(library: Library, task: service_mod.WriteContext) -> bool:
        running.set()
        return task.cancel.wait(10)  # stop() asks it to end

    first = service.submit_write(long_write)
    assert running.wait(10)
    waiting = service.submit_write(lambda library, task: "never")
    service.stop()
    assert first.future.result(10) is True
    assert waiting.future.cancelled()
    assert "stopped" in str(service.submit_write(lambda library, task: 1).future.exception(1))


def test_writes_are_cancelled_when_the_indexing_thread_ends_on_an_error(
    make_service: Factory, photos: Path, view: View, db: Path, tmp_path: Path
) -> None:
    service, events = started(make_service, photos, view, 8)
    service.pause()  # so the write below waits
    waiting = service.submit_write(lambda library, task: "never")
    db.rename(tmp_path / "moved.db")  # the library replaced: the indexing thread stops
    wait_for(lambda: any(isinstance(e, ServiceError) and e.fatal for e in events), what="fatal error")
    wait_for(waiting.future.done, what="the waiting write cancelled")
    assert waiting.future.cancelled()
    assert "stopped" in str(service.submit_write(lambda library, task: 1).future.exception(1))


def test_a_model_that_fails_at_first_encode_is_reported(
    make_service: Factory, photos: Path
) -> None:
    class Broken(CountingEncoder):
        def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
            raise ModelUnavailable("Cannot load the model in /models/x: weights are corrupt")

    service, events = make_service(encoder=Broken())
    service.start()
    service.add_folder(str(photos))
    wait_for(lambda: any(isinstance(e, ModelFailed) for e in events), what="model event")
    wait_for(lambda: [f.state for f in service.folders()] == [FolderState.ERROR], what="folder error state")
    assert "corrupt" in (service.folders()[0].message or "")


def test_importing_the_service_does_not_import_torch() -> None:
    code = "import sys, clipdesk._service; sys.exit('torch' in sys.modules or 'transformers' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_reindex_with_another_model(make_service: Factory, photos: Path, db: Path, view: View) -> None:
    class OtherModel(CountingEncoder):
        model_id = "clipdesk-test:other"

    with Library(LibraryOptions(db_path=db, model=COLOUR_MODEL)) as library:
        library.index([str(photos)])
    refused, events = make_service(encoder=OtherModel())
    refused.start()
    wait_for(lambda: any(isinstance(e, ModelFailed) for e in events), what="mismatch")
    refused.stop()
    assert view.store.model() is not None and view.store.model().model_id == COLOUR_MODEL  # type: ignore[union-attr]
    other = OtherModel()
    service, _ = make_service(encoder=other, reindex=True)
    service.start()
    wait_for(lambda: other.count == 8 and len(view.paths()) == 8, what="everything encoded again")
    assert view.store.model().model_id == "clipdesk-test:other"  # type: ignore[union-attr]


def test_the_interactive_lane_cannot_write(make_service: Factory, photos: Path, view: View) -> None:
    service, _ = started(make_service, photos, view, 8)
    with pytest.raises(ClipdeskError, match="read-only"):
        service.submit(lambda lib: lib.store.set_meta("written", "by a search")).result(10)
    assert view.store.meta("written") is None
    assert search(service, "red")  # reading goes on


def test_a_library_file_replaced_while_running_is_not_written_to(
    make_service: Factory, photos: Path, view: View, db: Path, tmp_path: Path
) -> None:
    service, events = started(make_service, photos, view, 8)
    newer = tmp_path / "restored.db"
    Store(newer).close()
    os.replace(newer, db)  # another library moved over this one (a restore, a sync tool)

    def stopped_with_a_reason() -> bool:
        return any(isinstance(e, ServiceError) and e.fatal and "replaced" in e.message for e in events)

    wait_for(stopped_with_a_reason, what="the service to notice the new file")
    wait_for(lambda: not service.running, what="indexing to stop")
    make_photo(photos / "after.png", "purple")
    with Store(db) as store:  # the file now at the path was left alone
        assert store.count_images() == 0 and store.folders() == []


def test_rebuild_refuses_while_a_service_uses_the_library(
    make_service: Factory, photos: Path, view: View, db: Path
) -> None:
    service, _ = started(make_service, photos, view, 8)
    with pytest.raises(LibraryInUse, match="close it first"):
        rebuild(db)
    assert not list(db.parent.glob("*.backup-*"))
    make_photo(photos / "still-watched.png", "purple")
    wait_for(lambda: str(photos / "still-watched.png") in view.paths(), what="indexing goes on")
    service.stop()
    assert rebuild(db) is not None  # free once the service stopped
    with Store(db) as store:
        assert store.count_images() == 0
