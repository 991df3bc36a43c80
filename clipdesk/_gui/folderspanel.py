"""The watched folders: their photo counts and state; add, remove, re-index."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QMessageBox,
    QPushButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from .._events import FolderState, FolderStatus

AnyIndex = QModelIndex | QPersistentModelIndex

STATE_TEXT = {
    FolderState.WATCHING: "watching",
    FolderState.POLLING: "watching (polling)",
    FolderState.INDEXING: "indexing…",
    FolderState.ERROR: "error",
    FolderState.MISSING: "missing",
    FolderState.UNWATCHED: "not watched",
}


class FoldersModel(QAbstractTableModel):
    HEADERS = ("Folder", "Photos", "State")

    def __init__(self, parent: object | None = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self._rows: list[FolderStatus] = []

    def set_folders(self, folders: Sequence[FolderStatus]) -> None:
        self.beginResetModel()
        self._rows = sorted(folders, key=lambda f: f.path.lower())
        self.endResetModel()

    def folder(self, row: int) -> FolderStatus | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def folders(self) -> list[FolderStatus]:
        return list(self._rows)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        f = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return (f.path, f"{f.images:,}", STATE_TEXT[f.state])[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return f.message or f.path
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() == 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        horizontal = orientation == Qt.Orientation.Horizontal
        if horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(self.HEADERS):
            return self.HEADERS[section]
        return None


class FoldersPanel(QWidget):
    """Emits what the user asked for; the main window passes it to the service."""

    add_requested = Signal()
    remove_requested = Signal(str, bool)  # path, forget the index
    reindex_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = FoldersModel(self)
        self.view = QTreeView()
        self.view.setModel(self.model)
        self.view.setRootIsDecorated(False)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.view.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.view.setTextElideMode(Qt.TextElideMode.ElideLeft)  # the end of a path says most
        self.add_button = QPushButton("Add folder…")
        self.remove_button = QPushButton("Remove")
        self.reindex_button = QPushButton("Re-index")
        self.add_button.clicked.connect(self.add_requested)
        self.remove_button.clicked.connect(self._remove)
        self.reindex_button.clicked.connect(self._reindex)
        buttons = QHBoxLayout()
        for b in (self.add_button, self.remove_button, self.reindex_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        layout.addLayout(buttons)
        self.view.selectionModel().selectionChanged.connect(self._update_buttons)
        self.model.modelReset.connect(self._update_buttons)
        self._update_buttons()

    def _selected(self) -> FolderStatus | None:
        rows = self.view.selectionModel().selectedRows()
        return self.model.folder(rows[0].row()) if rows else None

    def _update_buttons(self) -> None:
        has = self._selected() is not None
        self.remove_button.setEnabled(has)
        self.reindex_button.setEnabled(has)

    def _remove(self) -> None:
        folder = self._selected()
        if folder is None:
            return
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Remove folder")
        box.setText(f"Stop watching {folder.path}?")
        box.setInformativeText(
            "Forgetting its index removes its photos from search (the photos themselves are never "
            "touched). Keeping it lets search still find them, without updates."
        )
        forget = box.addButton("Forget index", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep index", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        clicked = box.clickedButton()
        if clicked is forget:
            self.remove_requested.emit(folder.path, True)
        elif clicked is keep:
            self.remove_requested.emit(folder.path, False)

    def _reindex(self) -> None:
        folder = self._selected()
        if folder is not None:
            self.reindex_requested.emit(folder.path)
