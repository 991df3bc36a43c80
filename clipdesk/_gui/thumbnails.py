"""Thumbnails decoded off the GUI thread, for the rows on screen, cached on disk.

Workers decode with the core's `open_image` (EXIF orientation honoured, JPEG
draft mode) and hand back `QImage`s; only the GUI thread turns them into
`QPixmap`s. Requests are served newest first, so after a scroll the rows now on
screen load before the ones scrolled past, and `clear_queue()` drops every
queued job when the results change. The disk cache lives in
`cache_dir()/thumbnails`, is private to the user, and is keyed by image id,
file mtime and size, so an edited photo gets a fresh thumbnail; `revalidate()`
does the same for the thumbnails already in memory once the library changed.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QImage, QPixmap

from .._errors import ImageUnreadable
from .._imaging import open_image
from .._paths import make_private_dir
from .._paths import thumbnail_dir as thumbnail_dir  # its home is paths; the GUI finds it here too

DEFAULT_CACHE_MB = 512
_MEMORY_BYTES = 160 * 1024 * 1024  # decoded pixmaps kept for instant scroll-back


@dataclass(frozen=True)
class _Job:
    generation: int
    image_id: int
    path: str


Signature = tuple[int, int]  # a file's mtime_ns and size when its thumbnail was made


@dataclass(frozen=True)
class _Decoded:
    path: str
    image: QImage | None
    signature: Signature | None


def _signature(path: str) -> Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _to_qimage(image: object) -> QImage:
    """A PIL RGB image as a QImage that owns its pixels."""
    rgb = image.convert("RGB")  # type: ignore[attr-defined]
    data = rgb.tobytes("raw", "RGB")
    width, height = rgb.size
    return QImage(data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class ThumbnailLoader(QObject):
    """Create, use and stop from the GUI thread; decoding happens on its own threads."""

    ready = Signal(int)  # an image id whose thumbnail is now in memory (or known unreadable)
    _decoded = Signal(int, int, object)  # generation, image id, _Decoded
    _stale = Signal(object)  # image ids whose files changed since their thumbnails were made

    def __init__(
        self,
        size: int = 256,
        *,
        disk_cache: Path | None = None,
        cache_limit_mb: int = DEFAULT_CACHE_MB,
        workers: int = 2,
        memory_bytes: int = _MEMORY_BYTES,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.size = size
        self._disk = disk_cache
        self._cache_limit = cache_limit_mb * 1024 * 1024
        self._memory: collections.OrderedDict[int, QPixmap] = collections.OrderedDict()
        self._memory_bytes = 0
        self._memory_limit = memory_bytes
        self.failed: set[int] = set()
        self._made_from: dict[int, tuple[str, Signature | None]] = {}  # what each in-memory one shows
        self._checks: collections.deque[dict[int, tuple[str, Signature | None]]] = collections.deque()
        self._queue: collections.deque[_Job] = collections.deque()
        self._queued: set[int] = set()
        self._running = 0
        self._generation = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._decoded.connect(self._on_decoded)
        self._stale.connect(self._on_stale)
        self._threads = [
            threading.Thread(target=self._work, name=f"clipdesk-thumbs-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()
        if disk_cache is not None:
            threading.Thread(target=self.prune, name="clipdesk-thumbs-prune", daemon=True).start()

    # -- GUI thread -----------------------------------------------------------

    def pixmap(self, image_id: int, path: str) -> QPixmap | None:
        """The thumbnail if it is in memory; otherwise None, and it is queued for decoding."""
        found = self._memory.get(image_id)
        if found is not None:
            self._memory.move_to_end(image_id)
            return found
        if image_id not in self.failed:
            self.request(image_id, path)
        return None

    def loaded(self, image_id: int) -> bool:
        """Whether the thumbnail is in memory, or known to be unreadable."""
        return image_id in self._memory or image_id in self.failed

    def request(self, image_id: int, path: str) -> None:
        with self._cond:
            if image_id in self._queued:
                return
            self._queued.add(image_id)
            self._queue.append(_Job(self._generation, image_id, path))
            self._cond.notify()

    def clear_queue(self) -> None:
        """Drop every queued job (the results changed); decodes in progress are ignored."""
        with self._cond:
            self._generation += 1
            self._queue.clear()
            self._queued.clear()

    def forget(self) -> None:
        """Drop queued jobs and the in-memory thumbnails (e.g. the size changed)."""
        self.clear_queue()
        self._memory.clear()
        self._memory_bytes = 0
        self.failed.clear()
        self._made_from.clear()

    def revalidate(self) -> None:
        """Check, off this thread, whether photos shown from memory changed on disk; reload those.

        Call when the library changed (photos edited or fixed): an image keeps its id
        when its content changes, so the in-memory thumbnail would otherwise stay old.
        """
        if not self._made_from:
            return
        with self._cond:
            self._checks.append(dict(self._made_from))
            self._cond.notify()

    def set_cache_limit(self, megabytes: int) -> None:
        """A new disk cache limit; the cache is trimmed to it in the background."""
        self._cache_limit = megabytes * 1024 * 1024
        if self._disk is not None:
            threading.Thread(target=self.prune, name="clipdesk-thumbs-prune", daemon=True).start()

    @property
    def pending(self) -> int:
        """Jobs queued or being decoded."""
        with self._cond:
            return len(self._queue) + len(self._checks) + self._running

    def stop(self) -> None:
        """Stop the decoding threads and wait for them (at exit)."""
        with self._cond:
            self._stopping = True
            self._queue.clear()
            self._checks.clear()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(10)

    @Slot(int, int, object)
    def _on_decoded(self, generation: int, image_id: int, decoded: _Decoded) -> None:
        with self._cond:
            self._queued.discard(image_id)
        self._drop(image_id)
        self._made_from[image_id] = (decoded.path, decoded.signature)
        if decoded.image is None:
            self.failed.add(image_id)
            self.ready.emit(image_id)
            return
        # Kept even when it belongs to older results: it cost a decode and may be needed again.
        pixmap = QPixmap.fromImage(decoded.image)
        self._memory[image_id] = pixmap
        self._memory_bytes += _bytes(pixmap)
        while self._memory_bytes > self._memory_limit and len(self._memory) > 1:
            dropped_id, dropped = self._memory.popitem(last=False)
            self._memory_bytes -= _bytes(dropped)
            self._made_from.pop(dropped_id, None)
        self.ready.emit(image_id)

    @Slot(object)
    def _on_stale(self, image_ids: list[int]) -> None:
        for image_id in image_ids:
            self._drop(image_id)
            self.ready.emit(image_id)  # repainting the row asks for the new thumbnail

    def _drop(self, image_id: int) -> None:
        old = self._memory.pop(image_id, None)
        if old is not None:
            self._memory_bytes -= _bytes(old)
        self.failed.discard(image_id)
        self._made_from.pop(image_id, None)

    # -- worker threads ---------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._checks and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                check = self._checks.popleft() if self._checks else None
                # Decodes are served newest first: what is on screen now.
                job = self._queue.pop() if check is None else None
                self._running += 1
            if job is None:
                assert check is not None
                self._find_stale(check)
                continue
            signature = _signature(job.path)
            try:
                image = self._load(job.path, job.image_id)
            except Exception:  # noqa: BLE001 - one bad file must never stop the loader
                image = None
            with self._cond:
                self._running -= 1
                stopping = self._stopping
            if stopping:
                return
            try:
                self._decoded.emit(job.generation, job.image_id, _Decoded(job.path, image, signature))
            except RuntimeError:  # the loader was deleted while we decoded
                return

    def _find_stale(self, made_from: dict[int, tuple[str, Signature | None]]) -> None:
        stale = [i for i, (path, made) in made_from.items() if _signature(path) != made]
        with self._cond:
            self._running -= 1
        if stale:
            with contextlib.suppress(RuntimeError):  # the loader was deleted meanwhile
                self._stale.emit(stale)

    def _cache_file(self, image_id: int, path: str) -> Path | None:
        if self._disk is None:
            return None
        stat = os.stat(path)
        return self._disk / f"{image_id}-{stat.st_mtime_ns}-{stat.st_size}-{self.size}.jpg"

    def _load(self, path: str, image_id: int) -> QImage | None:
        """Decode one thumbnail (worker thread): from the disk cache if fresh, else the photo."""
        try:
            cached = self._cache_file(image_id, path)
        except OSError:
            return None
        if cached is not None and cached.exists():
            image = QImage(str(cached))
            if not image.isNull():
                return image
        try:
            photo, _ = open_image(path, min_side=self.size)
        except ImageUnreadable:
            return None
        photo.thumbnail((self.size, self.size))
        if cached is not None:
            self._save(photo, cached)
        return _to_qimage(photo)

    def _save(self, photo: object, target: Path) -> None:
        try:
            make_private_dir(target.parent)
            tmp = target.with_suffix(f".{threading.get_ident()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                photo.save(handle, "JPEG", quality=85)  # type: ignore[attr-defined]
            os.replace(tmp, target)
        except OSError:
            pass  # a full or read-only cache only costs speed

    def prune(self) -> None:
        """Delete the least recently written cache files beyond the size limit (any thread)."""
        if self._disk is None or not self._disk.is_dir():
            return
        try:
            entries = [(e.stat().st_mtime, e.stat().st_size, e.path) for e in os.scandir(self._disk)]
        except OSError:
            return
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self._cache_limit:
                break
            try:
                os.remove(path)
                total -= size
            except OSError:
                pass


def _bytes(pixmap: QPixmap) -> int:
    return pixmap.width() * pixmap.height() * 4
