"""Help ▸ Open log folder and Help ▸ Copy diagnostics: what a bug report needs, one click away."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QGuiApplication

from .._diagnostics import collect
from .._logfile import log_path
from .._paths import make_private_dir
from . import desktop

if TYPE_CHECKING:
    from .._library import LibraryOptions
    from .mainwindow import MainWindow


def open_log_folder(window: MainWindow) -> None:
    """Show the folder holding the log and crash traces in the file manager."""
    folder = log_path().parent
    try:
        make_private_dir(folder)
    except OSError as exc:
        window.show_error(f"The log folder {folder} cannot be created ({exc.strerror or exc}).")
        return
    if not desktop.open_file(str(folder)):
        window.show_error(f"No file manager could show {folder}.")


def diagnostics_text(options: LibraryOptions) -> str:
    """The report `clipdesk doctor` prints, for this window's library, model and device (any thread)."""
    return collect(
        Path(options.db_path), options.model or None, device=options.device,
        # Importing torch only for a report would stall it; once the model is loaded it is free.
        probe_device="torch" in sys.modules, check_display=False,
    ).as_text()


def copy_diagnostics(window: MainWindow, options: LibraryOptions) -> None:
    """Collect the report off the GUI thread (it reads the library), then put it on the clipboard."""
    window.statusBar().showMessage("Collecting diagnostics…")

    def copied(text: object) -> None:
        QGuiApplication.clipboard().setText(str(text))
        window.statusBar().showMessage("Diagnostics copied: paste them into your bug report.", 8000)

    def failed(exc: BaseException) -> None:
        window.show_error(f"The diagnostics could not be collected ({exc}).")

    window.worker.run(lambda: diagnostics_text(options), copied, failed)
