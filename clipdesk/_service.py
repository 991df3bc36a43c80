"""The indexing service: keeps a library in step with its folders, in the background.

Three lanes, each with its own thread:

- indexing: one thread owns the library's write connection and runs work
  items by priority: folders the user just added (or asked to re-index or
  remove) first, then changes the watcher saw, then reconciles (at start and
  periodically). Lower-priority work is cancelled (what it did is kept) and
  queued again when more urgent work arrives;
- interactive: `submit()` runs a function (a search, a classification, a
  lookup) on its own thread with its own, read-only Library, sharing the
  encoder; the indexer waits between model batches while such work is
  pending, so a search never waits behind a long batch;
- watching: `watcher.Watcher` turns file-system events into settled changes.

While it runs, the service holds the library's shared lock (`librarylock`),
and stops indexing if another file takes the library's place.

No Qt here: progress goes to a plain callback (`on_event`) as the records of
`clipdesk._events`, which the GUI re-emits as a signal and the CLI prints.
docs/service.md lists what a caller may call, on which thread, and what comes back.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from ._encoder import Encoder, model_fingerprint
from ._errors import ClipdeskError, ModelUnavailable
from ._events import (
    ChangesQueued,
    FileSkipped,
    FolderChanged,
    FolderRemoved,
    FolderState,
    FolderStatus,
    Idle,
    Indexed,
    ModelDownloading,
    ModelFailed,
    ModelLoading,
    ModelReady,
    Moved,
    PhotosRemoved,
    Progress,
    ServiceError,
    ServiceEvent,
    Started,
    Stopped,
)
from ._indexer import Indexer, IndexProgress, IndexReport
from ._library import Library, LibraryOptions, real_path
from ._librarylock import LibraryLock, file_identity
from ._models import load_encoder
from ._paths import display, folder_holding
from ._scanner import scan
from ._store import Store
from ._watcher import Watcher

log = logging.getLogger(__name__)

T = TypeVar("T")

# Seconds between checks, while idle, that the library file is still the one opened.
LIBRARY_CHECK_INTERVAL = 5.0


class LibraryReplaced(ClipdeskError):
    """Another file took the library's place (or it was moved away) while the service ran."""


class _Kind(Enum):
    """A piece of indexing work; the value is its priority (lower goes first)."""

    ADD = (0, "add")
    REINDEX = (0, "reindex")
    REMOVE = (0, "remove")
    WRITE = (0, "write")  # a change the caller asked for (e.g. applying a label set)
    CHANGES = (1, "changes")
    RECONCILE = (2, "reconcile")

    @property
    def priority(self) -> int:
        return self.value[0]


@dataclass
class _Work:
    kind: _Kind
    folder: str | None = None
    forget: bool = True
    changed: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    job: WriteJob[Any] | None = None  # for WRITE
    call: Callable[[Library, WriteContext], Any] | None = None  # for WRITE

    @property
    def priority(self) -> int:
        return self.kind.priority


@dataclass(frozen=True)
class WriteContext:
    """What a write job gets besides the library: its cancel event, and a pause point."""

    cancel: threading.Event  # set by WriteJob.cancel.set() or when the service stops
    between_batches: Callable[[], None]  # holds while the service is paused


@dataclass(frozen=True)
class WriteJob(Generic[T]):
    """A job on the indexing (writer) thread: its result or error, and how to cancel it."""

    future: concurrent.futures.Future[T]
    cancel: threading.Event


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


@dataclass
class _Pending:
    """Work waiting for the indexing thread, one lane per priority; guarded by the service's lock.

    Changes and reconciles are merged (a path or folder waits once, however often it is seen).
    """

    urgent: deque[_Work] = field(default_factory=deque)
    changed: dict[str, None] = field(default_factory=dict)
    gone: dict[str, None] = field(default_factory=dict)
    reconcile: dict[str, None] = field(default_factory=dict)

    def put(self, work: _Work) -> None:
        if work.kind is _Kind.CHANGES:
            self.changed.update(dict.fromkeys(work.changed))
            self.gone.update(dict.fromkeys(work.gone))
        elif work.kind is _Kind.RECONCILE:
            assert work.folder is not None
            self.reconcile[work.folder] = None
        else:
            self.urgent.append(work)

    def pop(self) -> _Work | None:
        if self.urgent:
            return self.urgent.popleft()
        if self.changed or self.gone:
            work = _Work(_Kind.CHANGES, changed=list(self.changed), gone=list(self.gone))
            self.changed, self.gone = {}, {}
            return work
        if self.reconcile:
            root = next(iter(self.reconcile))
            del self.reconcile[root]
            return _Work(_Kind.RECONCILE, root)
        return None

    def empty(self) -> bool:
        return not (self.urgent or self.changed or self.gone or self.reconcile)


