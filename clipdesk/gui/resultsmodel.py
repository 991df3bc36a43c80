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

from ..search import Hit

PathRole = Qt.ItemDataRole.UserRole + 1
ScoreRole = Qt.ItemDataRole.UserRole + 2
ImageIdRole = Qt.ItemDataRole.UserRole + 3

AnyIndex = QModelIndex | QPersistentModelIndex


def relevance_cutoff(scores: Sequence[float], relevance: float) -> float:
    """The lowest score shown: `relevance` (0..1) of the way from the weakest to the best hit.

    CLIP's similarity scale differs between models and queries, so a fixed score
    threshold would hide everything for one query and nothing for another; a
    share of this result list's own spread works for any model.
    """
    if not scores:
        return 0.0
    best, worst = max(scores), min(scores)
    return worst + max(0.0, min(1.0, relevance)) * (best - worst)


class ResultsModel(QAbstractListModel):
    """Hits in rank order; `set_relevance` hides weak matches without searching again."""

    def __init__(self, parent: object | None = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self._all: list[Hit] = []
        self._shown: list[Hit] = []
        self._relevance = 0.0
        self._row_of: dict[int, int] = {}

    # -- data ---------------------------------------------------------------------

    def set_hits(self, hits: Sequence[Hit]) -> bool:
        """Show these hits; False (and no reset) when they are the ones already shown."""
        hits = list(hits)
        if hits == self._all and self.rowCount() == len(self._shown):
            return False
        self._all = hits
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
        cutoff = relevance_cutoff([h.score for h in self._all], self._relevance)
        self._shown = [h for h in self._all if h.score >= cutoff] if self._relevance > 0 else list(self._all)
        self._row_of = {h.image_id: row for row, h in enumerate(self._shown)}
        self.endResetModel()

    def hit(self, row: int) -> Hit | None:
        return self._shown[row] if 0 <= row < len(self._shown) else None

    def hits(self) -> list[Hit]:
        return list(self._shown)

    def row_of(self, image_id: int) -> int | None:
        return self._row_of.get(image_id)

    def thumbnail_ready(self, image_id: int) -> None:
        """Repaint the row showing this image (its thumbnail has loaded)."""
        row = self._row_of.get(image_id)
        if row is not None:
            index = self.index(row, 0)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    # -- QAbstractListModel -------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._shown)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._shown):
            return None
        hit = self._shown[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return os.path.basename(hit.path)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{hit.path}\nscore {hit.score:.3f}"
        if role == PathRole:
            return hit.path
        if role == ScoreRole:
            return hit.score
        if role == ImageIdRole:
            return hit.image_id
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
        mime.setUrls([QUrl.fromLocalFile(self._shown[r].path) for r in rows if r < len(self._shown)])
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction
