"""One voice across commands: a file where a folder belongs (and the reverse), exit statuses,
JSON floats, and a progress bar that ends at 100 %."""

from __future__ import annotations

import io
import json
import re

import pytest
from PIL import Image

from clipdesk import _cli
from clipdesk._cli import main

COLOURS = "clipdesk-test:colours"


@pytest.fixture
def library(data_dir, photos, capsys):
    db = data_dir / "lib.db"
    (photos / "broken.jpg").write_bytes(b"not a photo")
    assert main(["index", str(photos), "--db", str(db), "--model", COLOURS]) == 0
    capsys.readouterr()
    return db


@pytest.mark.parametrize("command", [
    ["index", "{file}"], ["watch", "{file}"], ["forget", "{file}"], ["duplicates", "--in", "{file}"],
])
def test_a_file_where_a_folder_belongs_says_so(library, photos, capsys, command):
    photo = photos / "red1.jpg"
    assert main([*(a.format(file=photo) for a in command), "--db", str(library)]) == 1
    assert capsys.readouterr().err == f"clipdesk: {photo} is a file; give a folder of photos.\n"


@pytest.mark.parametrize("command", [["search", "--in", "{file}", "red"], ["list", "--in", "{file}"]])
def test_a_file_given_to_in_is_a_usage_error(library, photos, capsys, command):
    photo = photos / "red1.jpg"
    assert main([*(a.format(file=photo) for a in command), "--db", str(library)]) == 2
    assert capsys.readouterr().err == f"clipdesk: --in {photo} is a file; give a folder.\n"


@pytest.mark.parametrize("command", [
    ["similar", "{folder}"], ["search", "--like", "{folder}", "red"], ["classify", "{folder}", "--labels", "a,b"],
])
def test_a_folder_where_a_photo_belongs_says_so(library, photos, capsys, command):
    assert main([*(a.format(folder=photos) for a in command), "--db", str(library)]) == 1
    assert capsys.readouterr().err == f"clipdesk: {photos} is a folder; give an image file.\n"


def test_index_with_failed_files_exits_0_and_says_how_many(data_dir, photos, capsys):
    (photos / "broken.jpg").write_bytes(b"not a photo")
    (photos / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert main(["index", str(photos), "--db", str(data_dir / "lib.db"), "--model", COLOURS]) == 0
    captured = capsys.readouterr()
    assert "8 indexed" in captured.out and "2 failed" in captured.out
    assert len([line for line in captured.err.splitlines() if line.startswith("  skipped ")]) == 2


def _floats(data):
    if isinstance(data, float):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from _floats(value)
    elif isinstance(data, list):
        for value in data:
            yield from _floats(value)


@pytest.mark.parametrize("command", [
    ["search", "red", "--json"], ["similar", "{photo}", "--json"],
    ["classify", "{photo}", "--labels", "red, blue, green", "--json"], ["index", "--json"],
    ["duplicates", "--json"],
])
def test_json_floats_are_rounded_alike_everywhere(library, photos, capsys, command):
    copy = photos / "copy.png"
    Image.open(photos / "red1.jpg").resize((40, 30)).save(copy)  # near copies give a similarity
    main(["index", "--db", str(library)])
    capsys.readouterr()
    main([*(a.format(photo=photos / "red1.jpg") for a in command), "--db", str(library)])
    data = json.loads(capsys.readouterr().out)
    values = list(_floats(data))
    assert values or command[0] == "index"
    for value in values:
        assert re.fullmatch(r"-?\d+(\.\d{1,6})?(e-?\d+)?", repr(value)), value
        assert round(value, _cli.JSON_DIGITS) == value


def test_the_progress_bar_ends_at_100_percent(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(_cli.sys, "stderr", stream)
    bar = _cli._CountBar("indexing")
    bar.enabled = True
    bar.update(37, 40)  # the last report came a batch early
    bar.finish()
    bar.close()
    assert "100%" in stream.getvalue() and "40/40" in stream.getvalue()
