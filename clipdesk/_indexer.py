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
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ._duplicates import phash
from ._encoder import Encoder, encode_checked, model_fingerprint
from ._errors import ImageUnreadable, LibraryError
from ._facts import Facts
from ._imaging import ImageInfo, open_image, read_info
from ._labels import ActiveLabeller
from ._paths import FolderSet, display, folder_holding, is_within
from ._safefile import open_regular
from ._scanner import FileStat, is_gone, scan, stat_file
from ._store import FailedFile, ImageState, NewImage, Store

HASH_CHUNK = 1 << 20
PROGRESS_INTERVAL = 0.1  # seconds between progress reports within a batch
# Files of known content (moved, touched, copies) written per transaction.
KNOWN_PER_WRITE = 256
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
        if failure is not None and _unchanged(state, stat):
            report.unchanged += 1
            assert state is not None
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
    phash: int | None = None  # perceptual fingerprint, from the same decode
    error: str | None = None
    gone: bool = False  # the file was deleted after the scan found it


@dataclass
class _Run:
    """One pass of the pipeline: its report, and the photos that left a path during it."""

    report: IndexReport
    start: float
    total: int
    missing: dict[str, ImageState]  # indexed images whose files are gone, by path
    moved_away: dict[str, ImageState] = field(init=False)  # the same, by content hash
    claimed: set[int] = field(default_factory=set)  # missing images found again elsewhere
    lasting: list[Prepared] = field(default_factory=list)  # failures to remember

    def __post_init__(self) -> None:
        self.moved_away = {}
        for state in self.missing.values():
            self.moved_away.setdefault(state.hash, state)


class _HeldContent:
    """Answers "does the library hold this content?" on decode threads, by the hash index.

    Each thread asks through a read connection of its own (a Store serves one
    thread), so a change costs a lookup per file, not a read of every hash.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._opened: list[Store] = []
        self._lock = threading.Lock()

    def has(self, digest: str) -> bool:
        try:
            return self._reader().holds_hash(digest)
        except LibraryError:
            return False  # then the file is decoded and encoded: slower, never wrong

    def _reader(self) -> Store:
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            store = Store(self._path, create=False)
            self._local.store = store
            with self._lock:
                self._opened.append(store)
        return store

    def __enter__(self) -> _HeldContent:
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the readers; call once the threads that used them are done."""
        for store in self._opened:
            store.close()
        self._opened.clear()


def _nothing_held(digest: str) -> bool:
    return False


def _unchanged(state: ImageState | None, stat: FileStat) -> bool:
    """Whether a file is as it was indexed: size and mtime, and ctime and inode where
    known (an edit that restores the mtime still changes the ctime; a replace by
    rename, the inode). Images indexed before these were kept are judged by size and
    mtime alone, so upgrading a library never re-encodes it."""
    return (
        state is not None
        and state.size == stat.size
        and state.mtime_ns == stat.mtime_ns
        and state.ctime_ns in (None, stat.ctime_ns)
        and state.inode in (None, stat.inode)
    )


