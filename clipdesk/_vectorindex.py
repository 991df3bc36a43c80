"""An in-memory index of a library's vectors, for fast searches in a long-lived process.

sqlite-vec's brute-force KNN reads every float vector from the database on each
query (~75 ms at 100k images, ~660 ms at 1M on a 2-core laptop) and caps k at
4096. Small libraries simply keep their float vectors in memory and are searched
exactly. Larger ones keep, per image, one bit per dimension (the sign of the
vector minus the library's mean): 64 bytes instead of 2 KB at 512 dimensions,
so a million images take ~80 MB with the ids. A query then:

1. ranks every image by the Hamming distance between its bits and the query's;
2. reads the float vectors of the best few thousand from a private temporary
   file (through the OS page cache, so they do not count in our memory; the
   database's own random reads cost ~1 ms per vector), and
3. ranks those by their exact cosine, which is also the score returned.

The index follows the library: it notices commits (`Store.change_marker`) and
then fetches only the vectors written or removed since (`Store.vector_stamps`).
"""

from __future__ import annotations

import errno
import logging
import mmap
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from ._store import Store

log = logging.getLogger(__name__)

# Libraries whose float vectors fit in this many bytes are searched exactly in memory.
EXACT_BYTES = 64 << 20
# Rows per block in the Hamming scan: bounds the temporaries (and stays in cache).
SCAN_BLOCK = 1 << 16
# Candidates re-ranked exactly after the Hamming scan: at least, and per result wanted.
CANDIDATES = (8192, 2)
# ... and at least this share of the library (sign bits blur more as libraries grow).
CANDIDATE_SHARE = 20
# Rows per step when computing sign bits (its float temporaries are ~4 KB per row).
BUILD_BLOCK = 8192
# Re-read everything (~1 µs per vector) rather than look up the changed ones
# (~1 ms each in sqlite-vec) when more than one in this many changed.
REBUILD_RATIO = 1000