@dataclass
class _Folders:
    """What the service knows of the library's folders; guarded by the service's lock."""

    rows: dict[str, int] = field(default_factory=dict)  # library folder -> images
    # Removed without forgetting: searchable, not watched (folders.watched in the library).
    unwatched: set[str] = field(default_factory=set)
    session_roots: set[str] = field(default_factory=set)  # added while running: watched regardless
    watch_states: dict[str, tuple[FolderState, str | None]] = field(default_factory=dict)
    watched: set[str] = field(default_factory=set)  # what the watcher has (for periodic reconciles)
    indexing: set[str] = field(default_factory=set)
    published: dict[str, tuple[FolderState, str | None]] = field(default_factory=dict)

    def root_of(self, path: str) -> str | None:
        """The library folder a path lies in (the innermost, if folders nest)."""
        return folder_holding(path, self.rows)


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
        self.reconcile_interval = reconcile_interval
        self._on_event = on_event
        self._watch_all = start_watching
        # The model (set by the indexing thread; the interactive thread shares it).
        self._injected = encoder
        self._reindex = reindex
        self._encoder: Encoder | None = None
        self._model_settled = threading.Event()
        self._model_error: str | None = None
        self._watcher = Watcher(
            self._on_changes, self._on_watch_state, self._on_reconcile_needed,
            debounce=debounce, force_polling=force_polling, poll_interval=poll_interval,
        )
        self._cv = threading.Condition(threading.RLock())
        # Guarded by _cv:
        self._pending = _Pending()
        self._folders = _Folders()
        self._current: _Work | None = None
        self._cancel: threading.Event | None = None
        self._requeue = False  # the current work was cancelled for more urgent work
        self._paused = self._started = self._stopping = self._stopped = False
        self._index_ended = False  # the indexing thread has finished (stopped, or a fatal error)
        self._interactive_pending = 0
        self._activity = True  # something happened since the last Idle event
        self._next_reconcile = time.monotonic() + reconcile_interval
        # The library file this service opened, to notice another file put in its place.
        self._lock = LibraryLock(options.db_path)
        self._identity: tuple[int, int] | None = None
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
        self._emit(Started())
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
        self._cancel_waiting_writes()
        with self._cv:
            self._stopped = True
        if self._index_thread.is_alive():
            self._emit(ServiceError(f"indexing did not stop within {timeout:.0f} s"))
        self._emit(Stopped())

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

        A path that is not a folder is reported as a ServiceError event (the caller
        may be a GUI slot, where an exception would only reach a log).
        """
        root = real_path(path)
        if not os.path.isdir(root):
            problem = f"{path} is a file; choose a folder of photos." if os.path.exists(root) else (
                f"No folder at {path}."
            )
            self._emit(ServiceError(problem, folder=path))
            return
        self._enqueue(_Work(_Kind.ADD, root))

    def remove_folder(self, path: str, *, forget: bool = True) -> None:
        """Stop watching a folder; with forget, drop its photos from the library too.

        Without forget its photos stay searchable, and it is no longer watched
        or reconciled (also after a restart) until it is added again.
        """
        root = self._known_root(path)
        self._watcher.unwatch(root)
        with self._cv:
            self._folders.watched.discard(root)
        self._enqueue(_Work(_Kind.REMOVE, root, forget=forget))

    def reindex_folder(self, path: str) -> None:
        """Check every file of a folder again by content (hash), not only size and date."""
        self._enqueue(_Work(_Kind.REINDEX, self._known_root(path)))

    def files_removed(self, paths: list[str]) -> None:
        """Photos the app itself moved away (to the trash): drop them from the library now,
        as when the watcher sees files go (a path whose file is still there is kept)."""
        if paths:
            self._enqueue(_Work(_Kind.CHANGES, gone=list(paths)))

    def folders(self) -> list[FolderStatus]:
        """The library's folders with their image counts and state."""
        with self._cv:
            return [
                FolderStatus(root, count, *self._state_of(root))
                for root, count in sorted(self._folders.rows.items())
                if root not in self._folders.unwatched
            ]

    def submit_write(self, fn: Callable[[Library, WriteContext], T]) -> WriteJob[T]:
        """Run fn(library, context) on the indexing thread, the one that writes, before further
        indexing (e.g. `library.apply_labels(..., cancel=context.cancel,
        between_batches=context.between_batches)`); it waits while the service is paused.
        Any thread may call this."""
        job: WriteJob[T] = WriteJob(concurrent.futures.Future(), threading.Event())
        with self._cv:
            ended = self._index_ended
        if ended or not self._enqueue(_Work(_Kind.WRITE, job=job, call=fn)):
            job.future.set_exception(ClipdeskError("The indexing service has stopped."))
        return job

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
            rows = self._folders.rows
            return path if root not in rows and path in rows else root

    def _enqueue(self, work: _Work) -> bool:
        """Queue work for the indexing thread; False once the service is stopping."""
        with self._cv:
            if self._stopping or self._stopped:
                return False
            self._pending.put(work)
            current = self._current
            if current is not None and self._cancel is not None:
                if work.kind is _Kind.REMOVE and current.folder == work.folder:
                    self._cancel.set()  # no point finishing a folder being removed
                elif current.priority > work.priority:
                    self._requeue = True
                    self._cancel.set()
            self._cv.notify_all()
        return True

    def _take(self) -> _Work | None:
        """The next work item, by priority; None once stopping. Indexing thread only.

        While it waits it checks every LIBRARY_CHECK_INTERVAL s that the library file is
        still the one it opened (LibraryReplaced if not).
        """
        while True:
            self._check_library()
            with self._cv:
                if self._stopping:
                    return None
                work = None if self._paused else self._pending.pop()
                if work is not None:
                    cancel = work.job.cancel if work.job is not None else threading.Event()
                    self._current, self._cancel, self._requeue = work, cancel, False
                    return work
                timeout = LIBRARY_CHECK_INTERVAL
                if self.reconcile_interval > 0:
                    due = self._next_reconcile - time.monotonic()
                    if due <= 0:
                        self._next_reconcile = time.monotonic() + self.reconcile_interval
                        for root in self._folders.watched:
                            self._pending.reconcile[root] = None
                        continue
                    timeout = min(timeout, due)
                self._cv.wait(timeout)

    def _queue_empty(self) -> bool:
        with self._cv:
            return self._pending.empty()

    def _between_batches(self) -> None:
        """Called by the indexer after each model batch: hold while paused or while interactive work
        waits; stop the work if the library file was replaced."""
        if self._library_replaced() and self._cancel is not None:
            self._cancel.set()  # _take raises LibraryReplaced next
        with self._cv:
            while not self._stopping and (self._paused or self._interactive_pending > 0):
                self._cv.wait(0.5)

    def _interactive_done(self) -> None:
        with self._cv:
            self._interactive_pending -= 1
            self._cv.notify_all()

    # -- the library file ---------------------------------------------------------

    def _library_replaced(self) -> bool:
        return self._identity is not None and file_identity(self.options.db_path) != self._identity

    def _check_library(self) -> None:
        """Refuse to write on when another file took the library's place (or it was moved away)."""
        if self._library_replaced():
            raise LibraryReplaced(
                f"The library {display(str(self.options.db_path))} was replaced or moved while "
                "clipdesk was running; indexing stopped. Restart clipdesk to use the library "
                "now at that path."
            )

    # -- folder states ----------------------------------------------------------

    def _state_of(self, root: str) -> tuple[FolderState, str | None]:
        if root in self._folders.indexing:
            return FolderState.INDEXING, None
        if self._model_error is not None:
            return FolderState.ERROR, self._model_error
        return self._folders.watch_states.get(root, (FolderState.UNWATCHED, None))

    def _publish(self, roots: list[str] | None = None) -> None:
        """Send a FolderChanged event for each folder whose state changed."""
        events = []
        with self._cv:
            folders = self._folders
            for root in roots if roots is not None else list(folders.rows):
                if root not in folders.rows or root in folders.unwatched:
                    continue
                state = self._state_of(root)
                if folders.published.get(root) != state:
                    folders.published[root] = state
                    events.append(FolderChanged(FolderStatus(root, folders.rows[root], *state)))
        for event in events:
            self._emit(event)

    def _on_watch_state(self, root: str, state: str, message: str | None) -> None:
        # The watcher names its states with FolderState's values.
        with self._cv:
            self._folders.watch_states[root] = (FolderState(state), message)
        self._publish([root])

    def _on_changes(self, changed: list[str], gone: list[str]) -> None:
        total = len(changed) + len(gone)
        roots = {self._root_of(p) for p in changed + gone}
        self._emit(ChangesQueued(
            total, folder=roots.pop() if len(roots) == 1 else None,
            path=(changed + gone)[0] if total == 1 else None,
        ))
        self._enqueue(_Work(_Kind.CHANGES, changed=changed, gone=gone))

    def _on_reconcile_needed(self, root: str) -> None:
        self._enqueue(_Work(_Kind.RECONCILE, root))

    def _root_of(self, path: str) -> str | None:
        with self._cv:
            return self._folders.root_of(path)

    # -- the indexing thread --------------------------------------------------------

    def _cancel_waiting_writes(self) -> None:
        """Write jobs that will never run are cancelled, not left hanging (at stop, or when
        the indexing thread ended on a fatal error); later ones fail at once."""
        with self._cv:
            self._index_ended = True
            waiting = [w for w in self._pending.urgent if w.job is not None]
            self._pending.urgent = deque(w for w in self._pending.urgent if w.job is None)
        for work in waiting:
            assert work.job is not None
            work.job.future.cancel()

    def _index_main(self) -> None:
        library = self._open_library()
        if library is None:
            self._cancel_waiting_writes()
            return
        try:
            self._start_watching(library.store)
            while True:
                if self._queue_empty() and self._activity:
                    self._activity = False
                    self._emit(Idle(library.store.count_images()))
                work = self._take()
                if work is None:
                    break
                self._run(library, work)
                with self._cv:
                    self._current = self._cancel = None
        except ClipdeskError as exc:  # the library was replaced, or stayed locked by another writer
            self._emit(ServiceError(str(exc), fatal=True))
        except Exception as exc:  # a bug: say so rather than vanish
            log.exception("the indexing thread failed")
            self._emit(ServiceError(f"internal error: {exc!r}", fatal=True))
        finally:
            self._cancel_waiting_writes()
            self._close_library(library)

    def _open_library(self) -> Library | None:
        """Take the library's shared lock, open it and load the model; None (and an event) if it cannot."""
        library: Library | None = None
        try:
            self._lock.acquire_shared()
            library = Library(self.options, encoder=self._injected)
            self._identity = file_identity(self.options.db_path)
            self._encoder = self._load_model(library)
        except ClipdeskError as exc:
            self._emit(ServiceError(str(exc), fatal=True))
            if library is not None:
                library.close()
                library = None
            self._lock.release()
        finally:
            self._model_settled.set()
        return library

    def _start_watching(self, store: Store) -> None:
        """Read the library's folders, watch them, and queue a reconcile of each (with a model)."""
        unwatched = store.unwatched_folders()
        with self._cv:
            self._folders.unwatched = unwatched
        self._refresh(store, publish=False)
        self._watcher.start()
        if self._encoder is not None:
            for root in self._sync_watchers(store):
                self._enqueue(_Work(_Kind.RECONCILE, root))
        self._publish()

    def _close_library(self, library: Library) -> None:
        try:
            # Also when the file was replaced: this folds our pages into the file we opened and
            # empties the write-ahead log, which keeps its name, so the new file never reads them.
            library.store.checkpoint()
        except ClipdeskError as exc:  # readers still at work; the WAL is folded in later
            log.info("no checkpoint at stop: %s", exc)
        library.close()
        self._lock.release()

    def _load_model(self, library: Library) -> Encoder | None:
        self._emit(ModelLoading())
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
            self._emit(ModelFailed(str(exc)))
            return None
        self._emit(ModelReady(encoder.model_id))
        return encoder

    def _download_bar(self) -> Any:
        """A tqdm class for model downloads that reports as ModelDownloading events."""
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
                service._emit(ModelDownloading(int(self.n), int(self.total or 0), self.desc or None))
                return out

        return Bar

    def _refresh(self, store: Store, *, publish: bool = True) -> None:
        """Re-read the library's folders and counts; publish state changes."""
        rows = {f.path: f.image_count for f in store.folders()}
        with self._cv:
            self._folders.rows = rows
        if publish:
            self._publish()

    def _sync_watchers(self, store: Store) -> list[str]:
        """Watch the library's folders (not those removed without forgetting); returns new ones."""
        with self._cv:
            folders = self._folders
            wanted = {
                root for root in folders.rows
                if root not in folders.unwatched and (self._watch_all or root in folders.session_roots)
            }
        watched = set(self._watcher.roots())
        for root in watched - wanted:
            self._watcher.unwatch(root)
        new = sorted(wanted - watched)
        for root in new:
            self._watcher.watch(root)
        with self._cv:
            self._folders.watched = set(self._watcher.roots())
        return new

    def _set_unwatched(self, store: Store, root: str, unwatched: bool) -> None:
        """Mark a folder removed-but-kept (or not) and save the list in the library."""
        with self._cv:
            names = self._folders.unwatched
            if (root in names) == unwatched:
                return
            if unwatched:
                names.add(root)
            else:
                names.discard(root)
            saved = set(names)
        store.set_unwatched(saved)

    def _run(self, library: Library, work: _Work) -> None:
        if work.kind is _Kind.WRITE:
            self._write(library, work)
            return
        try:
            if work.kind is _Kind.REMOVE:
                self._remove(library, work)
            elif self._encoder is None:
                if work.kind is _Kind.ADD:
                    # Remembered (and watched) now; indexed by the reconcile once a model loads.
                    self._add(library.store, work)
                    self._emit(ServiceError(
                        f"{work.folder} is added: its photos are indexed once the model is available.",
                        folder=work.folder))
                else:
                    self._emit(ServiceError(f"Cannot index without a model: {self._model_error}",
                                            folder=work.folder))
            else:
                self._index(library.store, self._encoder, work)
        except ModelUnavailable as exc:
            # Weights load at the first encode, so a broken model shows only now.
            self._activity = True
            self._model_error = str(exc)
            self._encoder = None
            self._emit(ModelFailed(str(exc)))
            self._publish()
        except ClipdeskError as exc:
            self._activity = True
            self._emit(ServiceError(str(exc), folder=work.folder))
        except Exception as exc:  # a bug: report it, keep the service alive
            log.exception("indexing %s failed", work)
            self._activity = True
            self._emit(ServiceError(f"internal error: {exc!r}", folder=work.folder))
        finally:
            with self._cv:
                self._folders.indexing.clear()
            self._refresh(library.store)

    def _write(self, library: Library, work: _Work) -> None:
        """Run a job from submit_write; its result or error goes to its future."""
        assert work.job is not None and work.call is not None
        future = work.job.future
        if not future.set_running_or_notify_cancel():
            return
        self._activity = True
        try:
            if self._encoder is None:
                raise ClipdeskError(f"Cannot do this without a model: {self._model_error}")
            library.adopt_encoder(self._encoder)
            result = work.call(library, WriteContext(work.job.cancel, self._between_batches))
        except BaseException as exc:  # the caller decides what an error means
            if not isinstance(exc, ClipdeskError):
                log.error("a write job failed", exc_info=exc)
            future.set_exception(exc)
        else:
            future.set_result(result)
        finally:
            self._refresh(library.store)

    def _remove(self, library: Library, work: _Work) -> None:
        root = work.folder
        assert root is not None
        self._activity = True
        with self._cv:
            self._folders.session_roots.discard(root)
            self._pending.reconcile.pop(root, None)
        if work.forget:
            removed = library.forget(root)
            self._set_unwatched(library.store, root, False)
            message = f"forgot {root} ({removed} images); the photos themselves were not touched"
        else:
            if library.store.folder_by_path(root) is None:
                raise ClipdeskError(f"{root} is not a folder of this library.")
            removed = 0
            self._set_unwatched(library.store, root, True)
            message = f"stopped watching {root}; its photos stay searchable"
        with self._cv:
            self._folders.published.pop(root, None)
        self._emit(FolderRemoved(root, removed, library.store.count_images(), message))

    # -- indexing one work item -----------------------------------------------------

    def _index(self, store: Store, encoder: Encoder, work: _Work) -> None:
        """Add, re-index or bring up to date what one work item names, with summary events."""
        if work.kind is _Kind.ADD:
            self._add(store, work)
        if not self._still_wanted(store, work):
            return
        concerned = self._roots_concerned(work)
        folder = concerned[0] if len(concerned) == 1 else None  # named in events when there is one
        assert self._cancel is not None
        indexer = Indexer(
            store, encoder, workers=self.options.workers, progress=self._progress_relay(concerned, folder),
            cancel=self._cancel, between_batches=self._between_batches,
        )
        report = self._run_indexer(indexer, work)
        self._report(store, work, report, folder)
        with self._cv:
            requeue = report.cancelled and self._requeue and not self._stopping
        if requeue:
            self._enqueue(work)

    def _add(self, store: Store, work: _Work) -> None:
        """Remember a folder the user added and watch it (before indexing, so nothing is missed)."""
        assert work.folder is not None
        self._activity = True
        self._set_unwatched(store, work.folder, False)
        # A folder inside a known one is covered by it; a parent takes its children over.
        covering = store.add_folder(work.folder).path
        with self._cv:
            self._folders.session_roots.add(covering)
        self._refresh(store, publish=False)
        self._sync_watchers(store)
        self._publish()

    def _still_wanted(self, store: Store, work: _Work) -> bool:
        """False when the work's folder was removed meanwhile or is missing (the watcher says so)."""
        root = work.folder
        if root is None:
            return True
        if store.folder_containing(root) is None:
            if work.kind is _Kind.REINDEX:
                raise ClipdeskError(f"{root} is not a folder of this library.")
            return False
        return os.path.isdir(root)  # a missing folder's photos are kept

    def _roots_concerned(self, work: _Work) -> list[str]:
        paths = [work.folder] if work.folder is not None else work.changed + work.gone
        return sorted({r for r in map(self._root_of, paths) if r is not None})

    def _progress_relay(self, concerned: list[str], folder: str | None) -> Callable[[IndexProgress], None]:
        """The indexer's progress callback: marks the folders indexing at the first file, sends Progress."""
        rate = _Rate()
        announced = False

        def progress(p: IndexProgress) -> None:
            nonlocal announced
            if p.phase != "indexing" or p.total == 0:
                return
            if not announced:
                announced = True
                self._activity = True
                with self._cv:
                    self._folders.indexing.update(concerned)
                self._publish(concerned)
            self._emit(Progress(
                p.done, p.total, p.encoded, p.failed, rate.add(p.encoded), folder=folder, path=p.current,
            ))

        return progress

    @staticmethod
    def _run_indexer(indexer: Indexer, work: _Work) -> IndexReport:
        if work.kind is _Kind.CHANGES:
            # Read what the watcher saw written even if its stat looks the same: an
            # edit can keep size and times (cheap: a hash, no re-encode if unchanged).
            return indexer.index_changes(work.changed, work.gone, rehash=True)
        assert work.folder is not None
        if work.kind is _Kind.REINDEX:
            paths = [s.path for s in scan(work.folder)]
            return indexer.index_changes(paths, [work.folder], rehash=True)
        return indexer.index([work.folder])

    def _report(self, store: Store, work: _Work, report: IndexReport, folder: str | None) -> None:
        """Summary events for one piece of work."""
        for failure in report.failed:
            self._emit(FileSkipped(failure.path, failure.error, folder=folder))
        if not (report.indexed or report.moved or report.removed or report.failed):
            return
        self._activity = True
        images = store.count_images()
        changes = work.kind is _Kind.CHANGES
        single = work.changed[0] if changes and len(work.changed) == 1 else None
        if report.indexed:
            self._emit(Indexed(
                report.indexed, report.encoded, len(report.failed), images, folder=folder, path=single,
            ))
        if report.moved:
            self._emit(Moved(report.moved, images, folder=folder, path=single))
        if report.removed:
            gone = work.gone[0] if changes and len(work.gone) == 1 else None
            self._emit(PhotosRemoved(report.removed, images, folder=folder, path=gone))

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
                            library = self._open_reader()
                        future.set_result(fn(library))
                    except BaseException as exc:  # noqa: BLE001  # the caller gets it through the Future
                        future.set_exception(exc)
                finally:
                    self._interactive_done()
        finally:
            if library is not None:
                library.close()

    def _open_reader(self) -> Library:
        """The interactive thread's library: read-only, as all writes go through the indexing thread."""
        # Share the indexer's encoder rather than load a second copy.
        while not self._model_settled.wait(0.2):
            if self._stopping:
                raise ClipdeskError("The indexing service has stopped.")
        return Library(self.options, create=False, read_only=True, encoder=self._encoder)


__all__ = ["FolderState", "FolderStatus", "IndexService", "LibraryReplaced", "ServiceEvent"]
