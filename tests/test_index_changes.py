"""Indexer.index_changes: what a watcher hands over, applied without scanning whole folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_photo
from watchutil import CountingEncoder

from clipdesk.indexer import Indexer
from clipdesk.store import Store


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
