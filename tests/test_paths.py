"""How names are shown: display() for JSON and messages, printable() for the terminal."""

from __future__ import annotations

import os

from clipdesk.paths import display, printable


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
