"""Applying a label set to the library: where (whole library, a folder, the selection),
and the bar that shows a run's progress with Pause and Cancel."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QRadioButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .._labels import LabelDefinition, TagPhase, TagProgress
from .labelwork import ApplyScope, RunControl


class ApplyLabelsDialog(QDialog):
    """Asks where to apply a label set, the least probability a label needs, and whether
    photos indexed later get it too."""

    def __init__(self, definition: LabelDefinition, folders: Sequence[str], selected: Sequence[str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Apply labels to the library")
        self._definition = definition
        self._selected = tuple(selected)
        intro = QLabel(
            f"Label photos with \u201c{definition.name}\u201d ({', '.join(definition.labels.labels)}). "
            "Each photo keeps every label's probability and carries its most likely label; "
            "applying the same set again replaces its results. This uses what indexing "
            "already knows of each photo, so it is quick."
        )
        intro.setTextFormat(Qt.TextFormat.PlainText)
        intro.setWordWrap(True)
        self.whole = QRadioButton("The whole library")
        self.in_folder = QRadioButton("The photos in a folder:")
        self.folder = QComboBox()
        self.folder.addItems(list(folders))
        self.selection = QRadioButton(
            f"The {len(self._selected)} selected photo{'s' if len(self._selected) != 1 else ''}"
        )
        self.whole.setChecked(True)
        self.in_folder.setEnabled(bool(folders))
        self.folder.setEnabled(bool(folders))
        self.selection.setEnabled(bool(self._selected))
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.in_folder)
        folder_row.addWidget(self.folder, 1)

        self.min_probability = QDoubleSpinBox()
        self.min_probability.setRange(0.0, 1.0)
        self.min_probability.setSingleStep(0.05)
        self.min_probability.setDecimals(2)
        self.min_probability.setValue(definition.min_probability)
        self.min_probability.setToolTip(
            "A photo carries its most likely label only if it is at least this likely (0: always)"
        )
        self.active = QCheckBox("Also label photos indexed later")
        self.active.setChecked(definition.active)
        form = QFormLayout()
        form.addRow("Least probability:", self.min_probability)
        form.addRow("", self.active)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Apply")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.whole)
        layout.addLayout(folder_row)
        layout.addWidget(self.selection)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def scope(self) -> ApplyScope:
        if self.selection.isChecked():
            return ApplyScope(paths=self._selected)
        if self.in_folder.isChecked() and self.folder.currentText():
            return ApplyScope(folder=self.folder.currentText())
        return ApplyScope()

    def definition(self) -> LabelDefinition:
        return replace(
            self._definition, min_probability=round(self.min_probability.value(), 2),
            active=self.active.isChecked(),
        )


class LabelRunBar(QWidget):
    """A label run's progress, with Pause/Resume and Cancel; hidden when none runs."""

    progressed = Signal(object)  # TagProgress, from the writer thread (queued)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.control: RunControl | None = None
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setFormat("%v / %m")
        self.pause_button = QToolButton()
        self.pause_button.setText("Pause")
        # The run keeps its results to save in one go, so while it is paused the library's
        # other changes (indexing) wait too.
        self.pause_button.setToolTip("Pause labelling; indexing waits until you resume or cancel")
        self.pause_button.clicked.connect(self._toggle)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Stop; the library keeps its labels as they were")
        self.cancel_button.clicked.connect(self.cancel)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.bar, 1)
        row.addWidget(self.pause_button)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addLayout(row)
        self.progressed.connect(self._show)
        self._name = ""
        self.hide()

    @property
    def running(self) -> bool:
        return self.control is not None

    def start(self, name: str, scope: ApplyScope, control: RunControl) -> None:
        self.control = control
        self._name = name
        self.bar.setRange(0, 0)
        self.label.setText(f"Applying \u201c{name}\u201d to {scope.describe()}…")
        self.pause_button.setText("Pause")
        self.pause_button.setEnabled(True)
        self.cancel_button.setEnabled(True)
        self.show()

    def relay(self, progress: TagProgress) -> None:
        """Called on the writer thread: only emit."""
        with contextlib.suppress(RuntimeError):  # the window is already gone
            self.progressed.emit(progress)

    def _show(self, progress: TagProgress) -> None:
        if self.control is None:
            return
        self.bar.setRange(0, max(1, progress.total))
        self.bar.setValue(progress.done)
        if progress.phase is TagPhase.SAVING:
            self.label.setText(f"Saving the labels of \u201c{self._name}\u201d…")
            self.pause_button.setEnabled(False)
            self.cancel_button.setEnabled(False)  # the results are being written in one go

    def _toggle(self) -> None:
        if self.control is None:
            return
        if self.control.paused:
            self.control.resume()
            self.pause_button.setText("Pause")
            self.label.setText(f"Applying \u201c{self._name}\u201d…")
        else:
            self.control.pause()
            self.pause_button.setText("Resume")
            self.label.setText(f"Paused applying \u201c{self._name}\u201d.")

    def cancel(self) -> None:
        if self.control is not None:
            self.control.stop()
            self.label.setText(f"Stopping \u201c{self._name}\u201d…")
            self.pause_button.setEnabled(False)
            self.cancel_button.setEnabled(False)

    def finish(self) -> None:
        self.control = None
        self.hide()
