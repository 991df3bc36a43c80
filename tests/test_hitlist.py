"""Result lists as long as the library: compact hits that behave like a list of Hit."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

from clipdesk._hitlist import HitList
from clipdesk._library import Library, LibraryOptions
from clipdesk._search import Hit
from conftest import COLOUR_MODEL, make_photo


def test_behaves_like_the_hits_it_holds() -> None:
    hits = [Hit(7, "/p/a.jpg", 0.9), Hit(3, "/p/b.jpg", 0.5), Hit(5, "/p/c.jpg", 0.1)]
    compact = HitList.of(hits)
    assert list(compact) == hits and len(compact) == 3
    assert compact[1] == hits[1] and list(compact[1:]) == hits[1:]
    assert [compact.row_of(i) for i in (5, 7, 3, 4)] == [2, 0, 1, None]
    assert list(compact.at_least(0.5)) == hits[:2]
    assert compact.at_least(0.0) is compact


def test_same_as_notices_any_change() -> None:
    base = HitList(np.array([1, 2]), ["/a", "/b"], np.array([0.5, 0.4]))
    assert base.same_as(HitList(np.array([1, 2]), ["/a", "/b"], np.array([0.5, 0.4])))
    assert not base.same_as(HitList(np.array([2, 1]), ["/b", "/a"], np.array([0.5, 0.4])))
    assert not base.same_as(HitList(np.array([1, 2]), ["/a", "/b"], np.array([0.5, 0.3])))
    assert not base.same_as(HitList(np.array([1, 2]), ["/a", "/renamed"], np.array([0.5, 0.4])))
    assert not base.same_as(base[:1])


def test_all_photos_lists_every_photo_by_name_ignoring_case(db_path: Path, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for name in ["b.jpg", "A.jpg", "sub/c.png", "a2.jpg"]:
        make_photo(root / name, "red")
    other = make_photo(tmp_path / "other" / "z.jpg", "blue")
    with Library(LibraryOptions(db_path, model=COLOUR_MODEL)) as lib:
        lib.index([str(root), str(other.parent)])
        listed = lib.all_photos()
    assert [Path(p).relative_to(tmp_path).as_posix() for p in listed.paths] == [
        "other/z.jpg", "photos/A.jpg", "photos/a2.jpg", "photos/b.jpg", "photos/sub/c.png",
    ]
    assert len(set(listed.ids.tolist())) == 5


def _jpeg_taken(path: Path, when: str) -> Path:
    """A photo whose EXIF says when it was taken ("YYYY:MM:DD HH:MM:SS")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    exif[0x0132] = when
    Image.new("RGB", (32, 24), (200, 0, 0)).save(path, exif=exif.tobytes())
    return path


def test_all_photos_by_date_taken_else_modified(db_path: Path, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _jpeg_taken(root / "b-2015.jpg", "2015:06:01 12:00:00")
    _jpeg_taken(root / "a-2021.jpg", "2021:06:01 12:00:00")
    for name, year in [("c-2018.png", 2018), ("d-2023.png", 2023)]:
        path = make_photo(root / name, "blue")
        when = datetime(year, 6, 1, 12).timestamp()  # no EXIF: the file's date counts
        os.utime(path, (when, when))
    with Library(LibraryOptions(db_path, model=COLOUR_MODEL)) as lib:
        lib.index([str(root)])
        newest = [Path(p).name for p in lib.all_photos("newest").paths]
        oldest = [Path(p).name for p in lib.all_photos("oldest").paths]
    assert newest == ["d-2023.png", "a-2021.jpg", "c-2018.png", "b-2015.jpg"]
    assert oldest == newest[::-1]
