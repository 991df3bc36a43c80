"""Drag-and-drop classification: labels typed or picked, images dropped, probabilities as bars."""

from __future__ import annotations

import os
from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .._classify import LabelSet
from .._errors import ClipdeskError
from .._export import write_classification_csv
from .._imaging import supported_suffixes
from .._labels import LabelDefinition
from .._presets import PRESETS, parse_labels
from .applylabels import LabelRunBar
from .classifymodel import ClassifyModel
from .classifydelegate import THUMB, ProbabilityDelegate
from .sortdialog import SortDialog
from .thumbnails import ThumbnailLoader

TYPED = "Typed labels"
PRESET_PREFIX = "Preset: "
SAVED_PREFIX = "Saved: "


def image_paths(urls: Sequence[str]) -> list[str]:
    """Local image files among dropped paths; folders are walked one level deep."""
    suffixes = supported_suffixes()
    out: list[str] = []
    for path in urls:
        if os.path.isdir(path):
            try:
                names = sorted(os.listdir(path))
            except OSError:
                continue
            out.extend(os.path.join(path, n) for n in names if os.path.splitext(n)[1].lower() in suffixes)
        elif os.path.isfile(path):
            out.append(path)
    return list(dict.fromkeys(out))


class DropList(QListView):
    """A list that takes image files dropped from the file manager or the results grid."""

    files_dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.files_dropped.emit(paths)
        else:
            event.ignore()


class ClassifyPanel(QWidget):
    """Asks the main window to classify (`classify_requested`) and shows what comes back."""

    classify_requested = Signal(list, object)  # paths, LabelSet
    sort_requested = Signal(list, str, bool)  # [(path, label)], destination, move
    label_sets_changed = Signal(dict)
    apply_requested = Signal(object)  # LabelDefinition: label the library with these labels
    message = Signal(str)

    def __init__(self, label_sets: dict[str, list[str]] | None = None, labels: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label_sets = dict(label_sets or {})
        self.loader = ThumbnailLoader(THUMB * 2, workers=1, memory_bytes=32 * 1024 * 1024, parent=self)
        self.model = ClassifyModel(self)
        self.loader.ready.connect(self._thumbnail_ready)

        self.labels_edit = QLineEdit(labels)
        self.labels_edit.setPlaceholderText("labels, separated by commas: cat, dog, bird")
        self.labels_edit.setClearButtonEnabled(True)
        self.labels_edit.returnPressed.connect(self.reclassify)
        self.sets = QComboBox()
        self.sets.setToolTip("Pick a saved label set or a built-in preset")
        self.save_set = QPushButton("Save set…")
        self.save_set.clicked.connect(self._save_set)
        self.sets.activated.connect(self._set_chosen)
        self._fill_sets()

        self.list = DropList()
        self.list.setModel(self.model)
        self.list.setItemDelegate(ProbabilityDelegate(self.loader, self.list))
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setUniformItemSizes(False)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.files_dropped.connect(self.add_files)
        self.hint = QLabel("Drop photos here (from your file manager or the results) to classify them.")
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)

        add = QPushButton("Add images…")
        add.clicked.connect(self._browse)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self._export)
        self.sort_button = QPushButton("Sort into folders…")
        self.sort_button.clicked.connect(self._sort)
        clear = QPushButton("Clear")
        clear.clicked.connect(self.clear)
        self.apply_button = QPushButton("Apply to library…")
        self.apply_button.setToolTip(
            "Label the whole library, a folder or the selected photos with these labels, "
            "to search them by label later"
        )
        self.apply_button.clicked.connect(self._apply)
        self.run_bar = LabelRunBar()

        top = QHBoxLayout()
        top.addWidget(self.sets, 1)
        top.addWidget(self.save_set)
        buttons = QGridLayout()  # two rows keep the panel narrow enough to share the window
        buttons.addWidget(add, 0, 0)
        buttons.addWidget(clear, 0, 1)
        buttons.addWidget(self.export_button, 1, 0)
        buttons.addWidget(self.sort_button, 1, 1)
        buttons.addWidget(self.apply_button, 2, 0, 1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Labels:"))
        layout.addWidget(self.labels_edit)
        layout.addLayout(top)
        layout.addWidget(self.hint)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.run_bar)
        self.setAcceptDrops(True)
        self.model.rowsInserted.connect(self._update)
        self.model.modelReset.connect(self._update)
        self._preset: str | None = None
        self._update()

    # -- labels --------------------------------------------------------------------

    def _fill_sets(self) -> None:
        self.sets.clear()
        self.sets.addItem(TYPED)
        for name in PRESETS:
            self.sets.addItem(PRESET_PREFIX + name)
        for name in sorted(self.label_sets):
            self.sets.addItem(SAVED_PREFIX + name)

    def _set_chosen(self, index: int) -> None:
        text = self.sets.itemText(index)
        self._preset = None
        self.labels_edit.setReadOnly(False)
        if text.startswith(PRESET_PREFIX):
            self._preset = text[len(PRESET_PREFIX):]
            self.labels_edit.setText(", ".join(PRESETS[self._preset]))
            self.labels_edit.setReadOnly(True)
        elif text.startswith(SAVED_PREFIX):
            self.labels_edit.setText(", ".join(self.label_sets.get(text[len(SAVED_PREFIX):], [])))
        self.reclassify()

    def use_preset(self, name: str) -> None:
        self.sets.setCurrentText(PRESET_PREFIX + name)
        self._set_chosen(self.sets.currentIndex())

    def _save_set(self) -> None:
        labels = parse_labels(self.labels_edit.text())
        if len(labels) < 2:
            self.message.emit("Type at least two labels before saving them as a set.")
            return
        name, ok = QInputDialog.getText(self, "Save label set", "Name for these labels:")
        if ok and name.strip():
            self.label_sets[name.strip()] = labels
            self._fill_sets()
            self.sets.setCurrentText(SAVED_PREFIX + name.strip())
            self.label_sets_changed.emit(dict(self.label_sets))

    def label_set(self) -> LabelSet:
        """The labels to classify with; raises ClipdeskError with a message if unusable."""
        if self._preset is not None:
            return LabelSet.preset(self._preset)
        return LabelSet.from_labels(parse_labels(self.labels_edit.text()))

    def label_definition(self) -> LabelDefinition:
        """The chosen labels as a set to apply to the library: a preset, a saved set (by its
        name, while its labels are unchanged) or typed labels; ClipdeskError if unusable."""
        if self._preset is not None:
            return LabelDefinition.preset(self._preset)
        labels = parse_labels(self.labels_edit.text())
        text = self.sets.currentText()
        saved = text[len(SAVED_PREFIX):] if text.startswith(SAVED_PREFIX) else None
        if saved is not None and self.label_sets.get(saved) == labels:
            return LabelDefinition.typed(labels, name=saved)
        return LabelDefinition.typed(labels)

    def _apply(self) -> None:
        try:
            definition = self.label_definition()
        except ClipdeskError as exc:
            self.message.emit(str(exc))
            return
        self.apply_requested.emit(definition)

    # -- images --------------------------------------------------------------------

    def add_files(self, paths: Sequence[str]) -> None:
        images = image_paths(paths)
        if not images:
            self.message.emit("Nothing to classify there: drop image files or a folder of photos.")
            return
        self._request(images)

    def reclassify(self) -> None:
        if self.model.rowCount():
            self._request(self.model.paths())

    def _request(self, paths: list[str]) -> None:
        try:
            labels = self.label_set()
        except ClipdeskError as exc:
            self.message.emit(str(exc))
            return
        self.classify_requested.emit(paths, labels)

    def show_results(self, results: Sequence[object]) -> None:
        self.model.set_results(results)  # type: ignore[arg-type]

    def clear(self) -> None:
        self.loader.clear_queue()
        self.model.clear()

    def _browse(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Images to classify")
        if files:
            self.add_files(files)

    def _thumbnail_ready(self, key: int) -> None:
        self.list.viewport().update()

    def _update(self) -> None:
        has = self.model.rowCount() > 0
        self.hint.setVisible(not has)
        self.export_button.setEnabled(has)
        self.sort_button.setEnabled(has)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_files(paths)

    # -- export and sorting ---------------------------------------------------------

    def write_csv(self, target: str) -> None:
        write_classification_csv(target, self.model.items())

    def _export(self) -> None:
        target, _ = QFileDialog.getSaveFileName(self, "Export classification", "classification.csv", "CSV (*.csv)")
        if not target:
            return
        try:
            self.write_csv(target)
        except OSError as exc:
            self.message.emit(f"Could not write {target}: {exc.strerror or exc}")
            return
        self.message.emit(f"Saved {target}.")

    def winners(self) -> list[tuple[str, str]]:
        return [(i.path, i.result.best()) for i in self.model.items() if i.result is not None]

    def _sort(self) -> None:
        winners = self.winners()
        if not winners:
            return
        destination = QFileDialog.getExistingDirectory(self, "Sort into folders under")
        if not destination:
            return
        dialog = SortDialog(winners, destination, self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.sort_requested.emit(winners, destination, dialog.move_button.isChecked())
