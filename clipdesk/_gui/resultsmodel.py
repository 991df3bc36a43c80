"""The search results as a list model: one row per hit, best first, weak matches hidden."""

from __future__ import annotations

import os
from collections.abc import Sequence

from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QUrl,
)

import numpy as np

from .._hitlist import HitList
from .._search import Hit

PathRole = Qt.ItemDataRole.UserRole + 1
ScoreRole = Qt.ItemDataRole.UserRole + 2
ImageIdRole = Qt.ItemDataRole.UserRole + 3

AnyIndex = QModelIndex | QPersistentModelIndex


def relevance_cutoff(scores: Sequence[float] | np.ndarray, relevance: float) -> float:
    """The lowest score shown: `relevance` (0..1) of the way from the weakest to the best hit.

    CLIP's similarity scale differs between models and queries, so a fixed score
    threshold would hide everything for one query and nothing for another; a
    share of this result list's own spread works for any model.
    """
    values = np.asarray(scores, dtype=np.float64)
    if not len(values):
        return 0.0
    best, worst = float(values.max()), float(values.min())
    return worst + max(0.0, min(1.0, relevance)) * (best - worst)


class ResultsModel(QAbstractListModel):
    """Hits in rank order; `set_relevance` hides weak matches without searching again.

    Runs on the GUI thread with up to the whole library as rows, so everything
    per-hit here is an array operation (see HitList).
    """

    def __init__(self, parent: object | None = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self._all = HitList.of([])
        self._shown = self._all
        self._relevance = 0.0

    # -- data ---------------------------------------------------------------------

    def set_hits(self, hits: Sequence[Hit]) -> bool:
        """Show these hits; False (and no reset) when they are the ones already shown."""
        compact = HitList.of(hits)
        if compact.same_as(self._all):
            return False
        self._all = compact
        self._refilter()
        return True

    def set_relevance(self, relevance: float) -> None:
        if relevance != self._relevance:
            self._relevance = relevance
            self._refilter()

    @property
    def relevance(self) -> float:
        return self._relevance

    @property
    def total(self) -> int:
        """Hits found before the relevance filter."""
        return len(self._all)

    def _refilter(self) -> None:
        self.beginResetModel()
        if self._relevance > 0:
            self._shown = self._all.at_least(relevance_cutoff(self._all.scores, self._relevance))
        else:
            self._shown = self._all
        self.endResetModel()

    def hit(self, row: int) -> Hit | None:
        return self._shown[row] if 0 <= row < len(self._shown) else None

    def hits(self) -> HitList:
        return self._shown

    def row_of(self, image_id: int) -> int | None:
        return self._shown.row_of(image_id)

    def thumbnail_ready(self, image_id: int) -> None:
        """Repaint the row showing this image (its thumbnail has loaded)."""
        row = self._shown.row_of(image_id)
        if row is not None:
            index = self.index(row, 0)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    # -- QAbstractListModel -------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._shown)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._shown):
            return None
        row, shown = index.row(), self._shown
        if role == Qt.ItemDataRole.DisplayRole:
            return os.path.basename(shown.paths[row])
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{shown.paths[row]}\nscore {shown.scores[row]:.3f}"
        if role == PathRole:
            return shown.paths[row]
        if role == ScoreRole:
            return float(shown.scores[row])
        if role == ImageIdRole:
            return int(shown.ids[row])
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        if index.isValid():
            return base | Qt.ItemFlag.ItemIsDragEnabled
        return base

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        """Dragged results are the photo files themselves, for any app that takes files."""
        mime = QMimeData()
        rows = sorted({i.row() for i in indexes if i.isValid()})
        mime.setUrls([QUrl.fromLocalFile(self._shown.paths[r]) for r in rows if r < len(self._shown)])
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction
