"""Incremental indexing: only new or changed files are encoded; moves keep their vectors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from clipdesk._library import Library, LibraryOptions
from clipdesk._testing.colours import ColourEncoder
from conftest import make_photo


class CountingEncoder(ColourEncoder):
    """The colour encoder, counting how many images reach the model."""

    def __init__(self) -> None:
        self.encoded = 0

    def encode_pixels(self, pixels):  # type: ignore[no-untyped-def]
        self.encoded += len(pixels)
        return super().encode_pixels(pixels)


@pytest.fixture
def library(db_path: Path):  # type: ignore[no-untyped-def]
    encoder = CountingEncoder()
    with Library(LibraryOptions(db_path, model=encoder.model_id), encoder=encoder) as lib:
        yield lib


def paths_in(library: Library) -> list[str]:
    rows = library.store.conn.execute("SELECT path FROM images ORDER BY path").fetchall()
    return [r[0] for r in rows]


def test_first_run_indexes_every_photo(library: Library, photos: Path) -> None:
    report = library.index([str(photos)])
    assert report.indexed == 8 and report.encoded == 8
    assert report.failed == []
    assert library.store.count_images() == 8
    assert library.store.integrity() == "ok"


def test_nothing_is_reencoded_when_nothing_changed(library: Library, photos: Path) -> None:
    library.index([str(photos)])
    encoder = library.encoder
    assert isinstance(encoder, CountingEncoder)
    before = encoder.encoded
    report = library.index([str(photos)])
    assert (report.indexed, report.unchanged, report.encoded) == (0, 8, 0)
    assert encoder.encoded == before


def test_touched_file_is_hashed_not_reencoded(library: Library, photos: Path) -> None:
    library.index([str(photos)])
    os.utime(photos / "red1.jpg", ns=(1, 1))
    report = library.index([str(photos)])
    assert report.encoded == 0 and report.unchanged == 8


def test_changed_file_is_reencoded_in_place(library: Library, photos: Path) -> None:
    library.index([str(photos)])
    record = library.store.image_by_path(str(photos / "red1.jpg"))
    assert record is not None
    make_photo(photos / "red1.jpg", "blue", size=(80, 60))
    report = library.index([str(photos)])
    assert (report.indexed, report.encoded) == (1, 1)
    updated = library.store.image_by_path(str(photos / "red1.jpg"))
    assert updated is not None and updated.id == record.id and updated.width == 80
    assert library.store.count_images() == 8


def test_deleted_file_is_removed(library: Library, photos: Path) -> None:
    library.index([str(photos)])
    (photos / "blue1.jpg").unlink()
    report = library.index([str(photos)])
    assert report.removed == 1
    assert str(photos / "blue1.jpg") not in paths_in(library)
    assert library.store.integrity() == "ok"


def test_moved_file_keeps_its_vector_without_reencoding(library: Library, photos: Path) -> None:
    library.index([str(photos)])
    old = library.store.image_by_path(str(photos / "green1.jpg"))
    assert old is not None
    (photos / "archive").mkdir()
    shutil.move(photos / "green1.jpg", photos / "archive" / "renamed.jpg")
    report = library.index([str(photos)])
    assert (report.moved, report.encoded, report.removed) == (1, 0, 0)
    moved = library.store.image_by_path(str(photos / "archive" / "renamed.jpg"))
    assert moved is not None and moved.id == old.id
    assert library.store.count_images() == 8


def test_copy_of_known_photo_reuses_its_vector(library: Library, photos: Path) -> None:
    library.index([str(photos)])
    shutil.copy(photos / "red1.jpg", photos / "copy-of-red1.jpg")
    report = library.index([str(photos)])
    assert (report.indexed, report.encoded) == (1, 0)
    assert library.store.count_images() == 9
    assert library.store.integrity() == "ok"


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.jpg", b"", "empty"),
        ("text.png", b"this is not a picture\n", "not an image"),
        ("noise.jpg", os.urandom(4096), "not an image"),
    ],
)
def test_unreadable_file_is_reported_and_skipped(
    library: Library, photos: Path, name: str, content: bytes, reason: str
) -> None:
    (photos / name).write_bytes(content)
    report = library.index([str(photos)])
    assert report.indexed == 8
    assert [f.path for f in report.failed] == [str(photos / name)]
    assert reason in report.failed[0].error


def test_truncated_jpeg_is_reported_and_skipped(library: Library, photos: Path) -> None:
    data = (photos / "red1.jpg").read_bytes()
    (photos / "cut.jpg").write_bytes(data[: len(data) // 2])
    make_photo(photos / "big.jpg", "purple", size=(800, 600))
    big = (photos / "big.jpg").read_bytes()
    (photos / "big.jpg").write_bytes(big[: len(big) // 3])
    report = library.index([str(photos)])
    failed = {Path(f.path).name for f in report.failed}
    assert "big.jpg" in failed
    assert report.indexed + len(report.failed) == 10


def test_hidden_and_unsupported_files_are_ignored(library: Library, photos: Path) -> None:
    make_photo(photos / ".hidden.jpg", "red")
    make_photo(photos / ".cache" / "thumb.jpg", "red")
    (photos / "notes.txt").write_text("hello")
    report = library.index([str(photos)])
    assert report.indexed == 8 and report.failed == []


def test_missing_folder_keeps_its_images(library: Library, photos: Path, tmp_path: Path) -> None:
    library.index([str(photos)])
    shutil.move(photos, tmp_path / "unplugged")
    report = library.index([])
    assert report.removed == 0
    assert library.store.count_images() == 8
    assert "not found" in report.failed[0].error


def test_subfolder_of_known_folder_is_covered(library: Library, photos: Path) -> None:
    library.index([str(photos)])
    report = library.index([str(photos / "trip")])
    assert report.unchanged == 2 and report.removed == 0
    assert [f.path for f in library.folders()] == [str(photos)]


def test_parent_folder_takes_over_child_folders(library: Library, photos: Path) -> None:
    library.index([str(photos / "trip")])
    library.index([str(photos)])
    folders = library.folders()
    assert [f.path for f in folders] == [str(photos)]
    assert folders[0].image_count == 8


def test_progress_reaches_the_total(library: Library, photos: Path) -> None:
    seen = []
    library.index([str(photos)], progress=seen.append)
    final = seen[-1]
    assert final.phase == "done" and final.done == final.total == 8


def test_cancel_stops_and_keeps_what_is_done(library: Library, tmp_path: Path) -> None:
    import threading

    root = tmp_path / "many"
    for i in range(40):
        make_photo(root / f"{i:03}.png", (i * 6, 100, 200))
    cancel = threading.Event()

    def stop_after_first_batch(progress) -> None:  # type: ignore[no-untyped-def]
        if progress.encoded >= 8:
            cancel.set()

    report = library.index([str(root)], progress=stop_after_first_batch, cancel=cancel)
    assert report.cancelled
    assert 8 <= library.store.count_images() < 40
    assert library.store.integrity() == "ok"
    kept = library.store.count_images()
    assert library.index([str(root)]).indexed == 40 - kept
    assert library.store.count_images() == 40


def test_empty_mount_point_keeps_its_images(library: Library, photos: Path) -> None:
    """An unmounted share leaves an empty folder behind; its photos must not be dropped."""
    library.index([str(photos)])
    shutil.rmtree(photos)
    photos.mkdir()
    report = library.index([str(photos)])
    assert report.removed == 0 and library.store.count_images() == 8
    assert "unmounted" in report.failed[0].error
    make_photo(photos / "back.jpg", "purple")  # remounted (or refilled): normal sweep again
    report = library.index([str(photos)])
    assert report.removed == 8 and library.store.count_images() == 1
