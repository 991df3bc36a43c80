"""The status bar's indexing and download progress: what, how far, how fast, how long; pause."""

from __future__ import annotations

import os

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from .._events import ModelDownloading, Progress


def duration(seconds: float) -> str:
    """A rough time left: '40 s', '12 min', '1.5 h'."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


class ProgressDisplay(QWidget):
    """Hidden when nothing runs; shown by indexing progress or a model download."""

    pause_toggled = Signal(bool)  # True: the user asked to pause

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(220)
        self.bar.setTextVisible(True)
        self.bar.setFormat("%v / %m")
        self.pause_button = QToolButton()
        self.pause_button.setText("Pause")
        self.pause_button.setToolTip("Pause or resume indexing")
        self.pause_button.clicked.connect(self._toggle)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.label, self.bar, self.pause_button):
            layout.addWidget(widget)
        self.hide()

    def show_indexing(self, event: Progress) -> None:
        total = max(event.total, event.done, 1)
        self.bar.setRange(0, total)
        self.bar.setValue(event.done)
        self.bar.setFormat("%v / %m")
        parts = [f"Indexing {os.path.basename(event.folder or '') or 'photos'}"]
        if self.paused:
            parts.append("paused")
        elif event.rate > 0:
            parts.append(f"{event.rate:.1f} photos/s")
            if event.done < total:
                parts.append(duration((total - event.done) / event.rate) + " left")
        if event.failed:
            parts.append(f"{event.failed} skipped")
        self.label.setText(" · ".join(parts))
        self.pause_button.show()
        self.show()

    def show_download(self, event: ModelDownloading) -> None:
        self.label.setText("Downloading the model")
        self.bar.setRange(0, max(1, event.total))
        self.bar.setValue(event.done)
        self.bar.setFormat("%p%")
        self.pause_button.hide()  # the download cannot be paused
        self.show()

    def finish(self) -> None:
        """A piece of work is done (progress events are throttled, so the last may be short)."""
        if not self.isHidden():
            self.bar.setValue(self.bar.maximum())

    @property
    def paused(self) -> bool:
        return self.pause_button.text() == "Resume"

    def _toggle(self) -> None:
        pause = not self.paused
        self.pause_button.setText("Resume" if pause else "Pause")
        if pause:
            self.label.setText("Paused")
        self.pause_toggled.emit(pause)
