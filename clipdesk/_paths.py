"""Where clipdesk keeps its files, and how file paths are stored in the database."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

APP_NAME = "clipdesk"


def data_dir() -> Path:
    """The per-user data folder (overridable with CLIPDESK_DATA_DIR, used by tests)."""
    override = os.environ.get("CLIPDESK_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_db_path() -> Path:
    return data_dir() / "library.db"


def cache_dir() -> Path:
    override = os.environ.get("CLIPDESK_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def thumbnail_dir() -> Path:
    """The app's thumbnail cache (safe to delete: thumbnails are made again when needed)."""
    return cache_dir() / "thumbnails"


def make_private_dir(path: Path) -> Path:
    """Create a folder readable only by the user (photos' metadata is private)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


# -- which folder holds a path ---------------------------------------------------
# One rule for "is this path in that folder", used everywhere: compared as text
# (the library stores resolved paths), in the platform's case rules (os.path.normcase:
# case-blind on Windows, exact on POSIX), trailing separators ignored, so /a/bc is
# not inside /a/b and every path is inside the root.


def _key(path: str) -> str:
    # A root ("/", "C:\\") trims to "" or "C:"; the separator added back below restores it.
    return os.path.normcase(path).rstrip(os.sep)


def is_within(path: str, folder: str) -> bool:
    """True if path is folder itself or lies anywhere below it."""
    if not path or not folder:
        return False
    f = _key(folder)
    p = os.path.normcase(path)
    return p.startswith(f + os.sep) or p.rstrip(os.sep) == f


def folder_holding(path: str, folders: Iterable[str]) -> str | None:
    """The deepest of folders that holds path (itself or an ancestor), or None."""
    best: str | None = None
    best_len = -1
    for folder in folders:
        if is_within(path, folder) and len(_key(folder)) > best_len:
            best, best_len = folder, len(_key(folder))
    return best


class FolderSet:
    """Many folders to test many paths against: each test costs the path's depth, not the set's size."""

    def __init__(self, folders: Iterable[str]) -> None:
        self._keys = {_key(f): f for f in folders if f}

    def holds(self, path: str) -> bool:
        """True if path is one of the folders or lies below one of them."""
        return self.holder(path) is not None

    def holder(self, path: str) -> str | None:
        """The deepest of the folders that is path or an ancestor of it, or None."""
        if not path:
            return None
        key = _key(path)
        while True:
            if key in self._keys:
                return self._keys[key]
            parent, sep, _ = key.rpartition(os.sep)
            if not sep:
                return None
            key = parent


def to_db(path: str) -> str | bytes:
    """A path as stored: text where it is valid UTF-8, else its raw bytes.

    File names on Linux may be any bytes; SQLite text must be UTF-8, so such
    names are kept as BLOBs in the same column and still compare exactly.
    """
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


def from_db(value: str | bytes) -> str:
    """Inverse of to_db."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


def display(path: str) -> str:
    """A path fit to encode (JSON, messages): undecodable bytes shown as escapes rather than crashing."""
    return path.encode("utf-8", "backslashreplace").decode("utf-8")


def _control_escapes() -> dict[int, str]:
    # C0, DEL and C1 can move the cursor, erase lines or (OSC 52) write the
    # clipboard; line and paragraph separators and bidi overrides can fake a
    # line or reorder what is shown. Each becomes a visible escape, like
    # `ls` and git's core.quotePath do.
    table = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
    table.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})
    for c in (0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)):
        table[c] = f"\\u{c:04x}"
    return table


_CONTROL_ESCAPES = _control_escapes()


def printable(text: str) -> str:
    """Text fit for a terminal: control characters and undecodable bytes as visible escapes.

    The one rule for every human-readable line clipdesk prints: a file name
    cannot then write escape sequences or split itself over two lines.
    Same as display() for ordinary names, so both show a name alike.
    """
    return display(text).translate(_CONTROL_ESCAPES)
