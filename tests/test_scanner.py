"""Walking photo folders: which files are photos, what is skipped, and what a failure reports."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import make_photo

from clipdesk._scanner import is_candidate, scan, stat_file


def names(root: Path, **kwargs: object) -> list[str]:
    return [os.path.relpath(s.path, root) for s in scan(str(root), **kwargs)]  # type: ignore[arg-type]


def test_finds_photos_in_every_subfolder_with_their_size_and_mtime(photos: Path) -> None:
    found = {os.path.relpath(s.path, photos): s for s in scan(str(photos))}
    assert set(found) == {
        "red1.jpg", "red2.png", "trip/red3.jpg", "green1.jpg", "trip/green2.webp",
        "blue1.jpg", "blue2.bmp", "yellow1.gif",
    }
    st = os.stat(photos / "trip" / "red3.jpg")
    assert found["trip/red3.jpg"].size == st.st_size
    assert found["trip/red3.jpg"].mtime_ns == st.st_mtime_ns


def test_the_order_is_stable_and_by_name(tmp_path: Path) -> None:
    for name in ["b.jpg", "a.jpg", "sub/c.jpg", "c.jpg"]:
        make_photo(tmp_path / name, "red")
    assert names(tmp_path) == ["a.jpg", "b.jpg", "c.jpg", "sub/c.jpg"]
    assert names(tmp_path) == names(tmp_path)


def test_other_files_and_hidden_ones_are_skipped(tmp_path: Path) -> None:
    make_photo(tmp_path / "photo.JPG", "red")  # suffixes in any case
    make_photo(tmp_path / ".hidden.jpg", "red")
    make_photo(tmp_path / ".thumbnails" / "t.jpg", "red")
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "jpg").write_text("no suffix")
    os.mkfifo(tmp_path / "pipe.jpg")  # not a regular file
    assert names(tmp_path) == ["photo.JPG"]


def test_symbolic_links_are_never_followed(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    make_photo(root / "real.jpg", "red")
    outside = make_photo(tmp_path / "elsewhere" / "secret.jpg", "blue")
    (root / "link.jpg").symlink_to(outside)
    (root / "linked-folder").symlink_to(outside.parent)
    (root / "loop").symlink_to(root)  # a loop cannot trap the scan
    assert names(root) == ["real.jpg"]


def test_an_unreadable_folder_is_reported_and_the_rest_still_scanned(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    make_photo(tmp_path / "ok.jpg", "red")
    locked = tmp_path / "locked"
    make_photo(locked / "inside.jpg", "red")
    locked.chmod(0)
    try:
        errors: list[tuple[str, str]] = []
        assert names(tmp_path, on_error=lambda p, e: errors.append((p, e))) == ["ok.jpg"]
    finally:
        locked.chmod(0o755)
    assert [p for p, _ in errors] == [str(locked)]
    assert "cannot read folder" in errors[0][1]


def test_a_missing_folder_is_reported_not_raised(tmp_path: Path) -> None:
    errors: list[str] = []
    assert list(scan(str(tmp_path / "gone"), on_error=lambda p, e: errors.append(p))) == []
    assert errors == [str(tmp_path / "gone")]


def test_stat_file_sees_only_regular_files(tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "a.jpg", "red")
    stat = stat_file(str(photo))
    assert stat is not None and stat.size == photo.stat().st_size
    assert stat_file(str(tmp_path / "missing.jpg")) is None
    assert stat_file(str(tmp_path)) is None
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    assert stat_file(str(fifo)) is None  # never opened, so never blocks
    (tmp_path / "link.jpg").symlink_to(photo)
    assert stat_file(str(tmp_path / "link.jpg")) is None


def test_is_candidate() -> None:
    suffixes = frozenset({".jpg", ".png"})
    assert is_candidate("a.JPG", suffixes)
    assert not is_candidate(".a.jpg", suffixes)
    assert not is_candidate("a.gif", suffixes)
    assert not is_candidate("jpg", suffixes)
