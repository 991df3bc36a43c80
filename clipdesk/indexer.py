"""Bringing the library in step with folders on disk, encoding only what changed.

The pipeline: a stat-based plan (new, changed, unchanged, missing); then file
reading, hashing, decoding and preprocessing on a thread pool with bounded
look-ahead, while the calling thread runs the model on full batches and writes
each batch in one transaction. A moved or copied photo is recognised by its
content hash and keeps (or shares) its vector without being decoded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import BinaryIO

import numpy as np

from .encoder import Encoder, encode_checked, model_fingerprint
from .errors import ImageUnreadable
from .imaging import ImageInfo, open_image
from .paths import FolderSet, display, folder_holding, is_within
from .safefile import open_regular
from .scanner import FileStat, scan, stat_file
from .store import ImageState, NewImage, Store

HASH_CHUNK = 1 << 20
PROGRESS_INTERVAL = 0.1  # seconds between progress reports within a batch
# On the CPU, decode threads run below the model's threads: the model's threads
# wait for each other at every layer, so preempting one for a decode stalls both;
# decoding then fills the gaps. It also keeps background indexing from making the
# desktop sluggish. (Only raises niceness, which needs no privileges.)
DECODE_NICENESS = 10


@dataclass(frozen=True)
class Failure:
    path: str
    error: str


@dataclass
class IndexReport:
    """What one run did. `encoded` counts images the model actually ran on."""

    indexed: int = 0
    unchanged: int = 0
    moved: int = 0
    removed: int = 0
    encoded: int = 0
    failed: list[Failure] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["failed"] = [{"path": display(f.path), "error": f.error} for f in self.failed]
        return data

    def merge(self, other: IndexReport) -> None:
        self.indexed += other.indexed
        self.unchanged += other.unchanged
        self.moved += other.moved
        self.removed += other.removed
        self.encoded += other.encoded
        self.failed.extend(other.failed)
        self.cancelled = self.cancelled or other.cancelled
        self.seconds += other.seconds


@dataclass(frozen=True)
class IndexProgress:
    """A snapshot for progress displays; sent from the indexing thread."""

    phase: str  # "scanning", "indexing" or "done"
    done: int
    total: int
    current: str | None
    encoded: int
    failed: int
    elapsed: float


ProgressCallback = Callable[[IndexProgress], None]


@dataclass(frozen=True)
class Job:
    """A file that is new, or whose size or mtime changed since it was indexed."""

    stat: FileStat
    folder_id: int
    existing: ImageState | None


@dataclass(frozen=True)
class Prepared:
    """What a worker found: a hash, and pixels unless the hash made decoding unnecessary."""

    job: Job
    hash: str
    size: int
    mtime_ns: int
    pixels: np.ndarray | None = None
    info: ImageInfo | None = None
    error: str | None = None
    gone: bool = False  # the file was deleted after the scan found it


def hash_handle(handle: BinaryIO) -> tuple[str, int]:
    """The content hash of an open file, read in chunks, and how many bytes it covers."""
    digest = hashlib.blake2b(digest_size=16)
    size = 0
    while chunk := handle.read(HASH_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def hash_path(path: str) -> str:
    with open_regular(path) as handle:
        return hash_handle(handle)[0]


def default_workers(device: str = "cpu") -> int:
    """Decode threads: on a GPU decoding is the bottleneck, so use every core."""
    cores = os.cpu_count() or 2
    if device != "cpu":
        return max(2, min(16, cores))
    # Decoding shares the CPU with the model: on small machines more decoders
    # only steal time from it.
    return max(2, min(8, cores))


def _lower_priority() -> None:
    """Run this decode thread below the model's threads (Linux: niceness is per thread)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), DECODE_NICENESS)


