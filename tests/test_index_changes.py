"""Indexer.index_changes: what a watcher hands over, applied without scanning whole folders."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_photo
from watchutil import CountingEncoder

from clipdesk._indexer import Indexer
from clipdesk._store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "library.db") as s:
        yield s


def paths(store: Store) -> dict[str, int]:
    return {str(r[1]): int(r[0]) for r in store.conn.execute("SELECT id, path FROM images")}


def test_a_gone_folder_takes_its_photos_along(store: Store, photos: Path) -> None:
    indexer = Indexer(store, CountingEncoder())
    indexer.index([str(photos)])
    (photos / "trip" / "red3.jpg").unlink()
    (photos / "trip" / "green2.webp").unlink()
    (photos / "trip").rmdir()
    report = indexer.index_changes([], [str(photos / "trip")])
    assert report.removed == 2 and len(paths(store)) == 6 and store.integrity() == "ok"


def test_a_gone_path_that_is_back_is_kept(store: Store, photos: Path) -> None:
    indexer = Indexer(store, CountingEncoder())
    indexer.index([str(photos)])
    report = indexer.index_changes([], [str(photos / "red1.jpg"), str(photos / "trip")])
    assert report.removed == 0 and len(paths(store)) == 8


def test_a_move_reported_new_side_first_keeps_its_id(store: Store, photos: Path) -> None:
    encoder = CountingEncoder()
    indexer = Indexer(store, encoder)
    indexer.index([str(photos)])
    before, encoded = paths(store), encoder.count
    (photos / "blue2.bmp").rename(photos / "trip" / "blue2.bmp")
    report = Indexer(store, encoder).index_changes([str(photos / "trip" / "blue2.bmp")])
    assert report.moved == 1 and encoder.count == encoded
    assert paths(store)[str(photos / "trip" / "blue2.bmp")] == before[str(photos / "blue2.bmp")]
    # The old side, reported later, has nothing left to remove.
    assert Indexer(store, encoder).index_changes([], [str(photos / "blue2.bmp")]).removed == 0
    assert len(paths(store)) == 8


def test_a_copy_does_not_take_a_photo_from_an_unplugged_folder(
    store: Store, photos: Path, tmp_path: Path
) -> None:
    drive = tmp_path / "drive"
    make_photo(drive / "white.png", "white")
    encoder = CountingEncoder()
    Indexer(store, encoder).index([str(photos), str(drive)])
    kept = paths(store)[str(drive / "white.png")]
    (drive / "white.png").replace(tmp_path / "white-copy.png")
    drive.rmdir()  # the drive is gone, not its photo
    (tmp_path / "white-copy.png").replace(photos / "white.png")
    report = Indexer(store, encoder).index_changes([str(photos / "white.png")])
    assert report.moved == 0 and report.indexed == 1
    assert paths(store)[str(drive / "white.png")] == kept


def test_unknown_paths_are_ignored(store: Store, photos: Path, tmp_path: Path) -> None:
    indexer = Indexer(store, CountingEncoder())
    indexer.index([str(photos)])
    stray = make_photo(tmp_path / "elsewhere" / "x.png", "black")
    report = indexer.index_changes([str(stray)], [str(tmp_path / "elsewhere")])
    assert report.indexed == 0 and report.removed == 0 and len(paths(store)) == 8


def test_a_gone_folder_leaves_a_sibling_with_a_longer_name_alone(store: Store, photos: Path) -> None:
    make_photo(photos / "trip2" / "white.png", "white")
    make_photo(photos / "trip-b" / "black.png", "black")
    indexer = Indexer(store, CountingEncoder())
    indexer.index([str(photos)])
    for name in ["red3.jpg", "green2.webp"]:
        (photos / "trip" / name).unlink()
    (photos / "trip").rmdir()
    report = indexer.index_changes([], [str(photos / "trip") + os.sep])
    assert report.removed == 2
    assert {str(photos / "trip2" / "white.png"), str(photos / "trip-b" / "black.png")} <= set(paths(store))


def test_a_gone_folder_takes_photos_with_names_that_are_not_utf8(store: Store, photos: Path) -> None:
    odd = os.fsdecode(os.fsencode(str(photos / "trip")) + b"/caf\xe9.png")
    make_photo(Path(odd), "white")
    indexer = Indexer(store, CountingEncoder())
    indexer.index([str(photos)])
    assert len(paths(store)) == 9
    shutil.rmtree(photos / "trip")
    report = indexer.index_changes([], [str(photos / "trip")])
    assert report.removed == 3 and len(paths(store)) == 6


def scans_of_images(store: Store, statements: list[tuple[str, object]]) -> list[str]:
    """The statements whose query plan reads the whole images table rather than an index."""
    scans = []
    for sql, params in statements:
        plan = store.conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        if any(str(detail).startswith("SCAN") and " images" in f" {detail}" for *_, detail in plan):
            scans.append(sql)
    return scans


def test_a_change_is_looked_up_through_indexes_not_by_reading_the_library(
    store: Store, photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a change costs must not grow with the library: no query reads every image."""
    for i in range(60):
        make_photo(photos / "many" / f"{i:02d}.png", (i, 2 * i, 100), size=(8, 8))
    indexer = Indexer(store, CountingEncoder())
    indexer.index([str(photos)])
    make_photo(photos / "new" / "white.png", "white")  # new content: encoded
    shutil.copy(photos / "red1.jpg", photos / "new" / "red-copy.jpg")  # a copy: shares a vector
    (photos / "blue2.bmp").rename(photos / "new" / "blue2.bmp")  # a move
    (photos / "trip" / "green2.webp").unlink()  # a deletion
    statements: list[tuple[str, object]] = []
    rows_read = 0
    real_query = Store._query

    def recording(self: Store, sql: str, params: object = ()) -> list[tuple[object, ...]]:
        nonlocal rows_read
        statements.append((sql, params))
        rows = real_query(self, sql, params)
        rows_read += len(rows)
        return rows

    monkeypatch.setattr(Store, "_query", recording)
    report = indexer.index_changes(
        [str(photos / "new" / n) for n in ["white.png", "red-copy.jpg", "blue2.bmp"]],
        [str(photos / "blue2.bmp"), str(photos / "trip" / "green2.webp")],
    )
    monkeypatch.undo()
    assert (report.indexed, report.moved, report.removed, report.encoded) == (2, 1, 1, 1)
    assert statements and scans_of_images(store, statements) == []
    assert rows_read < 30  # the library holds 68 photos: a few lookups per changed path
