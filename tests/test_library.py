"""Library: the operations the command line, the service and the window share."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import COLOUR_MODEL, make_photo

from clipdesk._classify import LabelSet
from clipdesk._errors import ClipdeskError, ModelMismatch
from clipdesk._library import Library, LibraryOptions, check_folders, real_path
from clipdesk._search import Query
from clipdesk._testing.colours import ColourEncoder


@pytest.fixture
def library(db_path: Path) -> Iterator[Library]:
    with Library(LibraryOptions(db_path, model=COLOUR_MODEL), encoder=ColourEncoder()) as lib:
        yield lib


def test_index_then_search_finds_the_matching_photos_first(library: Library, photos: Path) -> None:
    report = library.index([str(photos)])
    assert report.indexed == 8 and not report.failed
    hits = library.search(Query(texts=("red",), limit=3))
    assert sorted(Path(h.path).name for h in hits) == ["red1.jpg", "red2.png", "red3.jpg"]


def test_index_without_folders_brings_every_known_folder_up_to_date(library: Library, photos: Path) -> None:
    library.index([str(photos)])
    make_photo(photos / "new" / "white.png", "white")
    (photos / "blue1.jpg").unlink()
    report = library.index([])
    assert (report.indexed, report.removed) == (1, 1)


def test_folders_are_stored_by_their_real_path(library: Library, photos: Path, tmp_path: Path) -> None:
    link = tmp_path / "link-to-photos"
    link.symlink_to(photos)
    library.index([str(link)])
    assert [f.path for f in library.folders()] == [real_path(photos)]
    assert library.folders()[0].image_count == 8


def test_a_missing_folder_or_a_file_is_refused_with_a_clear_message(library: Library, photos: Path) -> None:
    with pytest.raises(ClipdeskError, match="No folder at"):
        library.index([str(photos / "nowhere")])
    with pytest.raises(ClipdeskError, match="is a file"):
        check_folders([str(photos / "red1.jpg")])


def test_forget_drops_a_folders_photos_but_not_the_files(library: Library, photos: Path) -> None:
    library.index([str(photos)])
    assert library.forget(str(photos)) == 8
    assert library.folders() == [] and library.store.count_images() == 0
    assert (photos / "red1.jpg").exists()


def test_forgetting_an_unknown_folder_names_the_known_ones(library: Library, photos: Path, tmp_path: Path) -> None:
    library.index([str(photos)])
    with pytest.raises(ClipdeskError, match=f"its folders: {real_path(photos)}"):
        library.forget(str(tmp_path / "other"))


def test_another_model_is_refused_before_it_is_loaded(library: Library, photos: Path, db_path: Path) -> None:
    library.index([str(photos)])
    with Library(LibraryOptions(db_path, model="clipdesk-test:other")) as other, pytest.raises(
        ModelMismatch, match="--reindex"
    ):
        other.check_model()
    # Without --model, the library's own model is used.
    with Library(LibraryOptions(db_path)) as same:
        assert same.model_spec().model_id == COLOUR_MODEL


def test_searching_an_empty_library_says_so(library: Library) -> None:
    with pytest.raises(ClipdeskError, match="empty"):
        library.search(Query(texts=("red",)))


def test_all_photos_by_name_ignoring_case_or_by_date(library: Library, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for age, name in enumerate(["b.jpg", "A.jpg", "c.jpg"]):
        photo = make_photo(root / name, "red")
        os.utime(photo, ns=(0, (1_600_000_000 - age * 86_400) * 10**9))  # b newest, c oldest
    library.index([str(root)])
    assert [Path(p).name for p in library.all_photos("name").paths] == ["A.jpg", "b.jpg", "c.jpg"]
    assert [Path(p).name for p in library.all_photos("newest").paths] == ["b.jpg", "A.jpg", "c.jpg"]
    assert [Path(p).name for p in library.all_photos("oldest").paths] == ["c.jpg", "A.jpg", "b.jpg"]


def test_classify_labels_photos_and_reports_a_bad_file_without_stopping(
    library: Library, photos: Path, tmp_path: Path
) -> None:
    library.index([str(photos)])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    outside = make_photo(tmp_path / "outside.png", "blue")  # not in the library: encoded now
    results = library.classify(
        [str(photos / "red1.jpg"), str(broken), str(outside), str(tmp_path / "missing.jpg")],
        LabelSet.from_labels(["red", "blue"]),
    )
    assert results[0].result is not None and results[0].result.best() == "red"
    assert results[1].result is None and results[1].error and str(broken) in results[1].error
    assert results[2].result is not None and results[2].result.best() == "blue"
    assert results[3].error is not None and "No image" in results[3].error
