"""Library format upgrades: a version-1 library keeps every vector, path and folder, with a backup."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import apsw
import numpy as np
import pytest
import sqlite_vec

from clipdesk import _migrations as migrations
from clipdesk._errors import InternalError
from clipdesk._store import Store
from conftest import COLOUR_MODEL, CliRunner, run_json

V1 = Path(__file__).parent / "data" / "library-v1"


Contents = tuple[dict[str, np.ndarray], list[tuple[str, int]]]


def _raw(db: Path) -> apsw.Connection:
    conn = apsw.Connection(str(db))
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    return conn


def _contents(db: Path) -> Contents:
    """Every image's vector by path, and the folders with their image counts, read without clipdesk."""
    conn = _raw(db)
    try:
        vectors = {
            path: np.frombuffer(blob, dtype=np.float32).copy()
            for path, blob in conn.execute(
                "SELECT i.path, v.embedding FROM images i JOIN vectors v ON v.image_id = i.id"
            )
        }
        folders = list(
            conn.execute(
                "SELECT f.path, count(i.id) FROM folders f LEFT JOIN images i ON i.folder_id = f.id "
                "GROUP BY f.id ORDER BY f.path"
            )
        )
    finally:
        conn.close()
    return vectors, folders


def _assert_same(got: Contents, expected: Contents) -> None:
    assert got[1] == expected[1]
    assert got[0].keys() == expected[0].keys()
    for path, vector in expected[0].items():
        assert np.array_equal(got[0][path], vector), path


@pytest.fixture
def v1_library(tmp_path: Path) -> tuple[Path, Path]:
    """The checked-in version-1 library and its photos, moved under tmp_path as if they had always been there."""
    manifest = json.loads((V1 / "manifest.json").read_text())
    old_root, photos = manifest["root"], tmp_path / "photos"
    shutil.copytree(V1 / "photos", photos)
    for rel, facts in manifest["files"].items():
        os.utime(photos / rel, ns=(facts["mtime_ns"], facts["mtime_ns"]))
    db = tmp_path / "data" / "library.db"
    db.parent.mkdir()
    shutil.copy(V1 / "library.db", db)
    conn = apsw.Connection(str(db))  # plain SQL on the v1 file: only the path prefix changes
    with conn:
        for table in ("folders", "images"):
            conn.execute(f"UPDATE {table} SET path = ? || substr(path, ?)", (str(photos), len(old_root) + 1))
        conn.execute("UPDATE meta SET value = replace(value, ?, ?)", (old_root, str(photos)))
    conn.close()
    return db, photos


def test_the_checked_in_library_is_version_1() -> None:
    conn = apsw.Connection(str(V1 / "library.db"), flags=apsw.SQLITE_OPEN_READONLY)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()


def test_version_1_upgrades_with_every_vector_path_and_folder_and_a_backup(v1_library: tuple[Path, Path]) -> None:
    db, photos = v1_library
    before_vectors, before_folders = _contents(db)
    assert len(before_vectors) == 6

    with Store(db) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == migrations.LATEST
        folders = {f.path: f for f in store.folders()}
        # The 'stop watching' the user chose in version 1 survives, now in its own column.
        assert folders[str(photos / "archive")].watched is False
        assert folders[str(photos / "home")].watched is True
        assert store.unwatched_folders() == {str(photos / "archive")}
        assert store.meta("service.unwatched") is None

    _assert_same(_contents(db), (before_vectors, before_folders))

    backup = migrations.backup_path(db, 1)
    assert backup.name == "library.db.v1-backup"
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    kept = apsw.Connection(str(backup), flags=apsw.SQLITE_OPEN_READONLY)
    assert kept.execute("PRAGMA user_version").fetchone()[0] == 1
    kept.close()
    _assert_same(_contents(backup), (before_vectors, before_folders))


def test_index_after_the_upgrade_encodes_nothing(v1_library: tuple[Path, Path], cli: CliRunner) -> None:
    db, photos = v1_library
    for folder in ("home", "archive"):
        report = run_json(cli, "index", str(photos / folder), "--db", str(db), "--model", COLOUR_MODEL)
        assert isinstance(report, dict)
        assert report["encoded"] == 0 and report["indexed"] == 0 and report["removed"] == 0, report
        assert not report["failed"]
    hits = run_json(cli, "search", "red", "--db", str(db), "--model", COLOUR_MODEL, "-n", "2")
    assert isinstance(hits, list)
    assert {Path(h["path"]).name for h in hits} == {"red1.png", "red-copy.png"}


