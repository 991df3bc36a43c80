"""The indexing service: keeps a library in step with its folders, in the background.

Three lanes, each with its own thread:

- indexing: one thread owns the library's write connection and runs work
  items by priority: folders the user just added (or asked to re-index or
  remove) first, then changes the watcher saw, then reconciles (at start and
  periodically). Lower-priority work is cancelled (what it did is kept) and
  queued again when more urgent work arrives;
- interactive: `submit()` runs a function (a search, a classification, a
  lookup) on its own thread with its own Library, sharing the encoder; the
  indexer waits between model batches while such work is pending, so a
  search never waits behind a long batch;
- watching: `watcher.Watcher` turns file-system events into settled changes.

No Qt here: progress goes to a plain callback (`on_event`), which the GUI
re-emits as a signal and the CLI prints.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .encoder import Encoder, model_fingerprint
from .errors import ClipdeskError, ModelUnavailable
from .indexer import Indexer, IndexProgress, IndexReport
from .library import Library, LibraryOptions, real_path
from .models import load_encoder
from .scanner import scan
from .store import Store
from .watcher import Watcher

log = logging.getLogger(__name__)

T = TypeVar("T")

# Library folders the user removed without forgetting their photos: kept
# searchable, but not watched or reconciled (JSON list in the meta table).
UNWATCHED_KEY = "service.unwatched"

_PRIORITY = {"add": 0, "reindex": 0, "remove": 0, "changes": 1, "reconcile": 2}


@dataclass(frozen=True)
class ServiceEvent:
    """Something the service did or noticed; see SERVICE_API.md for the kinds."""

    kind: str
    folder: str | None = None
    path: str | None = None
    done: int = 0
    total: int = 0
    encoded: int = 0
    failed: int = 0
    images: int = 0
    rate: float = 0.0
    state: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class FolderStatus:
    path: str
    images: int
    state: str  # "watching" | "polling" | "indexing" | "error" | "missing" | "unwatched"
    message: str | None = None


@dataclass
class _Work:
    kind: str  # "add" | "reindex" | "remove" | "changes" | "reconcile"
    folder: str | None = None
    forget: bool = True
    changed: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)

    @property
    def priority(self) -> int:
        return _PRIORITY[self.kind]


class _Rate:
    """Images per second over the last few seconds of one piece of work."""

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, encoded: int) -> float:
        now = time.monotonic()
        self.samples.append((now, encoded))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.window:
            self.samples.popleft()
        t0, e0 = self.samples[0]
        return (encoded - e0) / (now - t0) if now > t0 else 0.0


class IndexService:
    """Watches a library's folders and indexes what changes; all methods are thread-safe."""

    def __init__(
        self,
        options: LibraryOptions,
        *,
        on_event: Callable[[ServiceEvent], None] | None = None,
        encoder: Encoder | None = None,
        force_polling: bool = False,
        debounce: float = 1.0,
        reconcile_interval: float = 600.0,
        start_watching: bool = True,
        poll_interval: float = 5.0,
        reindex: bool = False,
    ) -> None:
        """`reindex`: the library was made with another model; drop its vectors and
        encode everything again with options.model (the photos stay listed)."""
        self.options = options
        self._on_event = on_event
        self._injected = encoder
        self._reindex = reindex
        self._encoder: Encoder | None = None
        self._model_settled = threading.Event()
        self._model_error: str | None = None
        self.reconcile_interval = reconcile_interval
        self._watch_all = start_watching
        self._watcher = Watcher(
            self._on_changes,
            self._on_watch_state,
            self._on_reconcile_needed,
            debounce=debounce,
            force_polling=force_polling,
            poll_interval=poll_interval,
        )
        self._cv = threading.Condition(threading.RLock())
        # Guarded by _cv:
        self._urgent: deque[_Work] = deque()
        self._changed: dict[str, None] = {}
        self._gone: dict[str, None] = {}
        self._reconcile: dict[str, None] = {}
        self._current: _Work | None = None
        self._cancel: threading.Event | None = None
        self._requeue = False  # the current work was cancelled for more urgent work
        self._paused = False
        self._started = False
        self._stopping = False
        self._stopped = False
        self._interactive_pending = 0
        self._folder_rows: dict[str, int] = {}  # library folder -> images
        self._unwatched: set[str] = set()
        self._session_roots: set[str] = set()  # added while running: watched regardless
        self._watch_states: dict[str, tuple[str, str | None]] = {}
        self._watched: set[str] = set()  # folders the watcher has (for periodic reconciles)
        self._indexing: set[str] = set()
        self._published: dict[str, tuple[str, str | None]] = {}
        self._activity = True  # something happened since the last "idle" event
        self._next_reconcile = time.monotonic() + reconcile_interval
        self._calls: queue.Queue[tuple[Callable[[Library], Any], concurrent.futures.Future[Any]] | None] = (
            queue.Queue()
        )
        self._index_thread = threading.Thread(target=self._index_main, name="clipdesk-index", daemon=True)
        self._call_thread = threading.Thread(target=self._call_main, name="clipdesk-interactive", daemon=True)

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Reconcile the library's folders and watch them; returns at once."""
        with self._cv:
            if self._started:
                return
            self._started = True
        self._emit(ServiceEvent("started"))
        self._index_thread.start()
        self._call_thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop watching and indexing, keep what was done, and wait for the threads."""
        with self._cv:
            if not self._started or self._stopped:
                return
            self._stopping = True
            if self._cancel is not None:
                self._cancel.set()
            self._cv.notify_all()
        deadline = time.monotonic() + timeout
        self._watcher.stop()
        self._index_thread.join(max(0.0, deadline - time.monotonic()))
        # Interactive work not yet begun is cancelled; running work finishes.
        while True:
            try:
                item = self._calls.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[1].cancel()
                self._interactive_done()
        self._calls.put(None)
        self._call_thread.join(max(0.0, deadline - time.monotonic()))
        with self._cv:
            self._stopped = True
        if self._index_thread.is_alive():
            self._emit(ServiceEvent("error", message=f"indexing did not stop within {timeout:.0f} s"))
        self._emit(ServiceEvent("stopped"))

    def pause(self) -> None:
        """Hold indexing after the current model batch (watching goes on)."""
        with self._cv:
            self._paused = True
            self._cv.notify_all()

    def resume(self) -> None:
        with self._cv:
            self._paused = False
            self._cv.notify_all()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def running(self) -> bool:
        return self._started and not self._stopped and self._index_thread.is_alive()

    # -- folders ----------------------------------------------------------------

    def add_folder(self, path: str) -> None:
        """Remember a folder, index it before anything else, and watch it.

        A path that is not a folder is reported as an "error" event (the caller
        may be a GUI slot, where an exception would only reach a log).
        """
        root = real_path(path)
        if not os.path.isdir(root):
            problem = f"{path} is a file; choose a folder of photos." if os.path.exists(root) else (
                f"No folder at {path}."
            )
            self._emit(ServiceEvent("error", folder=path, message=problem))
            return
        self._enqueue(_Work("add", root))

    def remove_folder(self, path: str, *, forget: bool = True) -> None:
        """Stop watching a folder; with forget, drop its photos from the library too.

        Without forget its photos stay searchable, and it is no longer watched
        or reconciled (also after a restart) until it is added again.
        """
        root = self._known_root(path)
        self._watcher.unwatch(root)
        with self._cv:
            self._watched.discard(root)
        self._enqueue(_Work("remove", root, forget=forget))

    def reindex_folder(self, path: str) -> None:
        """Check every file of a folder again by content (hash), not only size and date."""
        self._enqueue(_Work("reindex", self._known_root(path)))

    def folders(self) -> list[FolderStatus]:
        """The library's folders with their image counts and state."""
        with self._cv:
            return [
                FolderStatus(root, count, *self._state_of(root))
                for root, count in sorted(self._folder_rows.items())
                if root not in self._unwatched
            ]

    def submit(self, fn: Callable[[Library], T]) -> concurrent.futures.Future[T]:
        """Run fn(library) on the interactive thread, ahead of the next indexing batch."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._cv:
            if self._stopping or self._stopped:
                future.set_exception(ClipdeskError("The indexing service has stopped."))
                return future
            self._interactive_pending += 1
        self._calls.put((fn, future))
        return future

    # -- plumbing -----------------------------------------------------------------

    def _emit(self, event: ServiceEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:  # a listener's bug must not stop the service
            log.exception("on_event failed for %r", event)

    def _known_root(self, path: str) -> str:
        root = real_path(path)
        with self._cv:
            # A folder stored under a path that no longer resolves (a vanished link) is kept as given.
            return path if root not in self._folder_rows and path in self._folder_rows else root

    def _enqueue(self, work: _Work) -> None:
        with self._cv:
            if self._stopping:
                return
            if work.kind == "changes":
                self._changed.update(dict.fromkeys(work.changed))
                self._gone.update(dict.fromkeys(work.gone))
            elif work.kind == "reconcile":
                assert work.folder is not None
                self._reconcile[work.folder] = None
            else:
                self._urgent.append(work)
            current = self._current
            if current is not None and self._cancel is not None:
                if work.kind == "remove" and current.folder == work.folder:
                    self._cancel.set()  # no point finishing a folder being removed
                elif current.priority > work.priority:
                    self._requeue = True
                    self._cancel.set()
            self._cv.notify_all()

    def _take(self) -> _Work | None:
        """The next work item, by priority; None once stopping. Indexing thread only."""
        with self._cv:
            while True:
                if self._stopping:
                    return None
                work = None if self._paused else self._pop()
                if work is not None:
                    self._current, self._cancel, self._requeue = work, threading.Event(), False
                    return work
                timeout = None
                if self.reconcile_interval > 0:
                    timeout = self._next_reconcile - time.monotonic()
                    if timeout <= 0:
                        self._next_reconcile = time.monotonic() + self.reconcile_interval
                        for root in self._watched:
                            self._reconcile[root] = None
                        continue
                self._cv.wait(timeout)

    def _pop(self) -> _Work | None:
        if self._urgent:
            return self._urgent.popleft()
        if self._changed or self._gone:
            work = _Work("changes", changed=list(self._changed), gone=list(self._gone))
            self._changed, self._gone = {}, {}
            return work
        if self._reconcile:
            root = next(iter(self._reconcile))
            del self._reconcile[root]
            return _Work("reconcile", root)
        return None

    def _queue_empty(self) -> bool:
        with self._cv:
            return not (self._urgent or self._changed or self._gone or self._reconcile)

    def _between_batches(self) -> None:
        """Called by the indexer after each model batch: hold while paused or while interactive work waits."""
        with self._cv:
            while not self._stopping and (self._paused or self._interactive_pending > 0):
                self._cv.wait(0.5)

    def _interactive_done(self) -> None:
        with self._cv:
            self._interactive_pending -= 1
            self._cv.notify_all()

    # -- folder states ----------------------------------------------------------

    def _state_of(self, root: str) -> tuple[str, str | None]:
        if root in self._indexing:
            return "indexing", None
        if self._model_error is not None:
            return "error", self._model_error
        return self._watch_states.get(root, ("unwatched", None))

    def _publish(self, roots: list[str] | None = None) -> None:
        """Send a "folder" event for each folder whose state changed."""
        events = []
        with self._cv:
            for root in roots if roots is not None else list(self._folder_rows):
                if root not in self._folder_rows or root in self._unwatched:
                    continue
                state = self._state_of(root)
                if self._published.get(root) != state:
                    self._published[root] = state
                    events.append(
                        ServiceEvent(
                            "folder", folder=root, state=state[0], message=state[1],
                            images=self._folder_rows[root],
                        )
                    )
        for event in events:
            self._emit(event)

    def _on_watch_state(self, root: str, state: str, message: str | None) -> None:
        with self._cv:
            self._watch_states[root] = (state, message)
        self._publish([root])

    def _on_changes(self, changed: list[str], gone: list[str]) -> None:
        total = len(changed) + len(gone)
        roots = {self._root_of(p) for p in changed + gone}
        self._emit(ServiceEvent(
            "queued", folder=roots.pop() if len(roots) == 1 else None,
            path=(changed + gone)[0] if total == 1 else None, total=total,
        ))
        self._enqueue(_Work("changes", changed=changed, gone=gone))

    def _on_reconcile_needed(self, root: str) -> None:
        self._enqueue(_Work("reconcile", root))

    def _root_of(self, path: str) -> str | None:
        with self._cv:
            best = None
            for root in self._folder_rows:
                if (path == root or path.startswith(root.rstrip(os.sep) + os.sep)) and (
                    best is None or len(root) > len(best)
                ):
                    best = root
            return best

    # -- the indexing thread --------------------------------------------------------

    def _index_main(self) -> None:
        library: Library | None = None
        try:
            library = Library(self.options, encoder=self._injected)
            self._encoder = self._load_model(library)
        except ClipdeskError as exc:
            self._emit(ServiceEvent("error", message=str(exc)))
        finally:
            self._model_settled.set()
        if library is None:
            return
        try:
            unwatched = set(json.loads(library.store.meta(UNWATCHED_KEY) or "[]"))
            with self._cv:
                self._unwatched = unwatched
            self._refresh(library.store, publish=False)
            self._watcher.start()
            if self._encoder is not None:
                for root in self._sync_watchers(library.store):
                    self._enqueue(_Work("reconcile", root))
            self._publish()
            while True:
                if self._queue_empty() and self._activity:
                    self._activity = False
                    self._emit(ServiceEvent("idle", images=library.store.count_images()))
                work = self._take()
                if work is None:
                    break
                self._run(library, work)
                with self._cv:
                    self._current = self._cancel = None
        except ClipdeskError as exc:  # e.g. the library stayed locked by another writer
            self._emit(ServiceEvent("error", message=str(exc)))
        except Exception as exc:  # a bug: say so rather than vanish
            log.exception("the indexing thread failed")
            self._emit(ServiceEvent("error", message=f"internal error: {exc!r}"))
        finally:
            try:
                library.store.checkpoint()
            except ClipdeskError as exc:  # readers still at work; the WAL is folded in later
                log.info("no checkpoint at stop: %s", exc)
            library.close()

    def _load_model(self, library: Library) -> Encoder | None:
        self._emit(ServiceEvent("model", state="loading"))
        try:
            spec = library.check_model(reindex=self._reindex)
            encoder = self._injected or load_encoder(
                spec, self.options.encoder_options(), progress=self._download_bar()
            )
            if self._reindex and library.store.model() is not None:
                # Vectors of two models never mix: the old ones go, every photo is encoded again.
                library.store.bind_model(
                    encoder.model_id, encoder.dim, reindex=True, fingerprint=model_fingerprint(encoder)
                )
            library.check_model(encoder=encoder)
        except ClipdeskError as exc:
            self._model_error = str(exc)
            self._emit(ServiceEvent("model", state="unavailable", message=str(exc)))
            return None
        self._emit(ServiceEvent("model", state="ready", message=encoder.model_id))
        return encoder

    def _download_bar(self) -> Any:
        """A tqdm class for model downloads that reports as "model" events."""
        import io

        from tqdm import tqdm

        service = self

        class Bar(tqdm):  # type: ignore[misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs["file"] = io.StringIO()
                kwargs.pop("name", None)
                super().__init__(*args, **kwargs)

            def update(self, n: float | None = 1) -> bool | None:
                out: bool | None = super().update(n)
                service._emit(
                    ServiceEvent(
                        "model", state="downloading", done=int(self.n), total=int(self.total or 0),
                        message=self.desc or None,
                    )
                )
                return out

        return Bar

    def _refresh(self, store: Store, *, publish: bool = True) -> None:
        """Re-read the library's folders and counts; publish state changes."""
        rows = {f.path: f.image_count for f in store.folders()}
        with self._cv:
            self._folder_rows = rows
        if publish:
            self._publish()

    def _sync_watchers(self, store: Store) -> list[str]:
        """Watch the library's folders (not those removed without forgetting); returns new ones."""
        with self._cv:
            wanted = {
                root for root in self._folder_rows
                if root not in self._unwatched and (self._watch_all or root in self._session_roots)
            }
        watched = set(self._watcher.roots())
        for root in watched - wanted:
            self._watcher.unwatch(root)
        new = sorted(wanted - watched)
        for root in new:
            self._watcher.watch(root)
        with self._cv:
            self._watched = set(self._watcher.roots())
        return new

    def _save_unwatched(self, store: Store) -> None:
        store.set_meta(UNWATCHED_KEY, json.dumps(sorted(self._unwatched)) if self._unwatched else None)

    def _run(self, library: Library, work: _Work) -> None:
        try:
            if work.kind == "remove":
                self._remove(library, work)
            elif self._encoder is None:
                self._emit(ServiceEvent(
                    "error", folder=work.folder, message=f"Cannot index without a model: {self._model_error}"
                ))
            else:
                self._index(library, self._encoder, work)
        except ModelUnavailable as exc:
            # Weights load at the first encode, so a broken model shows only now.
            self._activity = True
            self._model_error = str(exc)
            self._encoder = None
            self._emit(ServiceEvent("model", state="unavailable", message=str(exc)))
            self._publish()
        except ClipdeskError as exc:
            self._activity = True
            self._emit(ServiceEvent("error", folder=work.folder, message=str(exc)))
        except Exception as exc:  # a bug: report it, keep the service alive
            log.exception("indexing %s failed", work)
            self._activity = True
            self._emit(ServiceEvent("error", folder=work.folder, message=f"internal error: {exc!r}"))
        finally:
            with self._cv:
                self._indexing.clear()
            self._refresh(library.store)

    def _remove(self, library: Library, work: _Work) -> None:
        root = work.folder
        assert root is not None
        self._activity = True
        with self._cv:
            self._session_roots.discard(root)
            self._reconcile.pop(root, None)
        if work.forget:
            removed = library.forget(root)
            if root in self._unwatched:
                with self._cv:
                    self._unwatched.discard(root)
                self._save_unwatched(library.store)
            message = f"forgot {root} ({removed} images); the photos themselves were not touched"
            self._emit(ServiceEvent("removed", folder=root, done=removed, message=message,
                                    images=library.store.count_images()))
        else:
            if library.store.folder_by_path(root) is None:
                raise ClipdeskError(f"{root} is not a folder of this library.")
            with self._cv:
                self._unwatched.add(root)
            self._save_unwatched(library.store)
            message = f"stopped watching {root}; its photos stay searchable"
        with self._cv:
            self._published.pop(root, None)
        self._emit(ServiceEvent("folder", folder=root, state="removed", message=message))

    def _index(self, library: Library, encoder: Encoder, work: _Work) -> None:
        store = library.store
        root = work.folder
        if work.kind == "add":
            assert root is not None
            self._activity = True
            if root in self._unwatched:
                with self._cv:
                    self._unwatched.discard(root)
                self._save_unwatched(store)
            # A folder inside a known one is covered by it; a parent takes its children over.
            covering = store.add_folder(root).path
            with self._cv:
                self._session_roots.add(covering)
            self._refresh(store, publish=False)
            self._sync_watchers(store)  # watch first, so nothing changed while indexing is missed
            self._publish()
        if root is not None and store.folder_containing(root) is None:
            if work.kind == "reindex":
                raise ClipdeskError(f"{root} is not a folder of this library.")
            return  # removed meanwhile
        if root is not None and not os.path.isdir(root):
            return  # missing: the watcher reports it, and its photos are kept
        paths = [root] if root is not None else work.changed + work.gone
        concerned = sorted({r for r in map(self._root_of, paths) if r is not None})
        rate = _Rate()
        folder_event = concerned[0] if len(concerned) == 1 else None
        announced = False

        def progress(p: IndexProgress) -> None:
            nonlocal announced
            if p.phase != "indexing" or p.total == 0:
                return
            if not announced:
                announced = True
                self._activity = True
                with self._cv:
                    self._indexing.update(concerned)
                self._publish(concerned)
            self._emit(ServiceEvent(
                "progress", folder=folder_event, path=p.current, done=p.done, total=p.total,
                encoded=p.encoded, failed=p.failed, rate=rate.add(p.encoded),
            ))

        assert self._cancel is not None
        indexer = Indexer(
            store, encoder, workers=self.options.workers, progress=progress,
            cancel=self._cancel, between_batches=self._between_batches,
        )
        if work.kind == "changes":
            report = indexer.index_changes(work.changed, work.gone)
        elif work.kind == "reindex":
            assert root is not None
            paths = [s.path for s in scan(root)]
            report = indexer.index_changes(paths, [root], rehash=True)
        else:
            assert root is not None
            report = indexer.index([root])
        self._report(store, work, report, folder_event)
        with self._cv:
            requeue = report.cancelled and self._requeue and not self._stopping
        if requeue:
            self._enqueue(work)

    def _report(self, store: Store, work: _Work, report: IndexReport, folder: str | None) -> None:
        """Summary events for one piece of work."""
        for failure in report.failed:
            self._emit(ServiceEvent("failed", folder=folder, path=failure.path, message=failure.error))
        if not (report.indexed or report.moved or report.removed or report.failed):
            return
        self._activity = True
        images = store.count_images()
        single = work.changed[0] if work.kind == "changes" and len(work.changed) == 1 else None
        if report.indexed:
            self._emit(ServiceEvent(
                "encoded", folder=folder, path=single, done=report.indexed, total=report.indexed,
                encoded=report.encoded, failed=len(report.failed), images=images,
            ))
        if report.moved:
            self._emit(ServiceEvent("moved", folder=folder, path=single, done=report.moved, images=images))
        if report.removed:
            gone = work.gone[0] if work.kind == "changes" and len(work.gone) == 1 else None
            self._emit(ServiceEvent("removed", folder=folder, path=gone, done=report.removed, images=images))

    # -- the interactive thread ---------------------------------------------------

    def _call_main(self) -> None:
        library: Library | None = None
        try:
            while (item := self._calls.get()) is not None:
                fn, future = item
                try:
                    if not future.set_running_or_notify_cancel():
                        continue
                    try:
                        if library is None:
                            # Share the indexer's encoder rather than load a second copy.
                            while not self._model_settled.wait(0.2):
                                if self._stopping:
                                    raise ClipdeskError("The indexing service has stopped.")
                            library = Library(self.options, encoder=self._encoder)
                        future.set_result(fn(library))
                    except BaseException as exc:  # noqa: BLE001  # the caller gets it through the Future
                        future.set_exception(exc)
                finally:
                    self._interactive_done()
        finally:
            if library is not None:
                library.close()


__all__ = ["FolderStatus", "IndexService", "ServiceEvent"]
