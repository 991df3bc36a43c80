"""clipdesk's log file: where internal errors are written in full for a bug report."""

from __future__ import annotations

import faulthandler
import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import Any

from ._paths import data_dir, printable

LOG_NAME = "clipdesk.log"
CRASH_NAME = "crash.log"
_MAX_BYTES = 1_000_000
_KEEP = 3
_ECHO = "clipdesk-verbose"


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


def crash_log_path() -> Path:
    """Where a crash in native code (Qt, torch, SQLite) leaves the Python stack of every thread."""
    return log_path().with_name(CRASH_NAME)


def _enable_crash_traces(path: Path) -> None:
    # faulthandler keeps the file open for the process's life and writes to it from the
    # signal handler: the one record a segfault or an abort leaves behind.
    if faulthandler.is_enabled():
        return
    try:
        # Each start adds a line: begin afresh once the file is big, as the rotating log does.
        fresh = path.exists() and path.stat().st_size > _MAX_BYTES
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND | (os.O_TRUNC if fresh else 0), 0o600)
        stream = open(fd, "a", encoding="utf-8")  # noqa: SIM115 (open for the whole process)
    except OSError:
        return
    stream.write(f"--- clipdesk process {os.getpid()} ({' '.join(sys.argv[1:2]) or 'started'}): "
                 "a crash below this line has its threads' stacks ---\n")
    stream.flush()
    faulthandler.enable(file=stream, all_threads=True)


def install(level: int = logging.INFO, *, verbose: bool = False) -> Path | None:
    """Send this process's log records to the log file too (and with verbose, every record to
    stderr); enable crash traces beside it. None if the log cannot be written."""
    root = logging.getLogger()
    if verbose:
        # clipdesk's own debug records; other libraries' stay at INFO (Pillow's are a flood).
        level = logging.DEBUG
        logging.getLogger("clipdesk").setLevel(logging.DEBUG)
        if not any(h.get_name() == _ECHO for h in root.handlers):
            echo = logging.StreamHandler(sys.stderr)
            echo.set_name(_ECHO)
            echo.setFormatter(PrintableFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                                 datefmt="%H:%M:%S"))
            root.addHandler(echo)
    path = log_path()
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
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    _enable_crash_traces(crash_log_path())
    return path
