"""The Labels panel: the library's label sets and how many photos carry each label;
clicking a label searches for it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from .._labels import LabelSetInfo

LabelRole = Qt.ItemDataRole.UserRole


class LabelsPanel(QWidget):
    label_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Label", "Photos"])
        self.tree.setRootIsDecorated(True)
        self.tree.itemActivated.connect(self._activated)
        self.tree.itemClicked.connect(self._activated)
        self.hint = QLabel(
            "No labels yet. In the Classify panel, choose labels and press "
            "\u201cApply to library…\u201d to label your photos; then click a label here to see its photos."
        )
        self.hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.hint)
        layout.addWidget(self.tree, 1)
        self.set_sets(())

    def set_sets(self, sets: Sequence[LabelSetInfo]) -> None:
        """Show these label sets, each with its labels and counts (GUI thread)."""
        expanded = {top.text(0) for top in self._tops() if top.isExpanded()}
        self.tree.clear()
        for info in sets:
            top = QTreeWidgetItem([info.name, f"{info.photos:,}"])
            top.setToolTip(0, "Labels new photos too" if info.active else "Not applied to new photos")
            for label, count in info.counts.items():
                child = QTreeWidgetItem([label, f"{count:,}"])
                child.setData(0, LabelRole, label)
                child.setToolTip(0, f"Show the photos labelled \u201c{label}\u201d")
                top.addChild(child)
            self.tree.addTopLevelItem(top)
            top.setExpanded(info.name in expanded or len(sets) <= 3)
        self.tree.resizeColumnToContents(0)
        self.hint.setVisible(not sets)
        self.tree.setVisible(bool(sets))

    def _tops(self) -> Iterator[QTreeWidgetItem]:
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            if top is not None:
                yield top

    def _label_items(self) -> Iterator[QTreeWidgetItem]:
        for top in self._tops():
            for j in range(top.childCount()):
                child = top.child(j)
                if child is not None:
                    yield child

    def labels(self) -> dict[str, int]:
        """Each label shown and its count, as the panel shows them."""
        return {item.text(0): int(item.text(1).replace(",", "")) for item in self._label_items()}

    def item_for(self, label: str) -> QTreeWidgetItem | None:
        """The row of a label (the first, if two sets share it)."""
        return next((i for i in self._label_items() if i.data(0, LabelRole) == label), None)

    def _activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        label = item.data(0, LabelRole)
        if isinstance(label, str):
            self.label_clicked.emit(label)