def _facts(file: FileStat | FailedFile) -> tuple[int, int, int, int]:
    """What says a file changed: any difference means it must be read again."""
    return file.size, file.mtime_ns, file.ctime_ns, file.inode


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
        # New photos get the library's active label sets, in the transaction that writes them.
        self._labeller = ActiveLabeller(store, encoder)
        self._written: list[tuple[int, np.ndarray]] = []  # in the write transaction under way
        store.bind_model(encoder.model_id, encoder.dim, reindex=reindex, fingerprint=model_fingerprint(encoder))

    # -- planning -----------------------------------------------------------

    def index(self, roots: Sequence[str]) -> IndexReport:
        """Add these folders to the library (if new) and bring them up to date."""
        start = time.monotonic()
        report = IndexReport()
        self._labeller.refresh()
        plan = _Plan()
        stale_failures: list[str] = []
        missing: dict[str, ImageState] = {}
        self._emit("scanning", 0, 0, None, report, start)
        for root in roots:
            stale_failures += self._plan_folder(root, missing, report, plan)
        self._record_plan(plan, stale_failures)
        self._run(plan.jobs, missing, report, start)
        if not report.cancelled:
            # Photos indexed before their facts were kept: read from headers, no model.
            describe_missing(self.store, cancel=self.cancel, between_batches=self.between_batches)
        report.seconds = time.monotonic() - start
        return report

    def _plan_folder(
        self, root: str, missing: dict[str, ImageState], report: IndexReport, plan: _Plan
    ) -> list[str]:
        """Scan a whole folder against what the library holds for it (bulk work); returns
        the files that failed before and are no longer there."""
        if not os.path.isdir(root):
            # A folder that is not there (an unplugged drive) must not lose its index.
            report.failed.append(Failure(root, "folder not found; its photos were kept"))
            return []
        folder = self.store.add_folder(root)
        known = {p: s for p, s in self.store.image_states(folder.id).items() if is_within(p, root)}
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
            return []
        unreadable: dict[str, str] = {}
        failures = {p: f for p, f in self.store.failures(folder.id).items() if is_within(p, root)}

        def failure(path: str) -> FailedFile | None:
            return failures.pop(path, None)

        for stat in scan(root, on_error=unreadable.__setitem__):
            plan.add(stat, folder.id, known.pop(stat.path, None), report, failure)
        missing.update(_keep_unreadable(known, unreadable, report))
        # Failed files no longer there (unless behind a folder that could not be read).
        behind = FolderSet(unreadable)
        return [p for p in failures if not behind.holds(p)]

    def index_changes(
        self, changed: Iterable[str], gone: Iterable[str] = (), *, rehash: bool = False
    ) -> IndexReport:
        """Bring the paths a watcher saw change up to date, without scanning whole folders.

        `changed` are files created or modified; `gone` are files or whole folders
        deleted or moved away. A photo that left a `gone` path and turns up among
        `changed` keeps its vector (matched by content hash, no re-encode). Paths
        outside the library's folders are ignored. With `rehash`, files that look
        unchanged, or that failed before and look the same, are read and hashed again too. The library is read
        through its indexes, so the cost follows the change, not the library's size.
        """
        start = time.monotonic()
        report = IndexReport()
        self._labeller.refresh()
        folders = {folder.path: folder.id for folder in self.store.folder_roots()}
        gone_paths = {p.rstrip(os.sep) or os.sep for p in gone}
        missing = self._missing_below(p for p in gone_paths if folder_holding(p, folders))
        changed_in: dict[str, int] = {}
        for path in changed:
            holder = folder_holding(path, folders)
            if holder is not None:
                changed_in[path] = folders[holder]
        known = self.store.images_at(changed_in)
        plan = _Plan()
        for path, folder_id in changed_in.items():
            state, stat = known.get(path), stat_file(path)
            if stat is None:
                if state is not None and is_gone(path):
                    missing[path] = state
            else:
                missing.pop(path, None)
                plan.add(stat, folder_id, state, report, None if rehash else self.store.failure)
        self._record_plan(plan)
        self._run(plan.jobs, missing, report, start)
        if not report.cancelled:
            # Photos indexed before their facts were kept: read from headers, no model.
            describe_missing(self.store, cancel=self.cancel, between_batches=self.between_batches)
        report.seconds = time.monotonic() - start
        return report

    def _missing_below(self, gone: Iterable[str]) -> dict[str, ImageState]:
        """Indexed images at or below these paths whose files are really gone."""
        missing = {}
        for path in gone:
            for state in self.store.images_under(path):
                if is_gone(state.path):
                    missing[state.path] = state
        return missing

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
        """Read, encode and write the jobs; then drop the missing images nobody claimed."""
        run = _Run(report, start, len(jobs), missing)
        self._emit("indexing", 0, run.total, None, report, start)
        with _HeldContent(self.store.path) as held, self._decoders() as pool:
            done = self._write_all(self._prepared(jobs, pool, held, report), run)
        if run.lasting:
            with self.store.write():
                for item in run.lasting:
                    stat = item.job.stat
                    self.store.record_failure(
                        item.job.folder_id,
                        FailedFile(stat.path, *_facts(stat), reason=item.error or ""),
                    )
        if not report.cancelled:
            gone = [s.id for s in missing.values() if s.id not in run.claimed]
            with self.store.write():
                self.store.delete_images(gone)
            report.removed += len(gone)
        self._emit("done", done, run.total, None, report, start)

    def _decoders(self) -> ThreadPoolExecutor:
        on_cpu = getattr(self.encoder, "device", "cpu") == "cpu"
        return ThreadPoolExecutor(
            self.workers,
            thread_name_prefix="clipdesk-decode",
            initializer=_lower_priority if on_cpu else None,
        )

    def _prepared(
        self, jobs: list[Job], pool: ThreadPoolExecutor, held: _HeldContent, report: IndexReport
    ) -> Iterator[Prepared]:
        """The jobs prepared on the pool, in order, a bounded number ahead; stops when cancelled."""
        lookahead = max(2 * max(1, self.encoder.batch_size), 4 * self.workers)
        queue: deque[Future[Prepared]] = deque()
        todo = iter(jobs)
        while True:
            while len(queue) < lookahead and (job := next(todo, None)) is not None:
                queue.append(pool.submit(self._prepare, job, held.has))
            if not queue:
                return
            if self.cancel.is_set():
                for future in queue:
                    future.cancel()
                report.cancelled = True
                return
            yield queue.popleft().result()

    def _write_all(self, prepared: Iterable[Prepared], run: _Run) -> int:
        """Encode and write prepared files in batches; returns how many were handled."""
        batch_size = max(1, self.encoder.batch_size)
        batch: list[Prepared] = []  # to encode
        known: list[Prepared] = []  # content the library holds a vector for
        done, last_emit = 0, 0.0
        for item in prepared:
            done += 1
            if item.gone and item.job.existing is not None:
                # An indexed photo deleted since the scan: removed with the missing ones.
                run.missing[item.job.stat.path] = item.job.existing
            elif item.error is not None:
                run.report.failed.append(Failure(item.job.stat.path, item.error))
                if item.hash:
                    # Read but unusable (not an image, damaged, empty): it stays so
                    # until the file changes. Read errors may pass; they are retried.
                    run.lasting.append(item)
            else:
                (known if item.pixels is None else batch).append(item)
            if len(batch) >= batch_size or len(known) >= KNOWN_PER_WRITE:
                self._flush(batch, known, run)
                if batch:
                    last_emit = 0.0  # always report a committed batch
                    if self.between_batches is not None:
                        self.between_batches()
                batch, known = [], []
            now = time.monotonic()
            if now - last_emit > PROGRESS_INTERVAL:
                last_emit = now
                self._emit("indexing", done, run.total, item.job.stat.path, run.report, run.start)
        self._flush(batch, known, run)
        return done

    def _prepare(self, job: Job, is_held: Callable[[str], bool]) -> Prepared:
        """Runs on a worker thread: read once, hash, and decode only if the content is new.

        `is_held(hash)` says whether the library already has a vector for that content.
        """
        path = job.stat.path
        try:
            # Never the whole file in memory: hashed in chunks, decoded from the file.
            with open_regular(path) as handle:
                before = os.fstat(handle.fileno())
                digest, size = hash_handle(handle)
                mtime_ns = before.st_mtime_ns
                if job.existing is not None and job.existing.hash == digest:
                    return Prepared(job, digest, size, mtime_ns)
                if is_held(digest):
                    return Prepared(job, digest, size, mtime_ns)
                if not size:
                    return Prepared(job, digest, size, mtime_ns, error="empty file (0 bytes)")
                handle.seek(0)
                try:
                    image, info = open_image(handle, min_side=self.encoder.image_size)
                    pixels = self.encoder.preprocess(image)
                    fingerprint = phash(image)
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
        return Prepared(job, digest, size, mtime_ns, pixels=pixels, info=info, phash=fingerprint)

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

    def _flush(self, batch: list[Prepared], known: list[Prepared], run: _Run) -> None:
        """Encode a batch and write it, with the files of known content, in one transaction."""
        encoded = self._encode(batch, run.report)
        if not encoded and not known:
            return
        self._written = []
        with self.store.write():
            for item in known:
                self._write_known_content(item, run)
            for item, vector in encoded:
                assert item.info is not None
                if self._write_image(item, item.info, vector):
                    run.report.indexed += 1
            ids = [image_id for image_id, _ in self._written]
            self._labeller.label(ids, [vector for _, vector in self._written])
        self._written = []

    def _write_image(self, item: Prepared, info: ImageInfo, vector: np.ndarray) -> bool:
        """Write one image (the store settles races with other processes); False if
        its folder left the library meanwhile."""
        record = _new_image(item, info)
        if item.job.existing is not None:
            image_id = self.store.replace_image(item.job.existing.id, record, vector)
        else:
            image_id = self.store.insert_image(record, vector)
        if image_id is None:
            return False
        self._written.append((image_id, vector))  # new content: labelled before the commit
        return True

    def _write_known_content(self, item: Prepared, run: _Run) -> None:
        """Content we already have a vector for: touched, moved, or a copy of another photo."""
        job = item.job
        # _update_file is False when another process removed the image meanwhile:
        # the file is then written like a copy (or encoded) below.
        if job.existing is not None and job.existing.hash == item.hash and self._update_file(job.existing, item):
            run.report.unchanged += 1
            return
        moved_from = self._moved_from(item, run)
        if moved_from is not None:
            if job.existing is not None:
                self.store.delete_images([job.existing.id])
            if self._update_file(moved_from, item):
                run.claimed.add(moved_from.id)
                run.report.moved += 1
                return
        self._write_copy(item, run.report)

    def _update_file(self, image: ImageState, item: Prepared) -> bool:
        """Point an image at this file (same content, so the vector stays)."""
        stat = item.job.stat
        return self.store.update_file(
            image.id, stat.path, item.job.folder_id, item.size, item.mtime_ns, stat.ctime_ns, stat.inode
        )

    def _moved_from(self, item: Prepared, run: _Run) -> ImageState | None:
        """The image this file is, moved here: one that left a path in this run, or earlier."""
        moved_from = run.moved_away.pop(item.hash, None)
        if moved_from is None:
            moved_from = self._vanished_twin(item.hash, item.job.stat.path, run.claimed)
        return moved_from

    def _write_copy(self, item: Prepared, report: IndexReport) -> None:
        """A copy of content the library holds: it shares that vector, without encoding."""
        # Looked up now, not when the file was hashed: earlier writes in this run
        # may have changed or removed that holder (contents swapped between files).
        record = self.store.image_with_hash(item.hash)
        vector = self.store.vector(record.id) if record is not None else None
        if record is None or vector is None:
            encoded = self._encode_now(item, report)
            if isinstance(encoded, str):
                report.failed.append(Failure(item.job.stat.path, encoded))
                return
            vector, info = encoded
        else:
            info = ImageInfo(record.width or 0, record.height or 0, record.taken_at, record.facts)
        if self._write_image(item, info, vector):
            report.indexed += 1

    def _encode_now(
        self, item: Prepared, report: IndexReport
    ) -> tuple[np.ndarray, ImageInfo] | str:
        """Decode and encode one file on this thread (a rare fallback); a reason if it cannot."""
        fresh = self._prepare(Job(item.job.stat, item.job.folder_id, None), _nothing_held)
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
            self._folder_roots = {f.id: f.path for f in self.store.folder_roots()}
        roots = self._folder_roots
        for state in self.store.images_with_hash(digest):
            if state.id in claimed or state.path == path or not is_gone(state.path):
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
        facts=info.facts,
        phash=item.phash,
    )


DESCRIBE_PER_WRITE = 500


def describe_missing(
    store: Store,
    *,
    cancel: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
    between_batches: Callable[[], None] | None = None,
) -> int:
    """Read the facts of photos indexed before they were kept, from their headers only
    (no pixel decode, no model); returns how many were read. Resumable: each batch
    is written at once, and a cancelled pass goes on where it stopped next time.
    """
    total = store.count_undescribed()
    done = after = 0
    while total and not (cancel is not None and cancel.is_set()):
        batch = store.undescribed(after, DESCRIBE_PER_WRITE)
        if not batch:
            break
        described: list[tuple[int, Facts]] = []
        for image_id, path in batch:
            try:
                described.append((image_id, read_info(path).facts or Facts()))
            except ImageUnreadable:
                if os.path.exists(path):
                    # Read, but nothing to tell: asked again only once the file changes.
                    described.append((image_id, Facts()))
                # Else gone or on an unplugged drive: read on a later pass.
        with store.write():
            store.set_facts(described)
        after = batch[-1][0]
        done += len(described)
        if progress is not None:
            progress(min(done, total), total)
        if between_batches is not None:
            between_batches()
    return done