def _sign_bits(vectors: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Packed sign bits of (vectors - mean): (N, ceil(dim/64)) uint64."""
    centred = np.asarray(vectors, dtype=np.float32) - mean
    packed = np.packbits(centred > 0, axis=1, bitorder="little")
    pad = (-packed.shape[1]) % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(packed).view(np.uint64)


_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount_rows(xor: np.ndarray) -> np.ndarray:
    """Set bits per row of a (rows, words) uint64 array."""
    if hasattr(np, "bitwise_count"):  # NumPy 2.0+: one instruction per word
        return cast(np.ndarray, np.bitwise_count(xor).sum(axis=1, dtype=np.uint16))
    return cast(np.ndarray, _POPCOUNT8[xor.view(np.uint8)].sum(axis=1, dtype=np.uint16))


class _FloatFile:
    """Float vectors in an unlinked temporary file, read back by row through the page cache.

    Plain writes and a read-only mapping that lives for one read only: both exist on
    every platform (os.pwrite/preadv do not on Windows), one gather reads thousands of
    rows at once, and the pages read leave our memory again when the mapping closes.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.row_bytes = dim * 4
        # Unbuffered, so what was written is in the file before any mapping reads it.
        self._file = tempfile.TemporaryFile(prefix="clipdesk-vectors-", buffering=0)  # noqa: SIM115  # lives as long as the index; close() closes it
        self.rows = 0

    def append(self, vectors: np.ndarray) -> np.ndarray:
        """Write vectors at the end; returns their row numbers."""
        data = np.ascontiguousarray(vectors, dtype=np.float32)
        view = data.reshape(-1).view(np.uint8).data
        self._file.seek(self.rows * self.row_bytes)
        while view:
            written = self._file.write(view)
            if not written:
                raise OSError(errno.EIO, "could not write the search index's temporary file")
            view = view[written:]
        rows = np.arange(self.rows, self.rows + len(data), dtype=np.int64)
        self.rows += len(data)
        return rows

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The vectors at these rows, in this order."""
        if not len(rows):
            return np.empty((0, self.dim), dtype=np.float32)
        return self._gather(lambda table: table[rows])

    def read_block(self, start: int, count: int) -> np.ndarray:
        """Rows start..start+count (fewer at the end)."""
        count = max(0, min(count, self.rows - start))
        if not count:
            return np.empty((0, self.dim), dtype=np.float32)
        return self._gather(lambda table: table[start : start + count].copy())

    def _gather(self, take: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """take(all rows as one array) over a read-only mapping that lives for this call only.

        take must return a copy: the mapping cannot close while an array points into it.
        """
        mapping = mmap.mmap(self._file.fileno(), self.rows * self.row_bytes, access=mmap.ACCESS_READ)
        try:
            return take(np.frombuffer(mapping, dtype=np.float32).reshape(self.rows, self.dim))
        finally:
            mapping.close()

    def close(self) -> None:
        self._file.close()


@dataclass
class _Built:
    """One full read of a library: what an index searches."""

    ids: np.ndarray
    stamps: np.ndarray
    floats: np.ndarray | None = None  # exact mode: (N, dim) in memory
    bits: np.ndarray | None = None  # binary mode: (N, words) uint64
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # rows in file
    file: _FloatFile | None = None
    mean: np.ndarray | None = None


def _build(
    store: Store, ids: np.ndarray, stamps: np.ndarray, exact_bytes: int, cancel: threading.Event | None = None
) -> _Built | None:
    """Read every vector once, streaming: a million floats never sit in memory together.

    None if `cancel` was set meanwhile.
    """
    id_parts: list[np.ndarray] = []
    in_memory: list[np.ndarray] = []
    file: _FloatFile | None = None
    total: np.ndarray | None = None
    count = 0
    for chunk_ids, vecs in store.iter_vectors():
        if cancel is not None and cancel.is_set():
            if file is not None:
                file.close()
            return None
        dim = vecs.shape[1]
        id_parts.append(chunk_ids)
        count += len(chunk_ids)
        total = vecs.sum(axis=0, dtype=np.float64) + (0.0 if total is None else total)
        if file is None and count * dim * 4 > exact_bytes:
            file = _FloatFile(dim)
            for part in in_memory:
                file.append(part)
            in_memory = []
        if file is None:
            in_memory.append(vecs)
        else:
            file.append(vecs)
    vec_ids = np.concatenate(id_parts) if id_parts else np.zeros(0, dtype=np.int64)
    order = np.argsort(vec_ids, kind="stable")
    built = _Built(vec_ids[order], np.zeros(0))
    # Images and vectors are written together; align the stamps with the vectors read.
    where = np.minimum(np.searchsorted(ids, built.ids), max(0, len(ids) - 1))
    built.stamps = (
        np.where(ids[where] == built.ids, stamps[where], -1.0) if len(ids) else np.zeros(len(built.ids))
    )
    if file is None:
        if count:
            built.floats = np.concatenate(in_memory)[order]
        return built
    assert total is not None
    built.mean = mean = (total / count).astype(np.float32)
    bits = [_sign_bits(file.read_block(start, BUILD_BLOCK), mean) for start in range(0, count, BUILD_BLOCK)]
    built.file, built.rows, built.bits = file, order.astype(np.int64), np.concatenate(bits)[order]
    return built


class VectorIndex:
    """Exact or binary-accelerated nearest-neighbour search over one library's vectors.

    Thread-safe: several threads (each with its own Store on the same library) may
    share one index.
    """

    def __init__(self, *, exact_bytes: int = EXACT_BYTES) -> None:
        self.exact_bytes = exact_bytes
        self._lock = threading.Lock()
        self._marker: object = None
        self._path: str | None = None
        self._ids = np.zeros(0, dtype=np.int64)
        self._stamps = np.zeros(0, dtype=np.float64)
        self._floats: np.ndarray | None = None  # exact mode: (N, dim) in memory
        self._bits: np.ndarray | None = None  # binary mode: (N, words) uint64
        self._rows = np.zeros(0, dtype=np.int64)  # binary mode: rows in _file
        self._file: _FloatFile | None = None
        self._mean: np.ndarray | None = None
        self._built_size = 0
        self._builder: threading.Thread | None = None  # a full read in the background
        self._cancel = threading.Event()
        self.rebuilds = 0  # full reads of the library, for tests and benchmarks

    def __len__(self) -> int:
        return len(self._ids)

    def close(self) -> None:
        """Stop a background read (promptly) and free the temporary file."""
        self._cancel.set()
        builder = self._builder
        if builder is not None:
            builder.join()
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._marker = None

    @property
    def exact(self) -> bool:
        """True when the float vectors are in memory and every search is exact."""
        return self._bits is None

    @property
    def building(self) -> bool:
        """True while a full read of the library runs in the background."""
        builder = self._builder
        return builder is not None and builder.is_alive()

    def memory_bytes(self) -> int:
        parts = [self._ids, self._stamps, self._rows]
        parts += [a for a in (self._floats, self._bits) if a is not None]
        return sum(p.nbytes for p in parts)

    # -- following the library ----------------------------------------------

    def sync(self, store: Store, *, wait: bool = True) -> bool:
        """Bring the index in step with the library (cheap when nothing was committed).

        A large library is read in full (seconds at a million photos) at first and
        after big changes. With wait=False that read runs on a thread of its own and
        False is returned until it is done, so a caller can search another way meanwhile.
        """
        builder = self._builder
        if builder is not None and builder.is_alive():
            if not wait:
                return False
            builder.join()
        with self._lock:
            marker = store.change_marker()
            if marker == self._marker and self._path == str(store.path):
                return True
            # One read transaction, so the stamps and vectors come from one snapshot.
            # The marker is taken before it: a commit landing while we read then
            # makes the next call look again, instead of being missed for good.
            with store.conn:
                ids, stamps = store.vector_stamps()
                if not self._update(store, ids, stamps):
                    if not wait and len(ids) * (store.vec_dim() or 0) * 4 > self.exact_bytes:
                        self._build_in_background(store.path)
                        return False
                    built = _build(store, ids, stamps, self.exact_bytes)
                    assert built is not None
                    self._install(built)
            self._marker = marker
            self._path = str(store.path)
            return True

    def _build_in_background(self, path: Path) -> None:
        """Start a full read on its own thread and connection (lock held)."""
        if self._cancel.is_set() or self.building:
            return

        def run() -> None:
            try:
                with Store(path, create=False) as store, store.conn:
                    ids, stamps = store.vector_stamps()
                    built = _build(store, ids, stamps, self.exact_bytes, self._cancel)
            except Exception:  # noqa: BLE001 - searches go on without the index; the next one retries
                log.warning("reading the library for the search index failed", exc_info=True)
                return
            if built is None:
                return
            with self._lock:
                if self._cancel.is_set():
                    if built.file is not None:
                        built.file.close()
                    return
                self._install(built)
                # Our marker belongs to the reader's connection: the next sync on any
                # other compares the stamps once and finds nothing more to read.
                self._marker, self._path = None, str(path)

        self._builder = threading.Thread(target=run, name="clipdesk-search-index", daemon=True)
        self._builder.start()

    def _update(self, store: Store, ids: np.ndarray, stamps: np.ndarray) -> bool:
        """Apply the vectors written or removed since the last read; False if a full read is due."""
        if self._path != str(store.path) or not len(self._ids):
            return False
        old_ids, old_stamps = self._ids, self._stamps
        pos = np.minimum(np.searchsorted(old_ids, ids), len(old_ids) - 1)
        kept = (old_ids[pos] == ids) & (old_stamps[pos] == stamps)
        fresh = ids[~kept]
        if len(fresh) == 0 and int(kept.sum()) == len(old_ids):
            return True
        dim = (self._floats if self._floats is not None else np.zeros((0, 0))).shape[1]
        if (
            len(fresh) * REBUILD_RATIO > len(ids)
            # The mean the bits are taken around drifts as a library grows.
            or (self._bits is not None and len(ids) > 2 * self._built_size)
            or (self._floats is not None and len(ids) * dim * 4 > self.exact_bytes)
        ):
            return False
        # An image without a vector (a damaged library) is simply not searchable.
        found, vectors = store.vectors(fresh)
        fresh_stamps = stamps[~kept][np.isin(fresh, found)]
        take = pos[kept]
        new_ids = np.concatenate([old_ids[take], found])
        order = np.argsort(new_ids, kind="stable")
        self._ids = new_ids[order]
        self._stamps = np.concatenate([old_stamps[take], fresh_stamps])[order]
        if self._floats is not None:
            self._floats = np.concatenate([self._floats[take], vectors])[order]
        else:
            assert self._bits is not None and self._mean is not None and self._file is not None
            self._bits = np.concatenate([self._bits[take], _sign_bits(vectors, self._mean)])[order]
            self._rows = np.concatenate([self._rows[take], self._file.append(vectors)])[order]
        return True

    def _install(self, built: _Built) -> None:
        """Search a fresh full read from now on (lock held)."""
        self.rebuilds += 1
        if self._file is not None:
            self._file.close()
        self._ids, self._stamps, self._rows = built.ids, built.stamps, built.rows
        self._floats, self._bits, self._file, self._mean = built.floats, built.bits, built.file, built.mean
        self._built_size = len(built.ids)
        _return_free_memory()

    # -- searching ----------------------------------------------------------

    def search(
        self, store: Store, query: np.ndarray, k: int, exclude: Iterable[int] = ()
    ) -> list[tuple[int, float]]:
        """The k nearest images by cosine similarity: (image id, similarity), best first."""
        self.sync(store)
        return self._search(query, k, exclude)

    def search_if_ready(
        self, store: Store, query: np.ndarray, k: int, exclude: Iterable[int] = ()
    ) -> list[tuple[int, float]] | None:
        """Like search, but None rather than wait for a full read of a large library
        (which then goes on in the background)."""
        if not self.sync(store, wait=False):
            return None
        return self._search(query, k, exclude)

    def _search(self, query: np.ndarray, k: int, exclude: Iterable[int]) -> list[tuple[int, float]]:
        skip = set(exclude)
        want = k + len(skip)
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        with self._lock:
            if k <= 0 or not len(self._ids):
                return []
            if self._floats is not None:
                scores = _dot(self._floats, query)
                top = _top(scores, want)
                ids = self._ids[top]
            else:
                candidates = self._hamming_candidates(query, want)
                assert self._file is not None
                rows = self._rows[candidates]
                # In blocks, so that even a huge k never holds many float vectors at once.
                scores = np.concatenate(
                    [_dot(self._file.read(rows[i : i + SCAN_BLOCK // 4]), query)
                     for i in range(0, len(rows), SCAN_BLOCK // 4)]
                )
                top = _top(scores, want)
                ids = self._ids[candidates[top]]
            pairs = [(int(i), float(s)) for i, s in zip(ids, scores[top])]
        return [(i, s) for i, s in pairs if i not in skip][:k]

    def _hamming_candidates(self, query: np.ndarray, want: int) -> np.ndarray:
        """Positions of the images whose sign bits are closest to the query's."""
        assert self._bits is not None and self._mean is not None
        count = len(self._ids)
        qbits = _sign_bits(query[None, :], self._mean)[0]
        distance = np.empty(count, dtype=np.uint16)
        for start in range(0, count, SCAN_BLOCK):
            block = self._bits[start : start + SCAN_BLOCK]
            distance[start : start + len(block)] = _popcount_rows(block ^ qbits)
        keep = min(count, max(CANDIDATES[0], count // CANDIDATE_SHARE, CANDIDATES[1] * want))
        if keep >= count:
            return np.arange(count)
        return np.argpartition(distance, keep - 1)[:keep]


def _return_free_memory() -> None:
    """Give freed heap memory back to the OS after a build (glibc keeps it otherwise)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _dot(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """matrix @ vector without BLAS: OpenBLAS's threads keep spinning after a call and
    then slow torch's threads (the text model's) by half; numpy's own loop is as fast here."""
    return cast(np.ndarray, np.einsum("ij,j->i", matrix, vector))


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, highest first."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    return part[np.argsort(-scores[part], kind="stable")]
