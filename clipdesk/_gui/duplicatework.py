"""What the Duplicates view asks of the library and the disk, off the GUI thread.

`fingerprint_older` runs on the library's writer (the service's indexing
thread), `scan_library` on its interactive lane (it only reads), `trash_files`
on the file-work thread. Photos only ever go to the system
trash, never deleted outright: where there is no trash for a file, it stays.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QFile

from .._duplicates import fill_missing
from .._library import Library
from .._service import WriteContext
from .._store import PhotoFacts
from .labelwork import unsafe_among

# None: the file is in the trash now; otherwise why it stayed where it is.
TrashFn = Callable[[str], str | None]

NO_TRASH = "there is no trash for the drive it is on, so it was left where it is"


@dataclass(frozen=True)
class Copy:
    """One photo of a duplicate group, with what the view shows about it."""

    photo: PhotoFacts
    size: int | None  # bytes on disk; None: the file is gone
    mtime_ns: int | None

    @property
    def path(self) -> str:
        return self.photo.path


@dataclass(frozen=True)
class Group:
    """Photos of one picture, the suggested one to keep first."""

    copies: tuple[Copy, ...]
    exact: bool
    min_similarity: float
    keep_reason: str


@dataclass(frozen=True)
class Scan:
    groups: tuple[Group, ...]
    # Photos with no fingerprint (unreadable, or fingerprinting was stopped): only
    # identical copies of them can be found.
    unfingerprinted: int = 0
    hidden: frozenset[int] = frozenset()  # image ids safe search hides: no thumbnail for them


class _Stopped(Exception):
    """The user stopped fingerprinting (raised between batches, after a commit)."""


def fingerprint_older(
    library: Library, task: WriteContext, progress: Callable[[int, int], None], cancel: threading.Event
) -> bool:
    """Fingerprint the photos indexed before fingerprints were kept (writer thread), a
    batch at a time; False if stopped (what was done is kept)."""

    def step(done: int, total: int) -> None:
        progress(done, total)
        if cancel.is_set() or task.cancel.is_set():
            raise _Stopped
        task.between_batches()

    try:
        fill_missing(library.store, workers=library.options.workers or 2, progress=step)
    except _Stopped:
        return False
    return True


def _stat(path: str) -> tuple[int | None, int | None]:
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    return st.st_size, st.st_mtime_ns


def scan_library(library: Library, threshold: float | None = None) -> Scan:
    """The library's duplicate groups with each file's size and date, and which photos
    safe search hides (interactive lane)."""
    found = library.duplicates(threshold)
    groups = tuple(
        Group(
            tuple(Copy(p, *_stat(p.path)) for p in g.photos),
            g.exact,
            g.min_similarity,
            g.keep_reason,
        )
        for g in found
    )
    ids = [c.photo.id for g in groups for c in g.copies]
    return Scan(groups, len(library.store.missing_phashes()), frozenset(unsafe_among(library, ids)))


def system_trash(path: str) -> str | None:
    """Move one file to the system trash with Qt (any thread); None when it is there."""
    if not os.path.lexists(path):
        return "it is no longer there"
    moved = QFile.moveToTrash(path)
    # PySide answers a bool, or (bool, path in the trash), depending on its version.
    ok = moved[0] if isinstance(moved, tuple) else bool(moved)
    return None if ok else NO_TRASH


@dataclass(frozen=True)
class Removal:
    """One group's part of a clean-up: the photos kept and those to move to the trash."""

    keep: tuple[str, ...]
    remove: tuple[Copy, ...]


@dataclass
class TrashReport:
    moved: list[str] = field(default_factory=list)
    freed: int = 0  # bytes
    failed: list[tuple[str, str]] = field(default_factory=list)  # path, why it stayed


def trash_files(plan: Sequence[Removal], trash: TrashFn, stop: Callable[[], bool]) -> TrashReport:
    """Move each group's unwanted copies to the trash (file-work thread), one by one.

    A group whose kept photo is no longer on disk is left alone: its copies may now be
    the only ones. One file that cannot go never stops the others; stop() ends early.
    """
    report = TrashReport()
    for removal in plan:
        if not any(os.path.isfile(p) for p in removal.keep):
            why = "the photo kept from its group is no longer there, so this copy was left"
            report.failed.extend((c.path, why) for c in removal.remove)
            continue
        for copy in removal.remove:
            if stop():
                return report  # the window is closing: what is done stays done
            try:
                problem = trash(copy.path)
            except OSError as exc:
                problem = exc.strerror or str(exc)
            if problem is None:
                report.moved.append(copy.path)
                report.freed += copy.size or 0
            else:
                report.failed.append((copy.path, problem))
    return report
