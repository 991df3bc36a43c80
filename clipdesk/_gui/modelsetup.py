"""The first-run window when there is no model yet: what is missing, in the app's own words,
and the two ways out (download it, or use a model folder the user already has).

Non-modal: browsing, folders and settings keep working behind it. Folders added meanwhile
are remembered by the library and indexed as soon as a model loads.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFileDialog, QLabel, QPushButton, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from .mainwindow import MainWindow

TITLE = "clipdesk needs its model"
DOWNLOAD = "Download the model (about 600 MB)"
USE_FOLDER = "Use a model folder…"


def plain_reason(message: str) -> str:
    """The first sentence of a model error without what only a terminal user can act on
    (command-line options, environment variables, exception names)."""
    first = re.split(r"(?<=[.!?])\s", message.strip(), maxsplit=1)[0]
    first = re.sub(r"\s*\([^)]*\)", "", first).strip()  # "(HF_HUB_OFFLINE is set)", "(ConnectionError)"
    if not first or "--" in first or re.search(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b", first):
        return "The model could not be loaded."
    return first if first.endswith((".", "!", "?")) else first + "."


def explanation(message: str) -> str:
    """What the window says: why there is no model, what it is for, and that nothing is lost."""
    return (
        f"{plain_reason(message)}\n\n"
        "clipdesk finds your photos with a model that runs on this computer. It is downloaded once "
        "(about 600 MB); after that clipdesk works offline and nothing leaves your computer.\n\n"
        "You can also use a model folder you already have. Folders you add now are remembered, and "
        "their photos are indexed as soon as the model is here; until then you can browse them."
    )


class ModelSetupDialog(QDialog):
    """Offers the download and a model folder; the window it belongs to does the work."""

    def __init__(self, window: MainWindow, message: str) -> None:
        super().__init__(window)
        self.window_ = window
        self.setWindowTitle(TITLE)
        self.setModal(False)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setMinimumWidth(460)
        buttons = QDialogButtonBox()
        self.download_button = QPushButton(DOWNLOAD)
        self.folder_button = QPushButton(USE_FOLDER)
        buttons.addButton(self.download_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.folder_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.download_button.clicked.connect(self.download)
        self.folder_button.clicked.connect(self.choose_folder)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        heading = QLabel(f"<b>{TITLE}</b>")
        layout.addWidget(heading)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.update_message(message)

    def update_message(self, message: str) -> None:
        self.text.setText(explanation(message))

    def download(self) -> None:
        """Start the service again: it downloads the model, with its progress in the status bar."""
        self.close()
        self.window_.retry_model()

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder holding a CLIP model")
        if folder:
            self.close()
            self.window_.use_model_folder(folder)


def offer(window: MainWindow, message: str) -> ModelSetupDialog:
    """Show the window (once: a second failure updates the one already open)."""
    dialog = window.findChild(ModelSetupDialog)
    if dialog is None:
        dialog = ModelSetupDialog(window, message)
    else:
        dialog.update_message(message)
    dialog.show()
    dialog.raise_()
    return dialog


def dismiss(window: QWidget) -> None:
    """The model is ready: the window has nothing left to offer."""
    dialog = window.findChild(ModelSetupDialog)
    if dialog is not None:
        dialog.close()
