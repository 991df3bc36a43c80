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

from .encoder import Encoder
from .errors import ImageUnreadable
from .imaging import ImageInfo, open_image
from .paths import FolderSet, display, folder_holding, is_within
from .safefile import open_regular
from .scanner import FileStat, is_gone, scan, stat_file
from .store import FailedFile, ImageState, NewImage, Store

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
    # Files that failed in an earlier run and have not changed since: not read again.
    skipped: int = 0
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
        self.skipped += other.skipped
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


FailureLookup = Callable[[str], FailedFile | None]


@dataclass
class _Plan:
    """What comparing files with the library found: jobs for files that changed, and
    the ctime and inode to record for images indexed before those were kept."""

    jobs: list[Job] = field(default_factory=list)
    identities: list[tuple[int, int, int]] = field(default_factory=list)

    def add(
        self,
        stat: FileStat,
        folder_id: int,
        state: ImageState | None,
        report: IndexReport,
        failure: FailureLookup | None,
    ) -> None:
        """Plan one file. `failure` finds an earlier failure of it, to skip it if it is
        unchanged since; None reads it whatever it looks like (a rehash)."""
        if failure is not None and state is not None and _same_file(state, stat):
            report.unchanged += 1
            if state.ctime_ns is None or state.inode is None:
                self.identities.append((state.id, stat.ctime_ns, stat.inode))
            return
        failed = failure(stat.path) if failure is not None else None
        if failed is not None and _facts(failed) == _facts(stat):
            report.skipped += 1
        else:
            self.jobs.append(Job(stat, folder_id, state))


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
        store.bind_model(encoder.model_id, encoder.dim, reindex=reindex)

    # -- planning -----------------------------------------------------------

    def index(self, roots: Sequence[str]) -> IndexReport:
        """Add these folders to the library (if new) and bring them up to date."""
        start = time.monotonic()
        report = IndexReport()
        plan = _Plan()
        stale_failures: list[str] = []
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
            unreadable: dict[str, str] = {}
            failures = {
                p: f for p, f in self.store.failures(folder.id).items() if is_within(p, root)
            }

            def failure(path: str, failures: dict[str, FailedFile] = failures) -> FailedFile | None:
                return failures.pop(path, None)

            for stat in scan(root, on_error=unreadable.__setitem__):
                plan.add(stat, folder.id, known.pop(stat.path, None), report, failure)
            missing.update(_keep_unreadable(known, unreadable, report))
            # Failed files no longer there (unless behind a folder that could not be read).
            behind = FolderSet(unreadable)
            stale_failures += [p for p in failures if not behind.holds(p)]
        self._record_plan(plan, stale_failures)
        self._run(plan.jobs, missing, report, start)
        report.seconds = time.monotonic() - start
        return report

    def index_files(self, stats: Iterable[FileStat], folder_id: int) -> IndexReport:
        """Bring specific files up to date (for a watcher that knows what changed)."""
        start = time.monotonic()
        report = IndexReport()
        plan = _Plan()
        states = self.store.image_states(folder_id)
        for stat in stats:
            plan.add(stat, folder_id, states.get(stat.path), report, self.store.failure)
        self._record_plan(plan)
        self._run(plan.jobs, {}, report, start)
        report.seconds = time.monotonic() - start
        return report

    def index_changes(
        self, changed: Iterable[str], gone: Iterable[str] = (), *, rehash: bool = False
    ) -> IndexReport:
        """Bring the paths a watcher saw change up to date, without scanning whole folders.

        `changed` are files created or modified; `gone` are files or whole folders
        deleted or moved away. A photo that left a `gone` path and turns up among
        `changed` keeps its vector (matched by content hash, no re-encode). Paths
        outside the library's folders are ignored. With `rehash`, files that look
        unchanged, or that failed before and look the same, are read and hashed again too.
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
                if gone_set.holds(path) and is_gone(path):
                    missing[path] = known
        plan = _Plan()
        for path in dict.fromkeys(changed):
            folder_id = folder_of(path)
            if folder_id is None:
                continue
            state = states[folder_id].get(path)
            stat = stat_file(path)
            if stat is None:
                if state is not None and is_gone(path):
                    missing[path] = state
            else:
                missing.pop(path, None)
                plan.add(stat, folder_id, state, report, None if rehash else self.store.failure)
        self._record_plan(plan)
        self._run(plan.jobs, missing, report, start)
        report.seconds = time.monotonic() - start
        return report

    def _record_plan(self, plan: _Plan, stale_failures: Sequence[str] = ()) -> None:
        """Write what planning learnt without reading a file: ctime and inode of images
        indexed before they were kept, and failed files that are gone."""
        if plan.identities or stale_failures:
            with self.store.write():
                self.store.set_file_identity(plan.identities)
                self.store.forget_failures(stale_failures)

    # -- the pipeline -------------------------------------------------------

    def _run(
        self, jobs: list[Job], missing: dict[str, ImageState], report: IndexReport, start: float
    ) -> None:
        known_hashes = self.store.hash_index()
        claimed: set[int] = set()  # missing images found again under a new path
        lasting: list[Prepared] = []  # failures to remember
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
                    if prepared.hash:
                        # Read but unusable (not an image, damaged, empty): it stays so
                        # until the file changes. Read errors may pass; they are retried.
                        lasting.append(prepared)
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
        if lasting:
            with self.store.write():
                for item in lasting:
                    stat = item.job.stat
                    self.store.record_failure(
                        item.job.folder_id,
                        FailedFile(stat.path, *_facts(stat), reason=item.error or ""),
                    )
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
            vectors = self.encoder.encode_pixels(np.stack([p.pixels for p in batch]))  # type: ignore[misc]
            report.encoded += len(batch)
            return list(zip(batch, vectors))
        except (RuntimeError, ValueError):
            # One odd input must not cost the batch: retry one by one to isolate it.
            out = []
            for item in batch:
                try:
                    vector = self.encoder.encode_pixels(item.pixels[None])[0]  # type: ignore[index]
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
                if self._save(item.job.existing, _new_image(item, item.info), vector):
                    report.indexed += 1

    def _save(self, existing: ImageState | None, record: NewImage, vector: np.ndarray) -> bool:
        """Write one image (the store settles races with other processes); False if
        its folder left the library meanwhile."""
        if existing is not None:
            return self.store.replace_image(existing.id, record, vector) is not None
        return self.store.insert_image(record, vector) is not None

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
        # update_file is False when another process removed the image meanwhile:
        # the file is then added below like any other.
        existing = job.existing
        if (
            existing is not None
            and existing.hash == item.hash
            and self.store.update_file(
                existing.id, job.stat.path, job.folder_id, item.size, item.mtime_ns,
                job.stat.ctime_ns, job.stat.inode,
            )
        ):
            report.unchanged += 1
            return
        moved_from = missing_by_hash.pop(item.hash, None)
        if moved_from is None:
            moved_from = self._vanished_twin(item.hash, job.stat.path, claimed)
        if moved_from is not None:
            if job.existing is not None:
                self.store.delete_images([job.existing.id])
            if self.store.update_file(
                moved_from.id, job.stat.path, job.folder_id, item.size, item.mtime_ns,
                job.stat.ctime_ns, job.stat.inode,
            ):
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
        if self._save(job.existing, _new_image(item, info), vector):
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
            vector = self.encoder.encode_pixels(fresh.pixels[None])[0]
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


def _same_file(state: ImageState, stat: FileStat) -> bool:
    """Whether a file is as it was indexed: size and mtime, and ctime and inode where
    known (an edit that restores the mtime still changes the ctime; a replace by
    rename, the inode). Images indexed before these were kept are judged by size and
    mtime alone, so upgrading a library never re-encodes it."""
    return (
        state.size == stat.size
        and state.mtime_ns == stat.mtime_ns
        and state.ctime_ns in (None, stat.ctime_ns)
        and state.inode in (None, stat.inode)
    )


def _facts(file: FileStat | FailedFile) -> tuple[int, int, int, int]:
    """What says a file changed: any difference means it must be read again."""
    return file.size, file.mtime_ns, file.ctime_ns, file.inode


def _keep_unreadable(
    unseen: dict[str, ImageState], unreadable: dict[str, str], report: IndexReport
) -> dict[str, ImageState]:
    """The unseen photos that are really gone; those in a folder or file that could
    not be read are kept (like an unplugged drive's), and the folder is reported."""
    kept: dict[str, int] = dict.fromkeys(unreadable, 0)
    behind = FolderSet(unreadable)
    gone = {}
    for path, state in unseen.items():
        where = behind.holder(path)
        if where is None:
            gone[path] = state
        else:
            kept[where] += 1
    for path, reason in unreadable.items():
        count = kept[path]
        note = f"; its {count} photos were kept" if count > 1 else "; its photo was kept" if count else ""
        report.failed.append(Failure(path, reason + note))
    return gone


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
        ctime_ns=item.job.stat.ctime_ns,
        inode=item.job.stat.inode,
    )


def remove_missing(store: Store, paths: Iterable[str]) -> int:
    """Drop images whose files are gone (for a watcher's delete events)."""
    removed = 0
    with store.write():
        for path in paths:
            removed += store.delete_image_at(path)
    return removed


