"""Sorting into folders: one safe folder per label, every photo arrives whole, nothing is overwritten."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from conftest import make_photo

from clipdesk._sorting import apply_sort, plan_sort


def _files(root: Path) -> dict[str, bytes]:
    """Every file under root, by path relative to it (temporary or hidden ones included)."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_copies_into_label_folders_and_never_overwrites(tmp_path: Path) -> None:
    a = make_photo(tmp_path / "a" / "x.png", "red")
    b = make_photo(tmp_path / "b" / "x.png", "red")
    c = make_photo(tmp_path / "c.png", "blue")
    dest = tmp_path / "sorted"
    old = make_photo(dest / "red" / "x.png", "green").read_bytes()  # already there: must survive
    report = apply_sort(plan_sort([(str(a), "red"), (str(b), "red"), (str(c), "blue")], dest))
    assert report.done == 3 and not report.failed
    assert _files(dest) == {
        "red/x.png": old,
        "red/x (2).png": a.read_bytes(),
        "red/x (3).png": b.read_bytes(),
        "blue/c.png": c.read_bytes(),
    }
    assert a.exists() and b.exists() and c.exists()  # copied, not moved


def test_a_move_takes_the_photo_away_and_overwrites_nothing(tmp_path: Path) -> None:
    c = make_photo(tmp_path / "c.png", "blue")
    data = c.read_bytes()
    dest = tmp_path / "sorted"
    make_photo(dest / "blue" / "c.png", "green")
    report = apply_sort(plan_sort([(str(c), "blue")], dest), move=True)
    assert report.done == 1 and not report.failed
    assert not c.exists()
    assert (dest / "blue" / "c (2).png").read_bytes() == data
    assert (dest / "blue" / "c.png").read_bytes() != data


def test_one_missing_photo_is_reported_and_the_rest_are_sorted(tmp_path: Path) -> None:
    good = make_photo(tmp_path / "good.png", "red")
    gone = tmp_path / "gone.png"
    report = apply_sort(plan_sort([(str(gone), "red"), (str(good), "red")], tmp_path / "out"))
    assert report.done == 1
    assert [path for path, _ in report.failed] == [str(gone)]
    assert report.failed[0][1]  # a reason
    assert _files(tmp_path / "out") == {"red/good.png": good.read_bytes()}


# -- issue 15, item 14 ---------------------------------------------------------------


def test_long_labels_and_long_names_are_shortened_and_everything_is_sorted(tmp_path: Path) -> None:
    """A label or a numbered name over 255 bytes used to abort the whole sort, nothing copied."""
    long_name = "x" * 251 + ".png"  # 255 bytes: "x… (2).png" would be 259
    first = make_photo(tmp_path / "a" / long_name, "red")
    second = make_photo(tmp_path / "b" / long_name, "red")
    third = make_photo(tmp_path / "c.png", "blue")
    fourth = make_photo(tmp_path / "d.png", "green")
    labels = ["red", "red", "日本" * 60, "y" * 300]  # 360 and 300 bytes
    items = list(zip(map(str, (first, second, third, fourth)), labels))
    dest = tmp_path / "sorted"
    report = apply_sort(plan_sort(items, dest))
    assert report.done == 4 and not report.failed
    red = sorted((dest / "red").iterdir())
    assert [p.read_bytes() for p in red] == [first.read_bytes(), second.read_bytes()]
    assert all(p.suffix == ".png" and len(os.fsencode(p.name)) <= 255 for p in red)
    folders = {p.name for p in dest.iterdir()} - {"red"}
    assert len(folders) == 2 and all(len(name.encode()) <= 255 for name in folders)
    assert any(name.startswith("日本日本") for name in folders)  # cut between characters
    assert sorted(len(list((dest / f).iterdir())) for f in folders) == [1, 1]


def test_labels_that_clean_to_the_same_name_keep_their_own_folders(tmp_path: Path) -> None:
    labels = ["a/b", "a?b", "a_b", "A_B"]
    photos = [make_photo(tmp_path / f"{i}.png", "red") for i in range(len(labels))]
    dest = tmp_path / "sorted"
    report = apply_sort(plan_sort(list(zip(map(str, photos), labels)), dest))
    assert report.done == 4
    folders = sorted(p.name for p in dest.iterdir())
    assert len(folders) == 4, folders  # one each, even on a case-insensitive disk
    assert all(len(list((dest / f).iterdir())) == 1 for f in folders)
    assert (dest / "a_b" / "2.png").exists()  # the label that was already a name keeps it

    from clipdesk._sorting import folder_names

    # The mapping the dialog shows is the one sorting used.
    names = folder_names(labels)
    assert sorted(names.values()) == folders
    for i, label in enumerate(labels):
        assert (dest / names[label] / f"{i}.png").exists()


