"""The preview pane: a larger picture of the selected result and what is known about it."""

from __future__ import annotations

import datetime
import math
import os

from collections.abc import Sequence

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPixmap, QResizeEvent
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from .._labels import ImageLabel
from .._search import Hit
from .._store import ImageRecord
from .thumbnails import ThumbnailLoader

PREVIEW_SIZE = 1024


class PreviewPane(QWidget):
    label_clicked = Signal(str)  # a label chip: show the photos carrying that label

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loader = ThumbnailLoader(PREVIEW_SIZE, workers=1, memory_bytes=64 * 1024 * 1024, parent=self)
        self.loader.ready.connect(self._loaded)
        self.hit: Hit | None = None
        self._pixmap: QPixmap | None = None
        self.picture = QLabel("Select a photo to see it here.")
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumSize(QSize(160, 160))
        self.picture.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.picture.setWordWrap(True)
        self.fields: dict[str, QLabel] = {}
        form = QFormLayout()
        for name in ("Name", "Folder", "Date", "Size", "Score"):
            label = QLabel()
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            self.fields[name] = label
            form.addRow(f"{name}:", label)
        # The labels the photo carries (one per label set), as chips that search for the label.
        self.chips_row = QHBoxLayout()
        self.chips_row.setContentsMargins(0, 0, 0, 0)
        self.chips_row.addStretch(1)  # chips line up from the left
        self.chips: list[QToolButton] = []
        self._chips = QWidget()
        self._chips.setLayout(self.chips_row)
        form.addRow("Labels:", self._chips)
        self._chips_label = form.labelForField(self._chips)
        layout = QVBoxLayout(self)
        layout.addWidget(self.picture, 1)
        layout.addLayout(form)
        self.show_labels(None, [])

    def show_hit(self, hit: Hit | None) -> None:
        """Show a result now; `show_record` adds its dimensions and date when they arrive."""
        self.hit = hit
        self._pixmap = None
        self.loader.clear_queue()
        self.show_labels(None, [])
        if hit is None:
            self.picture.setText("Select a photo to see it here.")
            for label in self.fields.values():
                label.clear()
            return
        self.picture.setText("")
        self.fields["Name"].setText(os.path.basename(hit.path))
        self.fields["Folder"].setText(os.path.dirname(hit.path))
        self.fields["Score"].setText("—" if math.isnan(hit.score) else f"{hit.score:.3f}")
        self.fields["Date"].setText("")
        self.fields["Size"].setText("")
        self._pixmap = self.loader.pixmap(hit.image_id, hit.path)
        self._rescale()

    def show_record(self, record: ImageRecord | None) -> None:
        if record is None or self.hit is None or record.id != self.hit.image_id:
            return
        if record.width and record.height:
            self.fields["Size"].setText(f"{record.width} × {record.height} pixels, {file_size(record.size)}")
        else:
            self.fields["Size"].setText(file_size(record.size))
        self.fields["Date"].setText(photo_date(record.taken_at, record.mtime_ns))

    def show_labels(self, image_id: int | None, labels: Sequence[ImageLabel]) -> None:
        """Chips for the labels a photo carries (when they arrive for the photo still shown)."""
        if image_id is not None and (self.hit is None or self.hit.image_id != image_id):
            return  # the selection moved on
        for chip in self.chips:
            self.chips_row.removeWidget(chip)
            chip.deleteLater()
        self.chips = []
        for item in labels:
            if not item.carried:
                continue
            chip = QToolButton()
            chip.setText(f"{item.label} {item.probability:.0%}")
            chip.setToolTip(
                f"Label set “{item.set_name}”: {item.label}, {item.probability:.0%} likely. "
                "Click to show the photos with this label."
            )
            chip.setAutoRaise(False)
            chip.clicked.connect(lambda _=False, label=item.label: self.label_clicked.emit(label))
            self.chips_row.insertWidget(self.chips_row.count() - 1, chip)
            self.chips.append(chip)
        visible = bool(self.chips)
        self._chips.setVisible(visible)
        if self._chips_label is not None:
            self._chips_label.setVisible(visible)

    def _loaded(self, image_id: int) -> None:
        if self.hit is not None and image_id == self.hit.image_id:
            self._pixmap = self.loader.pixmap(image_id, self.hit.path)
            if self._pixmap is None and image_id in self.loader.failed:
                self.picture.setText("This photo cannot be read.")
            self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is None or self._pixmap.isNull():
            return
        ratio = self.devicePixelRatioF()
        target = self.picture.size() * ratio
        scaled = self._pixmap.scaled(target, Qt.AspectRatioMode.KeepAspectRatio,
                                     Qt.TransformationMode.SmoothTransformation)
        scaled.setDevicePixelRatio(ratio)
        self.picture.setPixmap(scaled)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._rescale()


def file_size(size: int) -> str:
    """Bytes as people read them: '2.4 MB', '85 kB'."""
    if size >= 1e9:
        return f"{size / 1e9:.1f} GB"
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.0f} kB"


def photo_date(taken_at: str | None, mtime_ns: int | None) -> str:
    """When a photo was taken (its EXIF date), else when its file last changed; '' if neither is known."""
    if taken_at:
        try:
            return f"{datetime.datetime.fromisoformat(taken_at):%Y-%m-%d %H:%M} (taken)"
        except ValueError:
            return f"{taken_at} (taken)"
    if mtime_ns is None:
        return ""
    return f"{datetime.datetime.fromtimestamp(mtime_ns / 1e9):%Y-%m-%d %H:%M} (file modified)"
