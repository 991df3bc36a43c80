"""Paths: which library folder holds a path; display() for JSON and messages, printable() for terminals."""

from __future__ import annotations

import ntpath
import os
import types

import pytest

from clipdesk import _paths as paths
from clipdesk._paths import FolderSet, display, folder_holding, is_within, printable


@pytest.mark.parametrize(
    ("path", "folder", "expected"),
    [
        ("/a/b", "/a/b", True),  # the folder itself
        ("/a/b/c.jpg", "/a/b", True),
        ("/a/b/c/d/e.jpg", "/a/b", True),
        ("/a/bc", "/a/b", False),  # a sibling whose name merely starts the same
        ("/a/bc/x.jpg", "/a/b", False),
        ("/a", "/a/b", False),  # a parent is not inside its child
        ("/a/b/c.jpg", "/a/b/", True),  # trailing slashes on either side
        ("/a/b/", "/a/b", True),
        ("/a/b", "/a/b/", True),
        ("/a/b//", "/a/b", True),
        ("/a/bc", "/a/b/", False),
        ("/a/b", "/", True),  # everything is under the root
        ("/", "/", True),
        ("/", "/a", False),
        ("", "/", False),
        ("/a", "", False),
        ("/A/b", "/a", False),  # POSIX names are case-sensitive
    ],
)
def test_is_within(path: str, folder: str, expected: bool) -> None:
    assert is_within(path, folder) is expected


def test_non_utf8_names_compare_as_their_bytes() -> None:
    folder = os.fsdecode(b"/photos/caf\xe9")  # Latin-1 name: surrogate-escaped
    assert is_within(folder + "/x.jpg", folder)
    assert not is_within(os.fsdecode(b"/photos/caf\xe9s/x.jpg"), folder)
    assert not is_within(folder + "/x.jpg", "/photos/café")  # the UTF-8 spelling is another folder
    assert folder_holding(folder + "/x.jpg", ["/photos", folder]) == folder
    assert FolderSet([folder]).holds(folder + "/x.jpg")


def test_windows_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    # The helpers go through os.path, so on Windows they are case-blind and take either slash.
    monkeypatch.setattr(paths, "os", types.SimpleNamespace(path=ntpath, sep="\\"))
    assert is_within(r"C:\Photos\Trip\a.jpg", r"c:\photos")
    assert is_within("C:/Photos/Trip/a.jpg", "C:\\Photos\\")
    assert is_within(r"C:\Photos", "C:\\")
    assert not is_within(r"C:\PhotosOld\a.jpg", r"C:\Photos")
    assert not is_within(r"D:\Photos\a.jpg", r"C:\Photos")
    assert folder_holding(r"c:\photos\trip\a.jpg", [r"C:\Photos", r"C:\Photos\Trip"]) == r"C:\Photos\Trip"
    assert FolderSet([r"C:\Photos"]).holds(r"c:\PHOTOS\a.jpg")
    assert FolderSet(["C:\\"]).holds(r"C:\a\b.jpg")


def test_folder_holding_picks_the_deepest() -> None:
    folders = ["/", "/a", "/a/b", "/a/bc"]
    assert folder_holding("/a/b/c.jpg", folders) == "/a/b"
    assert folder_holding("/a/bc/c.jpg", folders) == "/a/bc"
    assert folder_holding("/a/x.jpg", folders) == "/a"
    assert folder_holding("/z.jpg", folders) == "/"
    assert folder_holding("/a/b", ["/a/b/", "/a"]) == "/a/b/"  # returned as given
    assert folder_holding("/z.jpg", ["/a", "/a/b"]) is None
    assert folder_holding("/z.jpg", []) is None


def test_folder_set_matches_is_within() -> None:
    folders = ["/a/b/", "/c", "/d/e/f"]
    found = FolderSet(folders)
    for path in ["/a/b", "/a/b/x", "/a/bc", "/a", "/c/d/e", "/cd", "/d/e", "/d/e/f/g.jpg", "/", ""]:
        assert found.holds(path) is any(is_within(path, f) for f in folders), path
    assert FolderSet(["/"]).holds("/anything/at/all")
    assert not FolderSet([]).holds("/a")


def test_printable_shows_control_characters_as_escapes() -> None:
    assert printable("a\x1b]52;c;eA==\x07b") == "a\\x1b]52;c;eA==\\x07b"
    assert printable("one\ntwo\rthree\tfour") == "one\\ntwo\\rthree\\tfour"
    assert printable("del\x7f c1\u009b nul\x00") == "del\\x7f c1\\x9b nul\\x00"
    assert printable("fake\u2028line \u202eevil") == "fake\\u2028line \\u202eevil"


def test_printable_escapes_undecodable_bytes_as_display_does() -> None:
    name = os.fsdecode(b"/photos/caf\xe9\x1b.jpg")
    assert printable(name) == "/photos/caf\\udce9\\x1b.jpg"
    assert display(name) == "/photos/caf\\udce9\x1b.jpg"  # JSON escapes the rest itself


def test_ordinary_names_are_shown_as_they_are() -> None:
    for name in ("/home/ana/Photos/été 2024/IMG_0001.JPG", "日本/写真.png", "emoji 👩‍👩‍👧.jpg", "C:\\Users\\x.jpg"):
        assert printable(name) == name == display(name)
    assert printable(printable("a\x1bb")) == printable("a\x1bb")
