"""clipdesk's log file: where internal errors are written in full for a bug report."""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path
from typing import Any

from ._paths import data_dir, printable

LOG_NAME = "clipdesk.log"
_MAX_BYTES = 1_000_000
_KEEP = 3


def log_path() -> Path:
    """The log file: in the data folder when CLIPDESK_DATA_DIR is set (tests), else the OS's log folder."""
    if os.environ.get("CLIPDESK_DATA_DIR"):
        return data_dir() / LOG_NAME
    import platformdirs

    return Path(platformdirs.user_log_dir("clipdesk", appauthor=False)) / LOG_NAME


class PrintableFormatter(logging.Formatter):
    """Log records with control characters escaped (see paths.printable).

    A log read with `tail` or `less` is a terminal too: a file name in a message
    must not be able to write escape sequences there.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        # A traceback keeps its lines; what is inside each line is escaped.
        return "\n".join(printable(line) for line in super().formatException(ei).splitlines())


class _PrivateRotatingFile(logging.handlers.RotatingFileHandler):
    """A rotating log readable by its owner only: it names the user's photos."""

    def _open(self):  # type: ignore[no-untyped-def]
        fd = os.open(self.baseFilename, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)


def install(level: int = logging.INFO) -> Path | None:
    """Send this process's log records to the log file too; None if it cannot be written."""
    path = log_path()
    root = logging.getLogger()
    if any(getattr(h, "baseFilename", None) == str(path) for h in root.handlers):
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler = _PrivateRotatingFile(
            path, maxBytes=_MAX_BYTES, backupCount=_KEEP, encoding="utf-8", errors="backslashreplace"
        )
    except OSError:
        # A read-only home: clipdesk still works, without a log file. The null handler
        # keeps Python's last-resort handler from printing tracebacks on the terminal.
        root.addHandler(logging.NullHandler())
        return None
    handler.setLevel(level)
    handler.setFormatter(
        PrintableFormatter("%(asctime)s %(process)d %(threadName)s %(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(handler)
    if root.level > level or root.level == logging.NOTSET:
        root.setLevel(level)
    return path
