"""The filter row's counts: each choice counted under the other filters in force."""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path

import pytest

from clipdesk._facets import folder_counts
from clipdesk._facts import Orientation
from clipdesk._filters import Filter
from clipdesk._library import Library, LibraryOptions
from conftest import COLOUR_MODEL, make_photo
from exifphotos import make_camera_roll


def test_folder_counts_reach_every_folder_down_from_the_roots() -> None:
    per_folder = {"/p/a": 1, "/p/a/b": 1, "/p/c": 1, "/p/d/e": 0, "/q": 1, "/elsewhere": 1}
    assert folder_counts(per_folder, ["/p", "/q", "/empty"]) == {
        "/p": 3, "/p/a": 2, "/p/a/b": 1, "/p/c": 1, "/p/d": 0, "/p/d/e": 0, "/q": 1, "/empty": 0,
    }


def test_choices_are_counted_under_the_other_filters(tmp_path: Path, db_path: Path) -> None:
    roll = make_camera_roll(tmp_path / "roll")
    with Library(LibraryOptions(db_path=db_path, model=COLOUR_MODEL)) as library:
        library.index([str(roll)])
        everything = library.filter_choices(Filter())
        assert (everything.matching, everything.total, everything.roots) == (5, 5, (str(roll),))
        assert everything.folders == {str(roll): 5, str(roll / "2019"): 3, str(roll / "2019" / "trip"): 1,
                                      str(roll / "2020"): 1}
        assert dict(everything.types) == {"jpeg": 2, "png": 1, "webp": 1, "bmp": 1}
        assert everything.cameras == (("Canon EOS 5D", 2), ("Apple iPhone 12", 1))
        assert dict(everything.orientations) == {Orientation.LANDSCAPE: 3, Orientation.PORTRAIT: 1,
                                                 Orientation.SQUARE: 1}

        # In 2019 only: the folder tree still counts every folder (its own filter left out);
        # types, cameras and shapes count what 2019 holds.
        in_2019 = library.filter_choices(Filter(folders=(str(roll / "2019"),)))
        assert in_2019.matching == 3
        assert in_2019.folders == everything.folders
        assert dict(in_2019.types) == {"jpeg": 2, "png": 1}
        assert dict(in_2019.orientations)[Orientation.LANDSCAPE] == 1

        # A camera and a date: the folders count what that camera took then.
        canon_2019 = library.filter_choices(Filter(camera="canon", after=date(2019, 1, 1)))
        assert canon_2019.matching == 2
        assert canon_2019.folders[str(roll / "2020")] == 0
        assert canon_2019.folders[str(roll / "2019")] == 2
        assert canon_2019.cameras == (("Canon EOS 5D", 2), ("Apple iPhone 12", 1))  # its own filter left out

        # Each choice counted with every other rule: types and cameras under the shape, shapes
        # under the camera.
        square_canon = library.filter_choices(Filter(camera="canon", orientation=Orientation.SQUARE))
        assert square_canon.matching == 1
        assert dict(square_canon.types) == {"png": 1}
        assert square_canon.cameras == (("Canon EOS 5D", 1),)
        assert dict(square_canon.orientations) == {Orientation.LANDSCAPE: 1, Orientation.PORTRAIT: 0,
                                                   Orientation.SQUARE: 1}

        # The same counter sees photos added since (it keeps the folders until the library changes).
        make_photo(roll / "2020" / "new" / "late.png", "red", (20, 10))
        library.index([str(roll)])
        again = library.filter_choices(Filter(camera="canon", after=date(2019, 1, 1)))
        assert again.folders[str(roll / "2020" / "new")] == 0 and again.total == 6
        assert library.filter_choices(Filter(types=("png",))).folders[str(roll / "2020")] == 1

        # Browsing honours a filter, in the order asked for.
        names = [Path(p).name for p in library.all_photos("newest", Filter(camera="canon")).paths]
        assert names == ["poppies.png", "beach.jpg"]


@pytest.mark.skipif(sys.platform != "linux", reason="only Linux file systems take names that are not UTF-8")
def test_names_that_are_not_utf8_count_in_their_folder(tmp_path: Path, db_path: Path) -> None:
    root = tmp_path / "odd"
    make_photo(root / "x" / os.fsdecode(b"caf\xe9.jpg"), "red")
    make_photo(root / "x" / "plain.jpg", "blue")
    make_photo(root / os.fsdecode(b"d\xe9j\xe0") / "vu.jpg", "green")
    with Library(LibraryOptions(db_path=db_path, model=COLOUR_MODEL)) as library:
        library.index([str(root)])
        choices = library.filter_choices(Filter())
    assert choices.folders == {str(root): 3, str(root / "x"): 2, str(root / os.fsdecode(b"d\xe9j\xe0")): 1}
    assert (choices.total, choices.matching) == (3, 3)
