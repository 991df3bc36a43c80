"""Who uses a library: shared for services, exclusive for rebuild; a replaced file is noticed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from clipdesk._librarylock import LibraryInUse, LibraryLock, exclusive, file_identity

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")


def test_services_share_the_library_and_rebuild_waits_for_them(tmp_path: Path) -> None:
    db = tmp_path / "library.db"
    app, watch = LibraryLock(db), LibraryLock(db)
    app.acquire_shared()
    watch.acquire_shared()  # the app and `clipdesk watch` together
    with pytest.raises(LibraryInUse, match="close it first"), exclusive(db):
        pass
    app.release()
    with pytest.raises(LibraryInUse), exclusive(db):
        pass
    watch.release()
    with exclusive(db):  # nobody left
        late = LibraryLock(db)
        with pytest.raises(LibraryInUse, match="being rebuilt"):
            late.acquire_shared(timeout=0.1)
    assert os.stat(db.with_name("library.db.lock")).st_mode & 0o077 == 0


def test_file_identity_changes_when_another_file_takes_the_place(tmp_path: Path) -> None:
    db, other = tmp_path / "library.db", tmp_path / "other.db"
    db.write_bytes(b"a")
    other.write_bytes(b"b")
    before = file_identity(db)
    assert before is not None and file_identity(db) == before
    os.replace(other, db)
    assert file_identity(db) != before
    db.unlink()
    assert file_identity(db) is None


def test_rebuild_refuses_while_a_command_has_the_library_open(tmp_path: Path) -> None:
    from clipdesk._library import Library, LibraryOptions, rebuild

    db = tmp_path / "library.db"
    with Library(LibraryOptions(db_path=db)):  # a `clipdesk index` run, say
        with pytest.raises(LibraryInUse, match="close it first"):
            rebuild(db)
        assert db.exists()
    assert rebuild(db) is not None  # closed: now it may
