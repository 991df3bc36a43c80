"""Ranking images against a query: texts, example images, and texts to avoid.

A query becomes one vector: the mean of what is wanted minus a share of the
mean of what is not. Since every vector is unit length, ranking by that
vector equals ranking by "similarity to the wanted minus similarity to the
unwanted", so negatives push matching photos down without a second pass.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._encoder import Encoder, encode_images, normalise
from ._errors import ClipdeskError, ImageUnreadable
from ._filters import Filter
from ._imaging import open_image
from ._safefile import require_photo_path
from ._paths import display
from ._store import MAX_KNN, ImageRecord, Store
from ._vectorindex import VectorIndex

NEGATIVE_WEIGHT = 0.5
TEXT_CACHE_SIZE = 512
# Up to this many photos kept by a filter are ranked exactly, from their own
# vectors (point lookups: ~0.1 s for this many); more are found by ranking the
# whole library deeper and deeper until enough of them are among the best.
EXACT_FILTERED = 20_000


@dataclass(frozen=True)
class Query:
    texts: tuple[str, ...] = ()
    negatives: tuple[str, ...] = ()
    like: tuple[str, ...] = ()  # example image paths, indexed or not
    like_ids: tuple[int, ...] = ()  # example images already in the library
    limit: int = 20
    min_score: float | None = None
    filter: Filter | None = None  # only photos it keeps are ranked (before the limit)

    def is_empty(self) -> bool:
        return not (self.texts or self.like or self.like_ids)


@dataclass(frozen=True)
class Hit:
    image_id: int
    path: str
    score: float
    record: ImageRecord | None = None  # what the library holds about it, where looked up


@dataclass
class TextCache:
    """Recently used text vectors; thread-safe, as the GUI searches from a worker."""

    size: int = TEXT_CACHE_SIZE
    _items: OrderedDict[str, np.ndarray] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    hits: int = 0

    def encode(self, encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._items]
            self.hits += len(texts) - len(missing)
        if missing:
            vectors = encoder.encode_texts(missing)
            with self._lock:
                for text, vector in zip(missing, vectors):
                    self._items[text] = vector
                    self._items.move_to_end(text)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        with self._lock:
            out = []
            for text in texts:
                self._items.move_to_end(text)
                out.append(self._items[text])
        return np.stack(out) if out else np.zeros((0, encoder.dim), dtype=np.float32)


class Searcher:
    """Runs queries against one Store with one encoder (the model must match the library).

    With an in-memory `VectorIndex` (long-lived processes: the GUI, a service),
    ranking takes milliseconds even at a million images; without one (a one-shot
    command), sqlite-vec searches the database directly, which costs nothing to
    set up. More results than sqlite-vec allows in one query need the index.
    """

    def __init__(
        self,
        store: Store,
        encoder: Encoder,
        text_cache: TextCache | None = None,
        index: VectorIndex | None = None,
    ) -> None:
        self.store = store
        self.encoder = encoder
        self.text_cache = text_cache or TextCache()
        self.index = index

    def image_vector(self, path: str) -> tuple[np.ndarray, int | None]:
        """The vector of an example image: from the library if indexed, else encoded now."""
        record = self.store.image_by_path(str(Path(path).absolute()))
        if record is not None:
            vector = self.store.vector(record.id)
            if vector is not None:
                return vector, record.id
        require_photo_path(path)
        try:
            image, _ = open_image(path, min_side=self.encoder.image_size)
        except ImageUnreadable as exc:
            raise ImageUnreadable(f"{display(path)}: {exc}") from None  # say which example
        return encode_images(self.encoder, [image])[0], None

    def query_vector(self, query: Query) -> tuple[np.ndarray, set[int]]:
        """The single vector a query ranks by, and the ids of example images to leave out."""
        if query.is_empty():
            raise ClipdeskError("Nothing to search for: give some words or an example image.")
        wanted: list[np.ndarray] = []
        exclude: set[int] = set()
        if query.texts:
            wanted.extend(self.text_cache.encode(self.encoder, list(query.texts)))
        for path in query.like:
            vector, image_id = self.image_vector(path)
            wanted.append(vector)
            if image_id is not None:
                exclude.add(image_id)
        for image_id in query.like_ids:
            stored = self.store.vector(image_id)
            if stored is not None:
                wanted.append(stored)
                exclude.add(image_id)
        if not wanted:
            raise ClipdeskError("None of the example images is in the library any more.")
        target = normalise(np.mean(wanted, axis=0))
        if query.negatives:
            avoid = normalise(self.text_cache.encode(self.encoder, list(query.negatives)).mean(axis=0))
            target = target - NEGATIVE_WEIGHT * avoid
        return normalise(target), exclude

    def search(self, query: Query) -> list[Hit]:
        """Best matches first, at most query.limit, none below query.min_score."""
        vector, exclude = self.query_vector(query)
        if query.filter is None or query.filter.is_empty():
            pairs = self.rank(vector, query.limit, exclude)
        else:
            pairs = self.rank_filtered(vector, query.limit, query.filter, exclude)
        if query.min_score is not None:
            pairs = [(i, s) for i, s in pairs if s >= query.min_score]
        records = self.store.images(i for i, _ in pairs)
        return [Hit(i, records[i].path, s, records[i]) for i, s in pairs if i in records]

    def rank_filtered(
        self, vector: np.ndarray, limit: int, keep: Filter, exclude: set[int] | frozenset[int] = frozenset()
    ) -> list[tuple[int, float]]:
        """The `limit` photos nearest a query vector among those the filter keeps, best first.

        The filter is applied before the limit: every kept photo can be found,
        however few the filter keeps.
        """
        where, params = keep.sql()
        allowed = self.store.matching_ids(where, params)
        if exclude:
            allowed = allowed[~np.isin(allowed, np.fromiter(exclude, np.int64, len(exclude)))]
        if len(allowed) == 0:
            return []
        if len(allowed) <= EXACT_FILTERED:
            ids, vectors = self.store.vectors(allowed)
            if len(ids) == 0:
                return []
            norms = np.linalg.norm(vectors, axis=1) * float(np.linalg.norm(vector))
            scores = (vectors @ vector) / np.where(norms > 0, norms, 1.0)
            order = np.lexsort((ids, -scores))[:limit]  # ties by id, so results are repeatable
            return [(int(ids[i]), float(scores[i])) for i in order]
        # Many kept: they are a good share of the library, so a few rounds of a
        # deeper ranking of everything find `limit` of them.
        wanted = set(allowed.tolist())
        total = self.store.count_images()
        k = min(total, max(2 * limit, 2 * limit * total // len(allowed)))
        while True:
            pairs = self.rank(vector, k, exclude)
            kept = [(i, s) for i, s in pairs if i in wanted]
            if len(kept) >= limit or len(pairs) < k or k >= total:
                return kept[:limit]
            k = min(total, 4 * k)

    def rank(
        self, vector: np.ndarray, limit: int, exclude: set[int] | frozenset[int] = frozenset()
    ) -> list[tuple[int, float]]:
        """The `limit` images nearest a query vector: (image id, cosine similarity), best first."""
        wanted = limit + len(exclude)
        if self.index is None and wanted > MAX_KNN:
            self.index = VectorIndex()
        if self.index is not None:
            if wanted > MAX_KNN:  # only the index can give that many
                return self.index.search(self.store, vector, limit, exclude)
            # While a large library is first read into the index (seconds at a
            # million photos), sqlite-vec answers instead.
            pairs = self.index.search_if_ready(self.store, vector, limit, exclude)
            if pairs is not None:
                return pairs
        pairs = self.store.knn(vector, wanted)
        return [(i, s) for i, s in pairs if i not in exclude][:limit]
