"""The bridge between the indexing service's threads and the GUI thread.

`ServiceWorker` owns one `IndexService`. Service events arrive on service
threads and are re-emitted as a Qt signal (queued onto the GUI thread).
`call()` runs a function with a `Library` on the service's interactive lane and
hands its result or error to a callback on the GUI thread (`write()` the same on
the library's writer, for labels and fingerprints); `control()` does the
same for service calls that may block (add/remove folders, pause, stop), so the
GUI thread never waits on the model, the database or a decode. File work the
user starts (`run()`: sorting into folders, copying an image) has a thread of
its own, so Pause and closing the window never wait behind a long copy.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from .._encoder import Encoder
from .._errors import ClipdeskError
from .._library import Library, LibraryOptions
from .._events import ServiceEvent
from .._service import IndexService, WriteContext

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]
Errback = Callable[[BaseException], None]


class Call:
    """A pending call; `cancel()` makes its result be dropped (the work may still run, but a
    write is asked to stop at its next batch)."""

    def __init__(self, token: int, on_cancel: Callable[[], None] | None = None) -> None:
        self.token = token
        self.cancelled = False
        self._on_cancel = on_cancel

    def cancel(self) -> None:
        self.cancelled = True
        if self._on_cancel is not None:
            self._on_cancel()


class ServiceWorker(QObject):
    """Owns the service; create, use and stop it from the GUI thread."""

    service_event = Signal(object)  # ServiceEvent (not `event`: that is QObject's own method)
    busy_changed = Signal(int)  # calls in flight
    _finished = Signal(int, object)  # token, concurrent.futures.Future

    def __init__(
        self,
        options: LibraryOptions,
        *,
        encoder: Encoder | None = None,
        start_watching: bool = True,
        reindex: bool = False,
        parent: QObject | None = None,
    ) -> None:
        """reindex: the library was made with another model; the service re-encodes it."""
        super().__init__(parent)
        self.options = options
        self._service = IndexService(
            options, on_event=self._on_event, encoder=encoder, start_watching=start_watching,
            reindex=reindex,
        )
        self._control = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="clipdesk-control")
        self._files = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="clipdesk-files")
        self._closing = threading.Event()
        self._pending: dict[int, tuple[Call, Callback | None, Errback | None]] = {}
        self._tokens = itertools.count(1)
        self._stopped = False
        # Queued even when the work is done before call() returns (the future then runs its
        # done-callback at once, on this thread): a callback never runs inside call().
        self._finished.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    # -- service threads -> GUI thread -------------------------------------------

    def _on_event(self, event: ServiceEvent) -> None:
        """Called on service threads: only emit (queued to the GUI thread)."""
        if not self._stopped:
            self.service_event.emit(event)

    def _track(self, future: concurrent.futures.Future[Any], callback: Callback | None,
               errback: Errback | None, on_cancel: Callable[[], None] | None = None) -> Call:
        token = next(self._tokens)
        handle = Call(token, on_cancel)
        self._pending[token] = (handle, callback, errback)
        self.busy_changed.emit(len(self._pending))
        future.add_done_callback(lambda f: self._emit_finished(token, f))
        return handle

    def _emit_finished(self, token: int, future: concurrent.futures.Future[Any]) -> None:
        """Called on whichever thread finished the work."""
        # RuntimeError: the window (and this object) is already gone; nothing to tell.
        with contextlib.suppress(RuntimeError):
            self._finished.emit(token, future)

    @Slot(int, object)
    def _deliver(self, token: int, future: concurrent.futures.Future[Any]) -> None:
        handle, callback, errback = self._pending.pop(token, (None, None, None))
        self.busy_changed.emit(len(self._pending))
        if handle is None or handle.cancelled or self._stopped:
            return
        if future.cancelled():
            # Cancelled by the service, not by us: a write that will never run (the indexing
            # thread stopped on an error the window shows). Say so, so no one waits for it.
            if errback is not None:
                errback(ClipdeskError("The indexing service has stopped."))
            return
        exc = future.exception()
        if exc is not None:
            if errback is not None:
                errback(exc)
            return
        if callback is not None:
            callback(future.result())

    # -- GUI thread API -----------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._run_control(self._service.start)

    def call(self, fn: Callable[[Library], Any], callback: Callback | None = None,
             errback: Errback | None = None) -> Call:
        """Run fn(library) on the interactive lane; callback(result) later on the GUI thread."""
        return self._track(self._service.submit(fn), callback, errback)

    def write(self, fn: Callable[[Library, WriteContext], Any], callback: Callback | None = None,
              errback: Errback | None = None) -> Call:
        """Run fn(library, context) on the library's writer (the indexing thread), ahead of
        indexing, held while indexing is paused; callback(result) later on the GUI thread.
        Long work checks context.cancel (set by Call.cancel) and calls context.between_batches."""
        job = self._service.submit_write(fn)
        return self._track(job.future, callback, errback, on_cancel=job.cancel.set)

    def control(self, fn: Callable[[IndexService], Any], callback: Callback | None = None,
                errback: Errback | None = None) -> Call:
        """Run fn(service) off the GUI thread (service calls that may wait on its locks)."""
        return self._track(self._control.submit(fn, self._service), callback, errback)

    def run(self, fn: Callable[[], Any], callback: Callback | None = None,
            errback: Errback | None = None) -> Call:
        """Run fn() on the file-work thread (sorting, copying an image); long work checks `closing`."""
        return self._track(self._files.submit(fn), callback, errback)

    @property
    def closing(self) -> bool:
        """The window is closing: file work should stop at its next file (any thread)."""
        return self._closing.is_set()

    def _run_control(self, fn: Callable[[], Any], errback: Errback | None = None) -> Call:
        return self._track(self._control.submit(fn), None, errback)

    def add_folder(self, path: str, errback: Errback | None = None) -> Call:
        return self._run_control(lambda: self._service.add_folder(path), errback)

    def remove_folder(self, path: str, *, forget: bool, errback: Errback | None = None) -> Call:
        return self._run_control(lambda: self._service.remove_folder(path, forget=forget), errback)

    def reindex_folder(self, path: str, errback: Errback | None = None) -> Call:
        return self._run_control(lambda: self._service.reindex_folder(path), errback)

    def files_removed(self, paths: list[str], errback: Errback | None = None) -> Call:
        """The app moved these photos away (to the trash): the library drops them."""
        return self._run_control(lambda: self._service.files_removed(paths), errback)

    def folders(self, callback: Callback, errback: Errback | None = None) -> Call:
        return self.control(lambda s: s.folders(), callback, errback)

    def pause(self) -> None:
        self._run_control(self._service.pause)

    def resume(self) -> None:
        self._run_control(self._service.resume)

    @property
    def paused(self) -> bool:
        return bool(self._service.paused)

    def stop_later(self, done: Callable[[], None], timeout: float = 30.0) -> None:
        """Stop the service without blocking the GUI thread; done() runs on it afterwards."""
        if self._stopped:
            done()
            return
        future = self._control.submit(self._service.stop, timeout)
        self._stopped = True
        self._files.shutdown(wait=False)  # a model switch: sorting the user started carries on
        self._pending.clear()
        relay = _Relay(self)
        relay.fired.connect(done)
        future.add_done_callback(lambda f: relay.fire())
        self._control.shutdown(wait=False)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the service and join its threads (at exit; the GUI thread waits here)."""
        if self._stopped:
            return
        self._stopped = True
        self._stop_file_work()
        stopping = self._control.submit(self._service.stop, timeout)
        self._control.shutdown(wait=True)
        self._pending.clear()
        error = stopping.exception()
        if error is not None:  # a bug in stopping: say so, the window is closing anyway
            log.error("the indexing service did not stop cleanly", exc_info=error)

    def _stop_file_work(self) -> None:
        """Drop file work not yet begun; what runs stops at its next file, without anyone waiting."""
        self._closing.set()
        self._files.shutdown(wait=False, cancel_futures=True)


class _Relay(QObject):
    """Carries one "done" from a worker thread to the GUI thread."""

    fired = Signal()

    def fire(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.fired.emit()
