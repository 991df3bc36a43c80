"""Starting the desktop app: `clipdesk gui` (or `clipdesk-gui`), and its screenshot mode.

Imports only Qt and the light parts of the core: torch loads later, on the
service's threads, when the model is first needed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import ClipdeskError

if TYPE_CHECKING:
    from PySide6.QtGui import QGuiApplication, QPixmap

    from .mainwindow import MainWindow
    from .filterstate import FilterInputs

SCREENSHOT_TIMEOUT_S = 180.0


def run(args: argparse.Namespace) -> int:
    """Open the window; returns the exit status. Called by `clipdesk gui` (whose options cli.py defines)."""
    from . import displaycheck

    # Qt aborts the process without a display or with its platform libraries missing: look first.
    reason = displaycheck.problem()
    if reason:
        raise ClipdeskError(reason)
    try:
        from PySide6.QtCore import QSettings, Qt, QTimer
        from PySide6.QtGui import QGuiApplication
        from PySide6.QtWidgets import QApplication
    except ImportError as exc:
        missing = displaycheck.missing_from_error(str(exc))
        if missing:
            raise ClipdeskError(displaycheck.missing_libraries_message(missing)) from None
        raise

    from .._library import LibraryOptions
    from .mainwindow import MainWindow

    try:
        width, height = (int(v) for v in str(args.size).lower().split("x"))
    except ValueError:
        raise ClipdeskError(f"--size takes WIDTHxHEIGHT, e.g. 1280x800, not {args.size}.") from None
    if args.classify and not (args.labels or args.preset):
        raise ClipdeskError("--classify needs --labels 'a,b,…' or --preset NAME.")

    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0]])
    identify(app)

    options = LibraryOptions(
        db_path=Path(args.db), model=args.model, device=args.device,
        allow_pickle=bool(getattr(args, "allow_pickle", False)),
    )
    qsettings = None
    scratch = None
    if args.screenshot:
        # A picture must not depend on (or change) the user's own preferences.
        scratch = tempfile.TemporaryDirectory(prefix="clipdesk-shot-")
        qsettings = QSettings(str(Path(scratch.name) / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(options, qsettings=qsettings)
    opening_filters = _filter_inputs(args)
    if opening_filters is not None:
        window.filter_bar.set_inputs(opening_filters)
    window.resize(width, height)
    window.show()
    _report_bugs_in(window)
    # Ctrl-C in the terminal, or SIGTERM at logout, closes the window like the user would, so
    # indexing stops cleanly. Python only sees signals between bytecodes, hence the idle tick.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: window.close())
    tick = QTimer(window, interval=300)
    tick.timeout.connect(lambda: None)
    tick.start()

    # Folders named on the command line (the desktop launcher's %F) are added and shown.
    folders = [os.path.abspath(f) for f in (*args.add, *getattr(args, "folders", ()))]
    for folder in folders:
        window.add_folder(folder)
    if folders:
        window.folders_dock.show()
        window.folders_dock.raise_()
    if args.query:
        window.search_box.setText(args.query)
        window.run_search()
    if args.classify:
        window.classify_dock.show()
        window.classify_dock.raise_()
        if args.preset:
            window.classify_panel.use_preset(args.preset)
        else:
            window.classify_panel.labels_edit.setText(args.labels)
        window.classify_panel.add_files(args.classify)

    status = 0
    if args.screenshot:
        target: Path = args.screenshot
        started = time.monotonic()
        calm = [0]

        def poll() -> None:
            nonlocal status
            calm[0] = calm[0] + 1 if window.is_idle() else 0
            timed_out = time.monotonic() - started > SCREENSHOT_TIMEOUT_S
            if calm[0] < 3 and not timed_out:
                return
            timer.stop()
            if timed_out:
                print("clipdesk: the window did not become idle in time; saving it as it is.", file=sys.stderr)
                status = 1
            if window.view.currentIndex().isValid() is False and window.model.rowCount():
                window.view.setCurrentIndex(window.model.index(0, 0))
            QTimer.singleShot(300, save)

        def save() -> None:
            nonlocal status
            if window.preview.loader.pending:
                QTimer.singleShot(200, save)
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            if not _picture(window).save(str(target)):
                print(f"clipdesk: could not write {target}", file=sys.stderr)
                status = 1
            else:
                print(f"Saved {target}")
            if window.last_error:
                print(f"clipdesk: the window showed: {window.last_error}", file=sys.stderr)
            window.close()

        timer = QTimer(window, interval=200)
        timer.timeout.connect(poll)
        timer.start()
    code = app.exec()
    if scratch is not None:
        scratch.cleanup()
    return status or code


def _picture(window: MainWindow) -> QPixmap:
    """The window, with the first-run model window over it where that is open (as a user sees them)."""
    from PySide6.QtGui import QColor, QPainter

    from .modelsetup import ModelSetupDialog

    picture = window.grab()
    dialog = window.findChild(ModelSetupDialog)
    if dialog is not None and dialog.isVisible():
        over = dialog.grab()
        painter = QPainter(picture)
        ratio = picture.devicePixelRatio() or 1.0
        size = picture.size() / ratio
        x, y = int((size.width() - over.width()) / 2), int((size.height() - over.height()) / 3)
        width, height = int(over.width() / (over.devicePixelRatio() or 1.0)), int(over.height() / (over.devicePixelRatio() or 1.0))
        # A grab has no window frame: a shadow and an edge show it is a window of its own.
        painter.fillRect(x + 4, y + 4, width, height, QColor(0, 0, 0, 60))
        painter.drawPixmap(x, y, over)
        painter.setPen(QColor(0, 0, 0, 140))
        painter.drawRect(x - 1, y - 1, width + 1, height + 1)
        painter.end()
    return picture


def identify(app: QGuiApplication) -> None:
    """Give the application its names, desktop id (how desktops match windows to the launcher) and icon."""
    from PySide6.QtGui import QGuiApplication, QIcon

    from .._desktopentry import APP_ID, svg_icon
    from .settings import APPLICATION, ORGANISATION

    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("clipdesk")
    QGuiApplication.setDesktopFileName(APP_ID)
    app.setWindowIcon(QIcon(str(svg_icon())))

def _filter_inputs(args: argparse.Namespace) -> FilterInputs | None:
    """The filter row asked for by --after, --before, --in, --type, --camera, --orientation, if any."""
    from .._filters import parse_types
    from .._library import real_path
    from .filterstate import FilterInputs

    folders = tuple(real_path(f) for f in getattr(args, "in_folders", []))
    types = parse_types(getattr(args, "types", []))
    inputs = FilterInputs(
        after=getattr(args, "after", None) or "", before=getattr(args, "before", None) or "",
        folders=folders, types=types, camera=getattr(args, "camera", None) or "",
        orientation=getattr(args, "orientation", None) or "",
    )
    return None if inputs.is_empty() else inputs


def _report_bugs_in(window: object) -> None:
    """An unexpected exception in a slot is printed and shown in the window; the app goes on."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: object) -> None:
        previous(kind, exc, tb)  # type: ignore[arg-type]
        show = getattr(window, "show_error", None)
        if show is not None and not isinstance(exc, KeyboardInterrupt):
            with contextlib.suppress(RuntimeError):  # the window is already gone
                show(f"Something went wrong ({kind.__name__}: {exc}). Please report it; "
                     "clipdesk carries on.")

    sys.excepthook = hook


def main(argv: Sequence[str] | None = None) -> int:
    """The `clipdesk-gui` launcher: the same as `clipdesk gui`."""
    from .._cli import main as cli_main

    return cli_main(["gui", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
