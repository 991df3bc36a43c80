"""Walking photo folders: which image files exist, with their size, times and inode.

Policy: hidden files and folders are skipped, and symbolic links are never
followed, so a link loop cannot trap the scan and nothing outside the folders
the user chose is read.
"""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ._imaging import supported_suffixes


@dataclass(frozen=True)
class FileStat:
    path: str
    size: int
    mtime_ns: int
    # An edit that restores the mtime still changes the ctime; a file replaced by a
    # rename has another inode.
    ctime_ns: int
    inode: int


ScanError = Callable[[str, str], None]
"""Called with (path, reason) for a folder or file that is there but could not be read."""


def is_candidate(name: str, suffixes: frozenset[str]) -> bool:
    """True for a visible file whose extension is an image format we read."""
    if name.startswith("."):
        return False
    return os.path.splitext(name)[1].lower() in suffixes


def scan(
    root: str, on_error: ScanError | None = None, on_other: Callable[[str], None] | None = None
) -> Iterator[FileStat]:
    """Every image file below root (recursively), in a stable order.

    A folder or file that is there but cannot be read (permissions, an I/O error)
    goes to on_error: its photos are not known to be gone. One deleted during the
    scan is simply not there. Every other visible file (a video, a document, a RAW
    file without the raw extra) goes to on_other, so it can be counted as skipped.
    """
    suffixes = supported_suffixes()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            if folder != root:
                continue  # deleted or replaced since its parent was listed
            if on_error is not None:
                on_error(folder, "cannot read folder: it is no longer there")
            continue
        except OSError as exc:
            if on_error is not None:
                on_error(folder, f"cannot read folder: {exc.strerror or exc}")
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_symlink():
                    continue
                if entry.is_dir(follow_symlinks=False):
                    subfolders.append(entry.path)
                elif entry.is_file(follow_symlinks=False) and is_candidate(entry.name, suffixes):
                    st = entry.stat(follow_symlinks=False)
                    # (Windows leaves st_ino 0 here; entry.inode() asks.)
                    inode = st.st_ino or entry.inode()
                    yield FileStat(entry.path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, inode)
                elif on_other is not None and entry.is_file(follow_symlinks=False):
                    on_other(entry.path)
            except FileNotFoundError:
                continue  # deleted between listing and stat
            except OSError as exc:
                if on_error is not None:
                    on_error(entry.path, f"cannot read: {exc.strerror or exc}")
        stack.extend(reversed(subfolders))


def stat_file(path: str) -> FileStat | None:
    """The current facts of one file, or None if it is gone or not a regular file."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    if not stat_mod.S_ISREG(st.st_mode):
        return None
    return FileStat(path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def is_gone(path: str) -> bool:
    """True if no file is at path any more; False if one is, or if that cannot be told
    (a folder on the way that cannot be read, an I/O error): its photo is then kept."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return not stat_mod.S_ISREG(st.st_mode)
