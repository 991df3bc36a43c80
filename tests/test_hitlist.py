"""Result lists as long as the library: compact hits that behave like a list of Hit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipdesk.hitlist import HitList
from clipdesk.library import Library, LibraryOptions
from clipdesk.search import Hit
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
