"""Every ```python example in docs/api.md runs, as written, in a folder of a few pictures."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

import pytest

from conftest import make_photo

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

# The pictures the examples name (see "About the examples" in docs/api.md), and when they were taken.
PICTURES = {
    "photos/summer/beach-red.jpg": ("red", (64, 48), datetime(2019, 7, 14, 12)),
    "photos/summer/sea-blue.jpg": ("blue", (64, 48), datetime(2019, 7, 15, 9)),
    "photos/summer/grass-green.png": ("green", (48, 64), datetime(2019, 8, 2, 18)),
    "photos/winter/snow-white.jpg": ("white", (64, 48), datetime(2020, 1, 5, 10)),
    "photos/winter/night-black.jpg": ("black", (64, 64), datetime(2020, 1, 6, 22)),
    "photos/winter/scarf-red.jpg": ("red", (48, 64), datetime(2020, 1, 7, 15)),
    "query.jpg": ("blue", (40, 40), datetime(2021, 3, 1, 8)),
}


def examples() -> list[str]:
    return _BLOCK.findall(DOC.read_text(encoding="utf-8"))


def test_the_reference_has_examples_for_every_use_case():
    text = DOC.read_text(encoding="utf-8")
    for heading in ("Semantic search", "Similar photos", "Zero-shot classification", "Moderation",
                    "Batch processing", "Vectors to NumPy", "Export and import"):
        assert f"## {heading}" in text
    assert len(examples()) >= 7


@pytest.fixture
def picture_folder(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, (colour, size, taken) in PICTURES.items():
        path = make_photo(tmp_path / name, colour, size)
        stamp = taken.timestamp()
        os.utime(path, (stamp, stamp))  # no EXIF: the file's time is the date taken
    (tmp_path / "notes.txt").write_text("not a picture\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_example_runs(picture_folder: Path, capsys: pytest.CaptureFixture[str]):
    # In order, each in a fresh namespace: later examples open the library the first one made.
    for number, code in enumerate(examples(), 1):
        try:
            exec(compile(code, f"docs/api.md example {number}", "exec"), {"__name__": f"example{number}"})
        except Exception as exc:
            raise AssertionError(f"docs/api.md example {number} failed:\n{code}") from exc
    out = capsys.readouterr().out
    assert "6 indexed, 0 failed" in out
    assert "skipped: " in out and "notes.txt" in out  # the classification example's bad file
    assert "No library at missing.db" in out
    assert (picture_folder / "vectors.npz").exists()
    assert "6 photos written to" in out and "6 photos restored; not on this disk yet: ('/mnt/photos" in out