def test_a_second_open_neither_upgrades_nor_backs_up_again(v1_library: tuple[Path, Path]) -> None:
    db, _ = v1_library
    Store(db).close()
    backup = migrations.backup_path(db, 1)
    first = backup.stat().st_mtime_ns
    Store(db).close()
    assert backup.stat().st_mtime_ns == first
    assert [p.name for p in db.parent.iterdir() if "backup" in p.name] == [backup.name]


def test_a_failing_step_leaves_the_library_at_its_old_version(
    v1_library: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, _ = v1_library
    before = _contents(db)

    def broken(conn: apsw.Connection) -> None:
        conn.execute("ALTER TABLE folders ADD COLUMN half_done INTEGER")
        raise apsw.SQLError("the step failed half way")

    monkeypatch.setattr(migrations, "STEPS", (migrations.Step(2, "broken", broken),))
    with pytest.raises(InternalError, match="bug in clipdesk"):
        Store(db)
    conn = apsw.Connection(str(db))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    columns = [row[1] for row in conn.execute("PRAGMA table_info(folders)")]
    conn.close()
    assert "half_done" not in columns
    _assert_same(_contents(db), before)


def test_a_library_from_a_newer_clipdesk_is_refused_untouched(tmp_path: Path, cli: CliRunner) -> None:
    db = tmp_path / "library.db"
    Store(db).close()
    conn = apsw.Connection(str(db))
    conn.execute(f"PRAGMA user_version = {migrations.LATEST + 1}")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    before = db.read_bytes()
    result = cli("status", "--db", str(db), check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "newer clipdesk" in lines[0] and "rebuild" not in lines[0]
    assert db.read_bytes() == before
    assert not Path(f"{db}-wal").exists()


def test_a_new_library_is_created_at_the_latest_version(tmp_path: Path) -> None:
    with Store(tmp_path / "new.db") as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == migrations.LATEST
        assert store.folders() == []
    assert not list(tmp_path.glob("*backup*"))


def test_steps_are_numbered_one_after_another() -> None:
    assert [s.version for s in migrations.STEPS] == list(range(2, migrations.LATEST + 1))


def test_version_3_learns_ctime_and_inode_on_the_next_scan_without_encoding(
    v1_library: tuple[Path, Path], cli: CliRunner
) -> None:
    db, photos = v1_library

    def identities() -> dict[str, tuple[int | None, int | None]]:
        conn = _raw(db)
        try:
            return {p: (c, i) for p, c, i in conn.execute("SELECT path, ctime_ns, inode FROM images")}
        finally:
            conn.close()

    Store(db).close()
    assert set(identities().values()) == {(None, None)}  # unknown until the files are looked at
    for folder in ("home", "archive"):
        report = run_json(cli, "index", str(photos / folder), "--db", str(db), "--model", COLOUR_MODEL)
        assert isinstance(report, dict) and report["encoded"] == 0 and report["unchanged"] > 0
    for path, (ctime_ns, inode) in identities().items():
        st = os.stat(path)
        assert (ctime_ns, inode) == (st.st_ctime_ns, st.st_ino), path

    # From now on an edit that keeps size and mtime is seen.
    red = photos / "home" / "red1.png"
    before = red.stat()
    data = bytearray(red.read_bytes())
    data[-13] ^= 0xFF  # the last byte of the IDAT CRC: same size, different content
    red.write_bytes(bytes(data))
    os.utime(red, ns=(before.st_atime_ns, before.st_mtime_ns))
    report = run_json(cli, "index", str(photos / "home"), "--db", str(db), "--model", COLOUR_MODEL)
    assert isinstance(report, dict)
    assert report["indexed"] + len(report["failed"]) == 1, report


def test_version_4_reads_photo_facts_from_headers_without_decoding_or_encoding(
    v1_library: tuple[Path, Path], cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image, ImageFile

    from clipdesk._indexer import describe_missing

    db, photos = v1_library
    before = _contents(db)
    hidden = photos / "archive" / "yellow1.png"
    hidden.rename(hidden.with_suffix(".away"))  # as on an unplugged drive
    with Store(db) as store:
        assert store.count_undescribed() == 6  # nothing read at the upgrade itself

        def no_decoding(self: Image.Image) -> None:
            raise AssertionError("a header read decoded pixels")

        with monkeypatch.context() as patched:
            patched.setattr(Image.Image, "load", no_decoding)
            patched.setattr(ImageFile.ImageFile, "load", no_decoding)
            assert describe_missing(store) == 5
        assert store.count_undescribed() == 1  # the missing file is read on a later pass
        record = store.image_by_path(str(photos / "home" / "red1.png"))
        assert record is not None and record.facts is not None and record.facts.file_type == "png"
    _assert_same(_contents(db), before)

    hidden.with_suffix(".away").rename(hidden)
    listed = cli("list", "--type", "png", "--json", "--db", str(db))
    assert "reading the camera, place and file type of 1 photo " in listed.stderr
    assert len(json.loads(listed.stdout)) == 6
    _assert_same(_contents(db), before)
    report = run_json(cli, "index", "--db", str(db))
    assert isinstance(report, dict) and report["encoded"] == 0 and report["indexed"] == 0, report


def test_version_3_gets_fingerprints_from_its_files_without_encoding(
    v1_library: tuple[Path, Path], cli: CliRunner
) -> None:
    db, photos = v1_library
    conn = _raw(db)  # a library as format 3 left it
    with conn:
        for step in migrations.STEPS:
            if step.version <= 3:
                step.run(conn)
        conn.execute("PRAGMA user_version = 3")
    conn.close()
    before = _contents(db)

    def fingerprints() -> dict[str, tuple[int | None, float]]:
        conn = _raw(db)
        try:
            return {p: (h, at) for p, h, at in conn.execute("SELECT path, phash, indexed_at FROM images")}
        finally:
            conn.close()

    Store(db).close()
    upgraded = fingerprints()
    assert {h for h, _ in upgraded.values()} == {None}  # unknown until a photo's file is read

    result = run_json(cli, "duplicates", "--db", str(db))

    assert isinstance(result, dict)
    exact = sorted(sorted(g["paths"]) for g in result["groups"] if g["exact"])
    assert exact == [
        [str(photos / "archive" / "blue2.png"), str(photos / "home" / "blue1.png")],
        [str(photos / "home" / "red-copy.png"), str(photos / "home" / "red1.png")],
    ]
    filled = fingerprints()
    assert all(h is not None for h, _ in filled.values())
    # Nothing was encoded again: every vector and its date are as they were.
    assert {p: at for p, (_, at) in filled.items()} == {p: at for p, (_, at) in upgraded.items()}
    _assert_same(_contents(db), before)


def test_version_5_upgrades_to_label_sets_keeping_everything_with_a_backup(
    v1_library: tuple[Path, Path], cli: CliRunner
) -> None:
    db, photos = v1_library
    conn = _raw(db)  # a library as format 5 left it
    with conn:
        for step in migrations.STEPS:
            if step.version <= 5:
                step.run(conn)
        conn.execute("PRAGMA user_version = 5")
    conn.close()
    before = _contents(db)

    Store(db).close()

    _assert_same(_contents(db), before)
    backup = migrations.backup_path(db, 5)
    kept = apsw.Connection(str(backup), flags=apsw.SQLITE_OPEN_READONLY)
    assert kept.execute("PRAGMA user_version").fetchone()[0] == 5
    kept.close()
    _assert_same(_contents(backup), before)
    # Labels work at once, from the vectors the library already held.
    report = run_json(cli, "tag", "--labels", "red, blue, yellow", "--db", str(db))
    assert isinstance(report, dict) and report["labelled"] == 6, report
    listed = run_json(cli, "list", "--label", "red", "--db", str(db))
    assert isinstance(listed, list) and {Path(p["path"]).name for p in listed} >= {"red1.png"}
    index = run_json(cli, "index", "--db", str(db))
    assert isinstance(index, dict) and index["encoded"] == 0 and index["indexed"] == 0, index
    _assert_same(_contents(db), before)
