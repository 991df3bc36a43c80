"""Where clipdesk keeps its files, and how file paths are stored in the database."""

from __future__ import annotations

import os
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


def make_private_dir(path: Path) -> Path:
    """Create a folder readable only by the user (photos' metadata is private)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


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
    """A path fit to print: undecodable bytes shown as escapes rather than crashing."""
    return path.encode("utf-8", "backslashreplace").decode("utf-8")
