"""Helpers shared by the GUI tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QWidget

from clipdesk._gui.mainwindow import MainWindow
from clipdesk._library import Library, LibraryOptions
from clipdesk._testing.colours import PALETTE, ColourEncoder

COLOUR_MODEL = ColourEncoder.model_id
WAIT_MS = 20_000  # a bound, not a sleep: waits end as soon as the condition holds


def photo(path: Path, colour: str, size: tuple[int, int] = (64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, PALETTE[colour]).save(path)
    return path


def index(db_path: Path, folder: Path) -> None:
    with Library(LibraryOptions(db_path=db_path, model=COLOUR_MODEL)) as library:
        library.index([str(folder)])


def colour_of(path: str) -> str:
    return "".join(c for c in os.path.basename(path).split(".")[0] if c.isalpha())


def drop(widget: QWidget, paths: list[Path]) -> None:
    """What a drop of these files from a file manager delivers to the widget."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(event)


def wait_idle(qtbot, window: MainWindow, timeout: int = WAIT_MS) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(window.is_idle, timeout=timeout)


def row_paths(window: MainWindow) -> list[str]:
    return [h.path for h in window.model.hits()]
