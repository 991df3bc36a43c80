"""A compact list of search hits, for result lists as long as the whole library.

A million `Hit` objects cost about 500 MB and seconds to build or compare; the
same hits as two arrays and a list of path strings cost a quarter of that, and
filtering, comparing and finding a row are array operations.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import overload

import numpy as np

from ._search import Hit


class HitList(Sequence[Hit]):
    """Hits in rank order, stored column-wise; indexing yields `Hit`s. Immutable."""

    def __init__(self, ids: np.ndarray, paths: Sequence[str], scores: np.ndarray | None = None) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.paths: list[str] = paths if isinstance(paths, list) else list(paths)
        self.scores = (
            np.zeros(len(self.ids), dtype=np.float64)
            if scores is None
            else np.asarray(scores, dtype=np.float64)
        )
        if not len(self.ids) == len(paths) == len(self.scores):
            raise ValueError("ids, paths and scores must be as long as each other")
        self._sorted_ids: np.ndarray | None = None  # built on the first row_of

    @classmethod
    def of(cls, hits: Iterable[Hit]) -> HitList:
        """The same hits, stored compactly (a HitList is returned as it is)."""
        if isinstance(hits, HitList):
            return hits
        items = list(hits)
        return cls(
            np.fromiter((h.image_id for h in items), np.int64, len(items)),
            [h.path for h in items],
            np.fromiter((h.score for h in items), np.float64, len(items)),
        )

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> Hit: ...
    @overload
    def __getitem__(self, index: slice) -> HitList: ...
    def __getitem__(self, index: int | slice) -> Hit | HitList:
        if isinstance(index, slice):
            return HitList(self.ids[index], self.paths[index], self.scores[index])
        return Hit(int(self.ids[index]), self.paths[index], float(self.scores[index]))

    def __iter__(self) -> Iterator[Hit]:
        for i in range(len(self.ids)):
            yield self[i]

    def same_as(self, other: HitList) -> bool:
        """The same photos, scores and order (cheap: arrays first, paths last)."""
        return (
            self is other
            or len(self) == len(other)
            and bool(np.array_equal(self.ids, other.ids))
            and bool(np.array_equal(self.scores, other.scores))
            and self.paths == other.paths
        )

    def at_least(self, cutoff: float) -> HitList:
        """The hits scoring `cutoff` or more, in the same order."""
        keep = np.flatnonzero(self.scores >= cutoff)
        if len(keep) == len(self):
            return self
        return HitList(self.ids[keep], [self.paths[int(i)] for i in keep], self.scores[keep])

    def row_of(self, image_id: int) -> int | None:
        """The position of an image in this list, or None."""
        if self._sorted_ids is None:
            self._sorted_ids = np.argsort(self.ids, kind="stable")
        order = self._sorted_ids
        at = int(np.searchsorted(self.ids, image_id, sorter=order))
        if at < len(order) and self.ids[order[at]] == image_id:
            return int(order[at])
        return None
