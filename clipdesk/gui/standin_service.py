"""A TEMPORARY stand-in for `clipdesk.service.IndexService` (issue 3), used only until it merges.

It implements the subset of the contract in SERVICE_API.md the GUI uses, with
plain threads over `Library`: no file watching, no periodic reconcile. The GUI
imports the real service first (see `backend.py`); delete this module once
`clipdesk/service.py` is on the branch.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..encoder import Encoder
from ..errors import ClipdeskError
from ..indexer import IndexProgress
from ..library import Library, LibraryOptions, real_path

T = TypeVar("T")


@dataclass(frozen=True)
class ServiceEvent:
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
    state: str
    message: str | None = None


class _Stop(Exception):
    pass


class IndexService:
    """Indexes folders on one thread and runs interactive work on another."""

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
    ) -> None:
        self.options = options
        self._on_event = on_event or (lambda e: None)
        self._encoder = encoder
        self._encoder_lock = threading.Lock()
        self._tasks: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._calls: queue.Queue[tuple[Callable[[Library], Any], concurrent.futures.Future[Any]] | None] = (
            queue.Queue()
        )
        self._stop = threading.Event()
        self._resume = threading.Event()
        self._resume.set()
        self._threads: list[threading.Thread] = []
        self._states: dict[str, tuple[str, str | None]] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        try:  # create the database once, before two threads race to
            Library(self.options).close()
        except ClipdeskError as exc:
            self._emit(ServiceEvent("error", message=str(exc)))
        self._threads = [
            threading.Thread(target=self._index_loop, name="clipdesk-index", daemon=True),
            threading.Thread(target=self._call_loop, name="clipdesk-interactive", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self._tasks.put(("reconcile", ""))
        self._emit(ServiceEvent("started"))

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._resume.set()
        self._tasks.put(None)
        self._calls.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._emit(ServiceEvent("stopped"))

    def pause(self) -> None:
        self._resume.clear()

    def resume(self) -> None:
        self._resume.set()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    # -- folders --------------------------------------------------------------

    def add_folder(self, path: str) -> None:
        self._tasks.put(("add", real_path(path)))

    def remove_folder(self, path: str, *, forget: bool = True) -> None:
        self._tasks.put(("forget" if forget else "unwatch", real_path(path)))

    def reindex_folder(self, path: str) -> None:
        self._tasks.put(("reindex", real_path(path)))

    def folders(self) -> list[FolderStatus]:
        with self._lock:
            return [
                FolderStatus(path, self._counts.get(path, 0), state, message)
                for path, (state, message) in self._states.items()
            ]

    def submit(self, fn: Callable[[Library], T]) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._calls.put((fn, future))
        return future

    # -- threads --------------------------------------------------------------

    def _emit(self, event: ServiceEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # a listener's bug must not kill the service
            pass

    def _shared_encoder(self, library: Library) -> Encoder:
        with self._encoder_lock:
            if self._encoder is None:
                self._emit(ServiceEvent("model", state="loading"))
                self._encoder = library.encoder
                self._emit(ServiceEvent("model", state="ready", message=self._encoder.model_id))
            return self._encoder

    def _call_loop(self) -> None:
        library: Library | None = None
        while True:
            item = self._calls.get()
            if item is None:
                break
            fn, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                if library is None:
                    library = Library(self.options, encoder=self._encoder)
                if library._encoder is None and self._encoder is not None:
                    library._encoder = self._encoder
                future.set_result(fn(library))
            except BaseException as exc:
                future.set_exception(exc)
        if library is not None:
            library.close()

    def _index_loop(self) -> None:
        try:
            library = Library(self.options, encoder=self._encoder)
        except ClipdeskError as exc:
            self._emit(ServiceEvent("error", message=str(exc)))
            return
        with library:
            for folder in library.folders():
                self._set_state(folder.path, "watching", count=folder.image_count)
            while not self._stop.is_set():
                task = self._tasks.get()
                if task is None:
                    break
                kind, path = task
                try:
                    self._run_task(library, kind, path)
                except _Stop:
                    break
                except ClipdeskError as exc:
                    if path:
                        self._set_state(path, "error", str(exc))
                    self._emit(ServiceEvent("error", folder=path or None, message=str(exc)))
                if self._tasks.empty():
                    self._emit(ServiceEvent("idle", images=library.store.count_images()))

    def _run_task(self, library: Library, kind: str, path: str) -> None:
        if kind == "forget":
            with self._lock:
                self._states.pop(path, None)
            if library.store.folder_by_path(path):
                library.forget(path)
            self._emit(ServiceEvent("folder", folder=path, state="removed"))
            return
        if kind == "unwatch":
            with self._lock:
                self._states.pop(path, None)
            self._emit(ServiceEvent("folder", folder=path, state="removed"))
            return
        roots = [path] if path else [f.path for f in library.folders()]
        if not roots:
            return
        try:
            library.check_model(reindex=kind == "reindex")
            library._encoder = self._shared_encoder(library)
        except ClipdeskError as exc:
            self._emit(ServiceEvent("model", state="unavailable", message=str(exc)))
            raise
        for root in roots:
            if not os.path.isdir(root):
                self._set_state(root, "missing", "folder not found; its photos were kept")
                continue
            self._set_state(root, "indexing")
            self._emit(ServiceEvent("started", folder=root))
            last = [time.monotonic(), 0]

            def progress(p: IndexProgress, root: str = root) -> None:
                if self._stop.is_set():
                    raise _Stop
                while not self._resume.wait(0.1):
                    if self._stop.is_set():
                        raise _Stop
                if p.phase != "indexing":
                    return
                now = time.monotonic()
                rate = p.encoded / p.elapsed if p.elapsed > 0 else 0.0
                if p.done == p.total or now - last[0] > 0.1:
                    last[0] = now
                    self._emit(
                        ServiceEvent(
                            "progress", folder=root, path=p.current, done=p.done, total=p.total,
                            encoded=p.encoded, failed=p.failed, rate=rate,
                        )
                    )

            report = library.index([root], reindex=kind == "reindex", progress=progress)
            for failure in report.failed:
                self._emit(ServiceEvent("failed", folder=root, path=failure.path, message=failure.error))
            counts = {f.path: f.image_count for f in library.folders()}
            self._set_state(root, "watching", count=counts.get(root, 0))

    def _set_state(self, path: str, state: str, message: str | None = None, count: int | None = None) -> None:
        with self._lock:
            self._states[path] = (state, message)
            if count is not None:
                self._counts[path] = count
            images = self._counts.get(path, 0)
        self._emit(ServiceEvent("folder", folder=path, state=state, message=message, images=images))
