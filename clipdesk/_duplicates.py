"""Finding photos that are the same picture: identical files, or resized, re-compressed,
slightly cropped or edited copies.

Two signals, because either alone misleads. CLIP vectors place two shots of one
scene as close as a copy. A 64-bit perceptual hash (pHash: the signs of an
image's lowest DCT frequencies) decides: copies keep it within a few bits,
different shots do not. It is compared for every pair, a block at a time in
numpy (a 64-bit XOR and popcount per pair is ~50 times cheaper than a 512-d dot
product, so this finds candidates fastest); the rare pairs whose pHashes agree
then need a loose CLIP cosine too, against chance agreement of unrelated
pictures. Identical content (the same file hash) is always one group.

No Qt here: the command line and the app share it through `Library.duplicates`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ._errors import ImageUnreadable
from ._imaging import open_image
from ._paths import FolderSet
from ._store import PhotoFacts, Store

# pHash: a 32×32 grey thumbnail, the 8×8 lowest DCT frequencies against their median.
_THUMB = 32
_LOW = 8
BITS = _LOW * _LOW

# Chosen by benchmarks/bench_duplicates.py --quality on ../shared/photos/coco_mini
# (see benchmarks/README.md): every resized and re-compressed copy found, and no
# two different photos grouped. Similarity is 1 - differing bits / 64.
DEFAULT_THRESHOLD = 0.84
# CLIP cosine a copy is sure to exceed (real copies score above 0.9): a loose
# check that two photos whose pHashes agree by chance really show one thing.
CONFIRM_COSINE = 0.80
# Rows × columns of one block of pHash comparisons (8 MB of 64-bit words per thread).
BLOCK_ROWS = 256
BLOCK_COLUMNS = 4096
# Fingerprints of photos indexed before they were kept are made from a decode
# reduced as the indexer reduces for a 224-pixel model (CLIP ViT-B/32 and most
# others), so both give the same bits: a JPEG decoded at another scale differs
# by a bit on average and up to 6 bits (measured on coco_mini, 64 px against 224).
FILL_SIDE = 224
FILL_BATCH = 256


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    return np.cos(np.pi * (2 * x + 1) * k / (2 * n))


_DCT = _dct_matrix(_THUMB)


def phash(image: Image.Image) -> int:
    """The 64-bit perceptual hash of an image, as a signed integer (SQLite's INTEGER)."""
    # A box filter averages areas, so a photo decoded at any reduced size gives
    # the same thumbnail: the indexer's decode and a small one for old photos agree.
    grey = image.convert("L").resize((_THUMB, _THUMB), Image.Resampling.BOX)
    pixels = np.asarray(grey, dtype=np.float64)
    # Rounded: in a flat image the frequencies are all zero but for float noise,
    # which must not pick the bits.
    low = np.round((_DCT @ pixels @ _DCT.T)[:_LOW, :_LOW], 3)
    bits = np.packbits((low > np.median(low)).ravel())
    return int(bits.view(">i8")[0])


def similarity(distance: int) -> float:
    """pHash similarity from a count of differing bits: 1.0 the same, 0.0 all different."""
    return 1.0 - distance / BITS


def max_distance(threshold: float) -> int:
    """The most differing bits a pair may have to count as similarity `threshold` or more."""
    return int(math.floor((1.0 - threshold) * BITS + 1e-9))


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Differing bits between two arrays of 64-bit hashes, element by element."""
    bits: np.ndarray = np.bitwise_count(np.bitwise_xor(a, b).view(np.uint64))
    return bits.astype(np.int64)


@dataclass(frozen=True)
class DuplicateGroup:
    """Photos of one picture, the one to keep first, and why it is that one."""

    photos: tuple[PhotoFacts, ...]
    exact: bool  # all the same file content
    min_similarity: float  # the least similar pair's pHash similarity (1.0 when exact)
    keep_reason: str

    def to_json(self, display: Callable[[str], str]) -> dict[str, object]:
        return {
            "paths": [display(p.path) for p in self.photos],
            "exact": self.exact,
            "min_similarity": self.min_similarity,  # rounded with every other --json float (cli)
            "keep_reason": self.keep_reason,
        }


def phash_pairs(
    hashes: np.ndarray,
    max_bits: int,
    *,
    workers: int = 2,
    block_rows: int = BLOCK_ROWS,
    block_columns: int = BLOCK_COLUMNS,
) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs (i < j) whose pHashes differ in at most max_bits: every pair is
    compared, a block at a time (numpy releases the GIL, so blocks run in parallel)."""
    n = len(hashes)
    unsigned = np.ascontiguousarray(hashes, dtype=np.int64).view(np.uint64)

    def scan(top: int) -> tuple[np.ndarray, np.ndarray]:
        rows = unsigned[top : top + block_rows, None]
        # Buffers reused block after block: allocating them costs as much as the work.
        xor = np.empty((len(rows), block_columns), dtype=np.uint64)
        bits = np.empty(xor.shape, dtype=np.uint8)
        close = np.empty(xor.shape, dtype=bool)
        found_i: list[np.ndarray] = []
        found_j: list[np.ndarray] = []
        # Only the upper triangle: columns from this block's first row on.
        for left in range(top, n, block_columns):
            columns = unsigned[None, left : left + block_columns]
            width = columns.shape[1]
            np.bitwise_xor(rows, columns, out=xor[:, :width])
            np.bitwise_count(xor[:, :width], out=bits[:, :width])
            np.less_equal(bits[:, :width], max_bits, out=close[:, :width])
            if not close[:, :width].any():  # nearly always: pairs are rare
                continue
            i, j = np.nonzero(close[:, :width])
            i += top
            j += left
            keep = j > i
            found_i.append(i[keep])
            found_j.append(j[keep])
        return _joined(found_i), _joined(found_j)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        parts = list(pool.map(scan, range(0, n, block_rows)))
    return _joined([p[0] for p in parts]), _joined([p[1] for p in parts])


def _joined(parts: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def cosines(vectors: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Cosine of rows i[k] and j[k] of unit vectors, for each k."""
    out = np.empty(len(i), dtype=np.float32)
    for start in range(0, len(i), 65536):
        a = vectors[i[start : start + 65536]]
        b = vectors[j[start : start + 65536]]
        out[start : start + len(a)] = np.einsum("ij,ij->i", a, b)
    return out


class _Sets:
    """Union-find over row numbers."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def group_rows(content: Sequence[str], pairs: tuple[np.ndarray, np.ndarray]) -> list[list[int]]:
    """Rows that are one picture, as lists of two or more row numbers: rows with the
    same content hash ("" is no content), and rows joined by a pair."""
    sets = _Sets(len(content))
    first: dict[str, int] = {}
    for row, digest in enumerate(content):
        if digest:  # "" marks a photo waiting to be encoded again
            sets.union(first.setdefault(digest, row), row)
    for a, b in zip(pairs[0].tolist(), pairs[1].tolist()):
        sets.union(a, b)
    members: dict[int, list[int]] = {}
    for row in range(len(content)):
        members.setdefault(sets.find(row), []).append(row)
    return [rows for rows in members.values() if len(rows) > 1]


def near_copies(
    hashes: np.ndarray,
    has_phash: np.ndarray,
    unit_vectors: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    threshold: float = DEFAULT_THRESHOLD,
    *,
    min_cosine: float = CONFIRM_COSINE,
    workers: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs that are near copies: pHashes within the threshold, then vectors
    at least min_cosine alike. `unit_vectors(rows)` gives (unit vectors of those
    rows, whether each has one); it is asked only for rows in a pHash pair."""
    usable = np.flatnonzero(has_phash)
    i, j = phash_pairs(hashes[usable], max_distance(threshold), workers=workers)
    i, j = usable[i], usable[j]
    if not len(i):
        return i, j
    needed = np.unique(np.concatenate([i, j]))
    vectors, has_vector = unit_vectors(needed)
    at_i, at_j = np.searchsorted(needed, i), np.searchsorted(needed, j)
    keep = has_vector[at_i] & has_vector[at_j]
    keep &= cosines(vectors, at_i, at_j) >= min_cosine
    return i[keep], j[keep]


def _keep_key(photo: PhotoFacts) -> tuple[int, int, str, int, str]:
    # Most pixels, then the oldest date taken (undated last), then the shortest path.
    return (-photo.pixels, photo.taken_at is None, photo.taken_at or "", len(photo.path), photo.path)


def _keep_reason(best: PhotoFacts, runner_up: PhotoFacts) -> str:
    if best.pixels > runner_up.pixels:
        return f"most pixels ({best.width}×{best.height})"
    if best.taken_at is not None and best.taken_at != runner_up.taken_at:
        return f"same size; taken first ({best.taken_at})"
    if len(best.path) < len(runner_up.path):
        return "same size and date; shortest path"
    return "same size, date and path length; first by name"


def make_group(photos: Iterable[PhotoFacts]) -> DuplicateGroup:
    """One group: the photos in keeping order, with the least similar pair's similarity."""
    ordered = tuple(sorted(photos, key=_keep_key))
    exact = len({p.hash for p in ordered}) == 1
    # Copies of one content share a pHash: compare the distinct contents only.
    by_content = {p.hash: p.phash for p in ordered if p.phash is not None}
    fingerprints = np.array(list(by_content.values()), dtype=np.int64)
    least = 1.0
    if not exact and len(fingerprints) > 1:
        bits = hamming(fingerprints[:, None], fingerprints[None, :])
        least = similarity(int(bits.max()))
    return DuplicateGroup(ordered, exact, least, _keep_reason(ordered[0], ordered[1]))


def find_duplicates(
    store: Store, threshold: float = DEFAULT_THRESHOLD, within: Sequence[str] = (), *, workers: int = 2
) -> list[DuplicateGroup]:
    """Groups of duplicate photos in the library (or in these folders of it), largest first."""
    photos = store.duplicate_facts()
    if within:
        folders = FolderSet(within)
        photos = [p for p in photos if folders.holds(p.path)]
    if len(photos) < 2:
        return []
    ids = np.fromiter((p.id for p in photos), dtype=np.int64, count=len(photos))
    hashes = np.array([p.phash or 0 for p in photos], dtype=np.int64)
    has_phash = np.array([p.phash is not None for p in photos], dtype=bool)

    def unit_vectors(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _unit_vectors(store, ids[rows])

    pairs = near_copies(hashes, has_phash, unit_vectors, threshold, workers=workers)
    rows_of = group_rows([p.hash for p in photos], pairs)
    groups = [make_group(photos[r] for r in rows) for rows in rows_of]
    groups.sort(key=lambda g: (-len(g.photos), g.photos[0].path))
    return groups


def _unit_vectors(store: Store, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors of these image ids, read in one pass over the library's vectors
    (point lookups cost ~1 ms each); only the wanted ones are kept in memory."""
    order = np.argsort(wanted)
    vectors = np.zeros((len(wanted), store.vec_dim() or 1), dtype=np.float32)
    found = np.zeros(len(wanted), dtype=bool)
    if not len(wanted):
        return vectors, found
    for chunk_ids, chunk in store.iter_vectors():
        at = np.minimum(np.searchsorted(wanted, chunk_ids, sorter=order), len(wanted) - 1)
        rows = order[at]
        mine = wanted[rows] == chunk_ids
        norms = np.linalg.norm(chunk[mine], axis=1, keepdims=True)
        vectors[rows[mine]] = chunk[mine] / np.maximum(norms, 1e-12)
        found[rows[mine]] = norms[:, 0] > 0
    return vectors, found


FillProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class FillReport:
    filled: int
    unreadable: int


def _fingerprint_file(path: str) -> int | None:
    try:
        image, _ = open_image(path, min_side=FILL_SIDE)
    except ImageUnreadable:
        return None
    return phash(image)


def fill_missing(
    store: Store,
    within: Sequence[str] = (),
    *,
    workers: int = 2,
    progress: FillProgress | None = None,
) -> FillReport:
    """Fingerprint the photos indexed before fingerprints were kept, from their files
    (a small decode, no model), and store them. One decode per distinct content."""
    missing = store.missing_phashes()
    if within:
        folders = FolderSet(within)
        missing = [m for m in missing if folders.holds(m[1])]
    by_content: dict[str, list[tuple[int, str]]] = {}
    for image_id, path, digest in missing:
        by_content.setdefault(digest or f"\0{image_id}", []).append((image_id, path))
    todo = list(by_content.values())
    filled = unreadable = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(todo), FILL_BATCH):
            batch = todo[start : start + FILL_BATCH]
            results = list(pool.map(_first_readable, batch))
            pairs = [
                (image_id, value)
                for holders, value in zip(batch, results)
                if value is not None
                for image_id, _ in holders
            ]
            unreadable += sum(len(h) for h, v in zip(batch, results) if v is None)
            if pairs:
                with store.write():
                    store.set_phashes(pairs)
            filled += len(pairs)
            if progress is not None:
                progress(min(start + FILL_BATCH, len(todo)), len(todo))
    return FillReport(filled, unreadable)


def _first_readable(holders: list[tuple[int, str]]) -> int | None:
    """The pHash of the first of these files (all one content) that can be decoded."""
    for _, path in holders:
        value = _fingerprint_file(path)
        if value is not None:
            return value
    return None