class Indexer:
    """Indexes folders into one Store. Call from the thread that owns the Store."""

    def __init__(
        self,
        store: Store,
        encoder: Encoder,
        *,
        workers: int | None = None,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        between_batches: Callable[[], None] | None = None,
        reindex: bool = False,
    ) -> None:
        self.store = store
        self.encoder = encoder
        self.workers = workers or default_workers(getattr(encoder, "device", "cpu"))
        self.progress = progress
        self.cancel = cancel or threading.Event()
        # Lets a service pause us, or let interactive work run, between batches.
        self.between_batches = between_batches
        self._folder_roots: dict[int, str] | None = None  # for _vanished_twin
        store.bind_model(encoder.model_id, encoder.dim, reindex=reindex, fingerprint=model_fingerprint(encoder))

    # -- planning -----------------------------------------------------------

    def index(self, roots: Sequence[str]) -> IndexReport:
        """Add these folders to the library (if new) and bring them up to date."""
        start = time.monotonic()
        report = IndexReport()
        jobs: list[Job] = []
        missing: dict[str, ImageState] = {}
        self._emit("scanning", 0, 0, None, report, start)
        for root in roots:
            if not os.path.isdir(root):
                # A folder that is not there (an unplugged drive) must not lose its index.
                report.failed.append(Failure(root, "folder not found; its photos were kept"))
                continue
            folder = self.store.add_folder(root)
            known = {
                p: s for p, s in self.store.image_states(folder.id).items() if is_within(p, root)
            }
            if known and _is_empty_dir(root):
                # An unmounted drive or share leaves its mount point behind, empty: that
                # must not cost the index. (A folder the user emptied still has its
                # photos dropped when the watcher sees them go, or by `forget`.)
                report.failed.append(
                    Failure(
                        root,
                        f"folder is empty (an unmounted drive or share?); its {len(known)} photos "
                        "were kept. `clipdesk forget` drops them.",
                    )
                )
                continue
            for stat in scan(root, on_error=lambda p, e: report.failed.append(Failure(p, e))):
                state = known.pop(stat.path, None)
                if state is not None and state.size == stat.size and state.mtime_ns == stat.mtime_ns:
                    report.unchanged += 1
                else:
                    jobs.append(Job(stat, folder.id, state))
            missing.update(known)
        self._run(jobs, missing, report, start)
        report.seconds = time.monotonic() - start
        return report

    def index_files(self, stats: Iterable[FileStat], folder_id: int) -> IndexReport:
        """Bring specific files up to date (for a watcher that knows what changed)."""
        start = time.monotonic()
        report = IndexReport()
        jobs = []
        states = self.store.image_states(folder_id)
        for stat in stats:
            state = states.get(stat.path)
            if state is not None and state.size == stat.size and state.mtime_ns == stat.mtime_ns:
                report.unchanged += 1
            else:
                jobs.append(Job(stat, folder_id, state))
        self._run(jobs, {}, report, start)
        report.seconds = time.monotonic() - start
        return report

    def index_changes(
        self, changed: Iterable[str], gone: Iterable[str] = (), *, rehash: bool = False
    ) -> IndexReport:
        """Bring the paths a watcher saw change up to date, without scanning whole folders.

        `changed` are files created or modified; `gone` are files or whole folders
        deleted or moved away. A photo that left a `gone` path and turns up among
        `changed` keeps its vector (matched by content hash, no re-encode). Paths
        outside the library's folders are ignored. With `rehash`, files whose size
        and mtime look unchanged are read and hashed again too.
        """
        start = time.monotonic()
        report = IndexReport()
        folders = {folder.path: folder for folder in self.store.folders()}
        states: dict[int, dict[str, ImageState]] = {}

        def folder_of(path: str) -> int | None:
            holder = folder_holding(path, folders)
            if holder is None:
                return None
            best = folders[holder]
            if best.id not in states:
                states[best.id] = self.store.image_states(best.id)
            return best.id

        missing: dict[str, ImageState] = {}
        gone = list(gone)
        gone_set = FolderSet(gone)
        for gone_folder in {f for f in map(folder_of, gone) if f is not None}:
            for path, known in states[gone_folder].items():
                if gone_set.holds(path) and stat_file(path) is None:
                    missing[path] = known
        jobs = []
        for path in dict.fromkeys(changed):
            folder_id = folder_of(path)
            if folder_id is None:
                continue
            state = states[folder_id].get(path)
            stat = stat_file(path)
            if stat is None:
                if state is not None:
                    missing[path] = state
            elif (
                not rehash
                and state is not None
                and state.size == stat.size
                and state.mtime_ns == stat.mtime_ns
            ):
                report.unchanged += 1
            else:
                missing.pop(path, None)
                jobs.append(Job(stat, folder_id, state))
        self._run(jobs, missing, report, start)
        report.seconds = time.monotonic() - start
        return report

    # -- the pipeline -------------------------------------------------------

    def _run(
        self, jobs: list[Job], missing: dict[str, ImageState], report: IndexReport, start: float
    ) -> None:
        known_hashes = self.store.hash_index()
        claimed: set[int] = set()  # missing images found again under a new path
        missing_by_hash: dict[str, ImageState] = {}
        for state in missing.values():
            missing_by_hash.setdefault(state.hash, state)
        total = len(jobs)
        done = 0
        batch: list[Prepared] = []
        pending_writes: list[Prepared] = []
        batch_size = max(1, self.encoder.batch_size)
        lookahead = max(2 * batch_size, 4 * self.workers)
        self._emit("indexing", 0, total, None, report, start)

        on_cpu = getattr(self.encoder, "device", "cpu") == "cpu"
        with ThreadPoolExecutor(
            self.workers,
            thread_name_prefix="clipdesk-decode",
            initializer=_lower_priority if on_cpu else None,
        ) as pool:
            queue: deque[Future[Prepared]] = deque()
            todo = iter(jobs)

            def refill() -> None:
                while len(queue) < lookahead:
                    job = next(todo, None)
                    if job is None:
                        return
                    queue.append(pool.submit(self._prepare, job, known_hashes))

            refill()
            last_emit = 0.0
            while queue:
                if self.cancel.is_set():
                    for future in queue:
                        future.cancel()
                    report.cancelled = True
                    break
                prepared = queue.popleft().result()
                refill()
                done += 1
                if prepared.gone and prepared.job.existing is not None:
                    # An indexed photo deleted since the scan: removed with the missing ones.
                    missing[prepared.job.stat.path] = prepared.job.existing
                elif prepared.error is not None:
                    report.failed.append(Failure(prepared.job.stat.path, prepared.error))
                elif prepared.pixels is None:
                    pending_writes.append(prepared)
                else:
                    batch.append(prepared)
                if len(batch) >= batch_size:
                    self._flush(batch, pending_writes, missing_by_hash, known_hashes, claimed, report)
                    batch, pending_writes = [], []
                    last_emit = 0.0  # always report a committed batch
                    if self.between_batches is not None:
                        self.between_batches()
                elif len(pending_writes) >= 256:
                    self._flush([], pending_writes, missing_by_hash, known_hashes, claimed, report)
                    pending_writes = []
                now = time.monotonic()
                if now - last_emit > PROGRESS_INTERVAL:
                    last_emit = now
                    self._emit("indexing", done, total, prepared.job.stat.path, report, start)
        self._flush(batch, pending_writes, missing_by_hash, known_hashes, claimed, report)
        if not report.cancelled:
            gone = [s.id for s in missing.values() if s.id not in claimed]
            with self.store.write():
                self.store.delete_images(gone)
            report.removed += len(gone)
        self._emit("done", done, total, None, report, start)

    def _prepare(self, job: Job, known_hashes: dict[str, int]) -> Prepared:
        """Runs on a worker thread: read once, hash, and decode only if the content is new."""
        path = job.stat.path
        try:
            # Never the whole file in memory: hashed in chunks, decoded from the file.
            with open_regular(path) as handle:
                before = os.fstat(handle.fileno())
                digest, size = hash_handle(handle)
                mtime_ns = before.st_mtime_ns
                if job.existing is not None and job.existing.hash == digest:
                    return Prepared(job, digest, size, mtime_ns)
                if digest in known_hashes:
                    return Prepared(job, digest, size, mtime_ns)
                if not size:
                    return Prepared(job, digest, size, mtime_ns, error="empty file (0 bytes)")
                handle.seek(0)
                try:
                    image, info = open_image(handle, min_side=self.encoder.image_size)
                    pixels = self.encoder.preprocess(image)
                except ImageUnreadable as exc:
                    return Prepared(job, digest, size, mtime_ns, error=str(exc))
                after = os.fstat(handle.fileno())
        except FileNotFoundError:
            return Prepared(
                job, "", 0, 0, error="file disappeared before it could be read", gone=True
            )
        except ImageUnreadable as exc:  # not a regular file, or far too big to be a photo
            return Prepared(job, "", 0, 0, error=str(exc))
        except OSError as exc:
            return Prepared(job, "", 0, 0, error=f"cannot read file: {exc.strerror or exc}")
        except MemoryError:
            return Prepared(job, "", 0, 0, error="not enough memory to index this file")
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            # The pixels may not be the content hashed; the next run reads it again.
            return Prepared(job, "", 0, 0, error="file changed while it was being read (still being written?)")
        return Prepared(job, digest, size, mtime_ns, pixels=pixels, info=info)

    def _encode(self, batch: list[Prepared], report: IndexReport) -> list[tuple[Prepared, np.ndarray]]:
        if not batch:
            return []
        try:
            vectors = encode_checked(self.encoder, np.stack([p.pixels for p in batch]))  # type: ignore[misc]
            report.encoded += len(batch)
            return list(zip(batch, vectors))
        except (RuntimeError, ValueError):
            # One odd input must not cost the batch: retry one by one to isolate it.
            out = []
            for item in batch:
                try:
                    vector = encode_checked(self.encoder, item.pixels[None])[0]  # type: ignore[index]
                except (RuntimeError, ValueError) as exc:
                    report.failed.append(Failure(item.job.stat.path, f"model failed on this image: {exc}"))
                    continue
                report.encoded += 1
                out.append((item, vector))
            return out

    def _flush(
        self,
        batch: list[Prepared],
        writes: list[Prepared],
        missing_by_hash: dict[str, ImageState],
        known_hashes: dict[str, int],
        claimed: set[int],
        report: IndexReport,
    ) -> None:
        encoded = self._encode(batch, report)
        if not encoded and not writes:
            return
        with self.store.write():
            for item in writes:
                self._write_known_content(item, missing_by_hash, known_hashes, claimed, report)
            for item, vector in encoded:
                assert item.info is not None
                record = _new_image(item, item.info)
                if item.job.existing is not None:
                    self.store.replace_image(item.job.existing.id, record, vector)
                else:
                    self.store.insert_image(record, vector)
                report.indexed += 1

    def _write_known_content(
        self,
        item: Prepared,
        missing_by_hash: dict[str, ImageState],
        known_hashes: dict[str, int],
        claimed: set[int],
        report: IndexReport,
    ) -> None:
        """Content we already have a vector for: touched, moved, or a copy of another photo."""
        job = item.job
        if job.existing is not None and job.existing.hash == item.hash:
            self.store.update_file(job.existing.id, job.stat.path, job.folder_id, item.size, item.mtime_ns)
            report.unchanged += 1
            return
        moved_from = missing_by_hash.pop(item.hash, None)
        if moved_from is None:
            moved_from = self._vanished_twin(item.hash, job.stat.path, claimed)
        if moved_from is not None:
            if job.existing is not None:
                self.store.delete_images([job.existing.id])
            self.store.update_file(moved_from.id, job.stat.path, job.folder_id, item.size, item.mtime_ns)
            claimed.add(moved_from.id)
            report.moved += 1
            return
        source = known_hashes.get(item.hash)
        record = self.store.image(source) if source is not None else None
        if record is None or record.hash != item.hash:
            # The image we meant to copy from was changed or removed earlier in this
            # run (contents swapped between files): find another holder of the content.
            record = self.store.image_with_hash(item.hash)
        vector = self.store.vector(record.id) if record is not None else None
        if record is None or vector is None:
            encoded = self._encode_now(item, report)
            if isinstance(encoded, str):
                report.failed.append(Failure(job.stat.path, encoded))
                return
            vector, info = encoded
        else:
            info = ImageInfo(record.width or 0, record.height or 0, record.taken_at)
        new = _new_image(item, info)
        if job.existing is not None:
            self.store.replace_image(job.existing.id, new, vector)
        else:
            self.store.insert_image(new, vector)
        report.indexed += 1

    def _encode_now(
        self, item: Prepared, report: IndexReport
    ) -> tuple[np.ndarray, ImageInfo] | str:
        """Decode and encode one file on this thread (a rare fallback); a reason if it cannot."""
        fresh = self._prepare(Job(item.job.stat, item.job.folder_id, None), {})
        if fresh.error is not None:
            return fresh.error
        if fresh.hash != item.hash or fresh.pixels is None or fresh.info is None:
            return "file changed while it was being indexed; will retry"
        try:
            vector = encode_checked(self.encoder, fresh.pixels[None])[0]
        except (RuntimeError, ValueError) as exc:
            return f"model failed on this image: {exc}"
        report.encoded += 1
        return vector, fresh.info

    def _vanished_twin(self, digest: str, path: str, claimed: set[int]) -> ImageState | None:
        """An image with this content whose file is gone: the same photo, moved.

        A watcher may report a move's new path before its old one (or the old
        one in another folder); this keeps the vector and id instead of making
        a copy and deleting the original afterwards.
        """
        if self._folder_roots is None:
            self._folder_roots = {f.id: f.path for f in self.store.folders()}
        roots = self._folder_roots
        for state in self.store.images_with_hash(digest):
            if state.id in claimed or state.path == path or stat_file(state.path) is not None:
                continue
            # A photo on an unplugged drive is not gone: leave it where it is.
            if os.path.isdir(roots.get(state.folder_id, "")):
                return state
        return None

    def _emit(
        self, phase: str, done: int, total: int, current: str | None, report: IndexReport, start: float
    ) -> None:
        if self.progress is not None:
            self.progress(
                IndexProgress(
                    phase, done, total, current, report.encoded, len(report.failed),
                    time.monotonic() - start,
                )
            )


def _is_empty_dir(path: str) -> bool:
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except OSError:
        return False


def _new_image(item: Prepared, info: ImageInfo) -> NewImage:
    return NewImage(
        folder_id=item.job.folder_id,
        path=item.job.stat.path,
        size=item.size,
        mtime_ns=item.mtime_ns,
        hash=item.hash,
        width=info.width,
        height=info.height,
        taken_at=info.taken_at,
    )


def remove_missing(store: Store, paths: Iterable[str]) -> int:
    """Drop images whose files are gone (for a watcher's delete events)."""
    removed = 0
    with store.write():
        for path in paths:
            removed += store.delete_image_at(path)
    return removed


