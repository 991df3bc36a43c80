"""The settings dialog: model, device, batch size, thumbnail cache, watching on launch, safe search."""

from __future__ import annotations

import dataclasses

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from .._labels import SafeSearch
from .._models import KNOWN_MODELS
from .settings import DEVICES, AppSettings

LIBRARY_MODEL = "The library's model (default: ViT-B/32)"
CUSTOM = "Custom model id or folder…"


class SettingsDialog(QDialog):
    """Edits a copy of the settings; `result_settings()` gives the edited copy."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None, *,
                 safe_search: SafeSearch | None = None) -> None:
        super().__init__(parent)
        self._safe = safe_search or SafeSearch()
        self.setWindowTitle("clipdesk settings")
        self._original = settings
        form = QFormLayout(self)

        self.model_combo = QComboBox()
        self.model_combo.addItem(LIBRARY_MODEL, "")
        for name, model_id in KNOWN_MODELS.items():
            self.model_combo.addItem(f"{name}  ({model_id})", model_id)
        self.model_combo.addItem(CUSTOM, None)
        self.custom_model = QLineEdit()
        self.custom_model.setPlaceholderText("a Hugging Face id, or a folder saved by save_pretrained")
        browse = QPushButton("Folder…")
        browse.clicked.connect(self._browse_model)
        custom_row = QHBoxLayout()
        custom_row.addWidget(self.custom_model, 1)
        custom_row.addWidget(browse)
        self._custom_widgets = (self.custom_model, browse)
        form.addRow("Model:", self.model_combo)
        form.addRow("", _wrap(custom_row))
        form.addRow("", QLabel("Changing the model means re-indexing every photo once."))
        self.model_combo.currentIndexChanged.connect(self._model_changed)

        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.device.setToolTip("auto: a CUDA GPU, then Apple's MPS, then the CPU")
        form.addRow("Device:", self.device)

        self.batch_size = QSpinBox()
        self.batch_size.setRange(0, 1024)
        self.batch_size.setSpecialValueText("model default")
        form.addRow("Batch size:", self.batch_size)

        self.cache_mb = QSpinBox()
        self.cache_mb.setRange(16, 100_000)
        self.cache_mb.setSuffix(" MB")
        form.addRow("Thumbnail cache:", self.cache_mb)

        self.start_watching = QCheckBox("Watch folders for new and changed photos on launch")
        form.addRow("", self.start_watching)

        self.safe_search = QCheckBox("Safe search")
        self.safe_search.setChecked(self._safe.enabled)
        explain = QLabel(
            "Hides photos that look unsafe (nudity, violence, gore or hate) from search results, "
            "browsing and thumbnails, until you switch it off. The photos themselves are not touched. "
            "It relies on the moderation labels: the first time, clipdesk offers to label the "
            "library with them (quick, in the background). Labels are guesses by the model, so "
            "a few photos may be hidden or shown wrongly."
        )
        explain.setWordWrap(True)
        form.addRow("Safe search:", self.safe_search)
        form.addRow("", explain)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._show(settings)

    def _show(self, s: AppSettings) -> None:
        index = self.model_combo.findData(s.model) if s.model in ("", *KNOWN_MODELS.values()) else -1
        if index < 0:
            index = self.model_combo.count() - 1
            self.custom_model.setText(s.model)
        self.model_combo.setCurrentIndex(index)
        self._model_changed()
        self.device.setCurrentText(s.device)
        self.batch_size.setValue(s.batch_size)
        self.cache_mb.setValue(s.thumbnail_cache_mb)
        self.start_watching.setChecked(s.start_watching)

    def _model_changed(self) -> None:
        custom = self.model_combo.currentData() is None
        for widget in self._custom_widgets:
            widget.setEnabled(custom)

    def _browse_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder")
        if folder:
            self.custom_model.setText(folder)

    def model(self) -> str:
        data = self.model_combo.currentData()
        return self.custom_model.text().strip() if data is None else str(data)

    def result_safe_search(self) -> SafeSearch:
        """The safe-search setting as chosen (it is kept in the library, not with the settings)."""
        return dataclasses.replace(self._safe, enabled=self.safe_search.isChecked())

    def result_settings(self) -> AppSettings:
        return dataclasses.replace(
            self._original,
            model=self.model(),
            device=self.device.currentText(),
            batch_size=self.batch_size.value(),
            thumbnail_cache_mb=self.cache_mb.value(),
            start_watching=self.start_watching.isChecked(),
        )


def _wrap(layout: QHBoxLayout) -> QWidget:
    widget = QWidget()
    layout.setContentsMargins(0, 0, 0, 0)
    widget.setLayout(layout)
    return widget