@pytest.mark.parametrize(
    ("label", "folder"),
    [
        ("con", "con_"),
        ("NUL", "NUL_"),
        ("COM1", "COM1_"),
        ("lpt9.old", "lpt9_.old"),
        ("aux ", "aux_"),
        ("cats. . ", "cats"),
        ("dogs...", "dogs"),
        ("..", "unnamed"),
        ("console", "console"),
    ],
)
def test_names_windows_reserves_or_drops_are_changed(tmp_path: Path, label: str, folder: str) -> None:
    photo = make_photo(tmp_path / "p.png", "red")
    report = apply_sort(plan_sort([(str(photo), label)], tmp_path / "sorted"))
    assert report.done == 1
    assert [p.name for p in (tmp_path / "sorted").iterdir()] == [folder]


def test_a_full_disk_mid_copy_leaves_no_cut_off_photo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    small = make_photo(tmp_path / "small.png", "blue")
    real_copy = shutil.copyfileobj

    def disk_fills(src, dst, length=0):  # type: ignore[no-untyped-def]
        if os.fstat(src.fileno()).st_ino == big.stat().st_ino:
            dst.write(src.read(1024 * 1024))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_copy(src, dst, length)

    monkeypatch.setattr(shutil, "copyfileobj", disk_fills)
    dest = tmp_path / "sorted"
    report = apply_sort(plan_sort([(str(big), "cats"), (str(small), "cats")], dest))
    assert report.done == 1
    assert report.failed == [(str(big), os.strerror(errno.ENOSPC))]
    # Only the whole photo is there: no part of big.jpg under any name.
    assert _files(dest) == {"cats/small.png": small.read_bytes()}
    assert big.exists()


def _across_devices(monkeypatch: pytest.MonkeyPatch, source: Path) -> list[str]:
    """Make `source` look as if it is on another disk; return a log of fsyncs and removals."""
    events: list[str] = []
    real_link, real_rename, real_remove, real_unlink, real_fsync = (
        os.link, os.rename, os.remove, os.unlink, os.fsync
    )

    def link(src, dst, *a, **kw):  # type: ignore[no-untyped-def]
        if os.fspath(src) == str(source):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        return real_link(src, dst, *a, **kw)

    def rename(src, dst, *a, **kw):  # type: ignore[no-untyped-def]
        if os.fspath(src) == str(source):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        return real_rename(src, dst, *a, **kw)

    def remove(path, *a, **kw):  # type: ignore[no-untyped-def]
        if os.fspath(path) == str(source):
            events.append("remove source")
        return real_remove(path, *a, **kw)

    def unlink(path, *a, **kw):  # type: ignore[no-untyped-def]
        if os.fspath(path) == str(source):
            events.append("remove source")
        return real_unlink(path, *a, **kw)

    def fsync(fd):  # type: ignore[no-untyped-def]
        events.append("fsync")
        return real_fsync(fd)

    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "remove", remove)
    monkeypatch.setattr(os, "unlink", unlink)
    monkeypatch.setattr(os, "fsync", fsync)
    return events


def test_a_move_across_disks_removes_the_original_only_once_the_copy_is_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = make_photo(tmp_path / "p.png", "red")
    data = photo.read_bytes()
    events = _across_devices(monkeypatch, photo)
    dest = tmp_path / "sorted"
    report = apply_sort(plan_sort([(str(photo), "red")], dest), move=True)
    assert report.done == 1 and not photo.exists()
    assert _files(dest) == {"red/p.png": data}
    assert "fsync" in events and events.index("fsync") < events.index("remove source")


def test_a_move_across_disks_keeps_the_original_if_the_copy_cannot_be_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = make_photo(tmp_path / "p.png", "red")
    data = photo.read_bytes()
    _across_devices(monkeypatch, photo)

    def fsync_fails(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", fsync_fails)
    dest = tmp_path / "sorted"
    report = apply_sort(plan_sort([(str(photo), "red")], dest), move=True)
    assert report.done == 0 and [p for p, _ in report.failed] == [str(photo)]
    assert photo.read_bytes() == data
    assert _files(dest) == {}


@pytest.mark.timeout(30)
def test_a_fifo_where_a_photo_was_is_reported_without_hanging(tmp_path: Path) -> None:
    good = make_photo(tmp_path / "in" / "good.jpg", "red")
    fifo = tmp_path / "in" / "pipe.jpg"
    os.mkfifo(fifo)
    report = apply_sort(plan_sort([(str(fifo), "red"), (str(good), "red")], tmp_path / "out"))
    assert report.done == 1
    assert [(path, "FIFO" in reason) for path, reason in report.failed] == [(str(fifo), True)]
    assert sorted(p.name for p in (tmp_path / "out" / "red").iterdir()) == ["good.jpg"]
