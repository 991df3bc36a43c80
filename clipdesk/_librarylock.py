"""Who is using a library: an advisory lock on `<library>.lock`, beside the library file.

A running service (`clipdesk watch`, the app) holds it shared for as long as it
runs; `clipdesk rebuild` needs it exclusively, so it refuses instead of moving
the file from under a process that would go on writing into the moved file.

POSIX uses `flock`, which the kernel drops when a process dies, so a crash
never leaves the library locked. Windows has no shared `flock`; there the lock
is a no-op, and the operating system itself refuses to rename a database file
another process has open, which `rebuild` reports the same way.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ._errors import ClipdeskError
from ._paths import display


class LibraryInUse(ClipdeskError):
    """The library is open in a running clipdesk watch or app."""


def in_use_message(db: Path) -> str:
    return (
        f"The library {display(str(db))} is open in `clipdesk watch` or the app; "
        "close it first."
    )


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


class LibraryLock:
    """The lock of one library file; use from one thread."""

    def __init__(self, db: Path) -> None:
        self.db = Path(db)
        self._fd: int | None = None

    def _open(self) -> int | None:
        if str(self.db) == ":memory:" or sys.platform == "win32":
            return None
        try:
            self.db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            return os.open(lock_path(self.db), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            # A read-only folder: nobody can rebuild or replace the library there either.
            return None

    def acquire_shared(self, timeout: float = 10.0) -> None:
        """Hold the lock shared (a service runs); waits while a rebuild holds it."""
        fd = self._open()
        if fd is None:
            return
        import fcntl  # POSIX only (see the module docstring)

        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise LibraryInUse(
                        f"The library {display(str(self.db))} is being rebuilt; try again in a moment."
                    ) from None
                time.sleep(0.05)
        self._fd = fd

    def try_exclusive(self) -> bool:
        """Hold the lock alone (nobody else uses the library); False if a service holds it."""
        fd = self._open()
        if fd is None:
            return True
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


@contextlib.contextmanager
def exclusive(db: Path) -> Iterator[None]:
    """The library to ourselves, or LibraryInUse with one line to show."""
    lock = LibraryLock(db)
    if not lock.try_exclusive():
        raise LibraryInUse(in_use_message(db))
    try:
        yield
    finally:
        lock.release()


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a file, to notice when another file takes its place; None if gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
