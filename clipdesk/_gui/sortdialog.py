"""Confirming "sort into folders": how many photos go where, and copy (default) or move."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QRadioButton, QVBoxLayout, QWidget

from .._sorting import folder_names


class SortDialog(QDialog):
    """Confirms a sort: how many photos go to which folder, and copy (default) or move."""

    def __init__(self, winners: Sequence[tuple[str, str]], destination: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sort into folders")
        counts = Counter(label for _, label in winners)
        # The folders sorting will really use: a label may need another name on disk.
        folders = folder_names(label for _, label in winners)
        lines = "\n".join(
            f"  {folders[label]}: {n} photo{'s' if n != 1 else ''}"
            + ("" if folders[label] == label else f" (label \u201c{label}\u201d)")
            for label, n in counts.most_common()
        )
        text = QLabel(
            f"Put {len(winners)} photos into one folder per label under\n{destination}:\n\n{lines}\n\n"
            "Existing files are never overwritten; a clash gets a new name."
        )
        text.setTextFormat(Qt.TextFormat.PlainText)  # a label such as "<b>" is text, not markup
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.copy_button = QRadioButton("Copy the photos (the originals stay where they are)")
        self.move_button = QRadioButton("Move the photos")
        self.copy_button.setChecked(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Sort")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for w in (text, self.copy_button, self.move_button, buttons):
            layout.addWidget(w)
