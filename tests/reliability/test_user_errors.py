"""Every mistake a user can make at the command line ends in one clear line, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .helpers import COLOUR_MODEL, assert_clean_error, clipdesk_argv, clipdesk_env, jpeg_bytes

CASES = {
    "search without a library": (["search", "red"], "no library"),
    "index a missing folder": (["index", "{tmp}/nope"], "no folder"),
    "index a file": (["index", "{photos}/a.jpg"], "is a file"),
    "similar to a missing image": (["similar", "{tmp}/nope.jpg"], "no image"),
    "similar to a text file": (["similar", "{photos}/notes.jpg"], "notes.jpg: not an image"),
    "search like a text file": (
        ["search", "red", "--like", "{photos}/notes.jpg"],
        "notes.jpg: not an image",
    ),
    "classify a text file": (
        ["classify", "{photos}/notes.jpg", "--labels", "a,b"],
        "notes.jpg: not an image",
    ),
    "another model than the library's": (
        ["search", "red", "--model", "clipdesk-test:other"],
        "indexed with the model",
    ),
    "library path is a folder": (["--db", "{tmp}", "status"], "is a folder"),
    "library path is a device": (["--db", "/dev/null", "status"], "not a regular file"),
    "library cannot be created": (
        ["--db", "/proc/no/such/dir/x.db", "index", "{photos}"],
        "cannot create",
    ),
    "forget an unknown folder": (["forget", "{tmp}"], "not a folder of this library"),
    "nothing to search for": (["search"], "nothing to search for"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_user_error_is_one_clear_line(case: str, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(jpeg_bytes((200, 0, 0)))
    (photos / "notes.jpg").write_text("shopping list")
    env = clipdesk_env(tmp_path / "data")
    args, needle = CASES[case]
    if case != "search without a library":
        made = subprocess.run(
            clipdesk_argv("index", str(photos), "--model", COLOUR_MODEL),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{photos}", str(photos)) for a in args]
    result = subprocess.run(
        clipdesk_argv(*argv), env=env, capture_output=True, text=True, timeout=60
    )
    assert_clean_error(result, needle)
