"""Classified images as a list model: each row an image with its label probabilities."""

from __future__ import annotations

import os
from collections.abc import Sequence

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from .._library import ClassifiedImage

AnyIndex = QModelIndex | QPersistentModelIndex
PathRole = Qt.ItemDataRole.UserRole + 1
RankedRole = Qt.ItemDataRole.UserRole + 2  # [(label, probability)], best first
ErrorRole = Qt.ItemDataRole.UserRole + 3
KeyRole = Qt.ItemDataRole.UserRole + 4  # a stable id for the row's thumbnail


class ClassifyModel(QAbstractListModel):
    def __init__(self, parent: object | None = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self._items: list[ClassifiedImage] = []
        self._keys: list[int] = []
        self._key_of: dict[str, int] = {}

    def key(self, path: str) -> int:
        return self._key_of.setdefault(path, len(self._key_of) + 1)

    def paths(self) -> list[str]:
        return [item.path for item in self._items]

    def items(self) -> list[ClassifiedImage]:
        return list(self._items)

    def set_results(self, results: Sequence[ClassifiedImage]) -> None:
        """Add or update rows by path (a path dropped twice keeps one row)."""
        rows = {item.path: row for row, item in enumerate(self._items)}
        new = [r for r in results if r.path not in rows]
        for result in results:
            row = rows.get(result.path)
            if row is not None:
                self._items[row] = result
                index = self.index(row, 0)
                self.dataChanged.emit(index, index)
        if new:
            first = len(self._items)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            self._items.extend(new)
            self._keys.extend(self.key(r.path) for r in new)
            self.endInsertRows()

    def clear(self) -> None:
        self.beginResetModel()
        self._items.clear()
        self._keys.clear()
        self.endResetModel()

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return os.path.basename(item.path)
        if role == Qt.ItemDataRole.ToolTipRole:
            if item.result is None:
                return item.error or item.path
            return item.path + "".join(f"\n{p * 100:5.1f}%  {label}" for label, p in item.result.ranked())
        if role == PathRole:
            return item.path
        if role == RankedRole:
            return item.result.ranked() if item.result is not None else []
        if role == ErrorRole:
            return item.error
        if role == KeyRole:
            return self._keys[index.row()]
        return None
