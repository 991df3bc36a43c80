"""A vector that is not a number (fp16 overflow on a GPU, say) costs one photo, never a search."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import apsw
import numpy as np

from clipdesk._library import Library, LibraryOptions
from clipdesk._search import Query
from clipdesk._testing.colours import ColourEncoder
from conftest import COLOUR_MODEL, CliRunner


class RedIsNaN(ColourEncoder):
    """The colour encoder, except that red images come out as NaN."""

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        out = super().encode_pixels(pixels)
        out[out[:, 0] > 0.5] = np.nan  # closest to red
        return out


def _strict_json(text: str) -> object:
    def refuse(name: str) -> object:
        raise AssertionError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


def test_nan_vectors_are_skipped_and_reported_not_stored(photos: Path, db_path: Path) -> None:
    with Library(LibraryOptions(db_path=db_path), encoder=RedIsNaN()) as library:
        report = library.index([str(photos)])
        failed = {Path(f.path).name: f.error for f in report.failed}
        assert set(failed) == {"red1.jpg", "red2.png", "red3.jpg"}
        assert all("not a number" in e for e in failed.values()), failed
        assert report.indexed == 5  # the rest of each batch was kept
        assert library.store.integrity() == "ok"
        hits = library.search(Query(texts=("green",)))
        assert sorted(Path(h.path).name for h in hits[:2]) == ["green1.jpg", "green2.webp"]


def _poison(db: Path, name: str) -> None:
    """Write a NaN vector for one photo, as a version that did not check them would have."""
    conn = apsw.Connection(str(db))
    dim = int(conn.execute("SELECT value FROM meta WHERE key = 'model_dim'").fetchone()[0])
    (image_id,) = conn.execute("SELECT id FROM images WHERE path LIKE ?", (f"%/{name}",)).fetchone()
    conn.enable_load_extension(True)
    import sqlite_vec

    conn.load_extension(sqlite_vec.loadable_path())
    conn.execute(
        "UPDATE vectors SET embedding = ? WHERE image_id = ?",
        (np.full(dim, np.nan, dtype=np.float32).tobytes(), image_id),
    )
    conn.close()


def test_a_nan_vector_in_a_library_does_not_break_search_status_or_json(
    cli: CliRunner, photos: Path, db_path: Path
) -> None:
    cli("--model", COLOUR_MODEL, "index", str(photos))
    _poison(db_path, "blue1.jpg")

    hits = _strict_json(cli("search", "red", "--json", "-n", "20").stdout)
    assert isinstance(hits, list)
    names = [Path(h["path"]).name for h in hits]
    assert "blue1.jpg" not in names and len(names) == 7  # every other photo still found
    assert all(n.startswith("red") for n in names[:3])

    similar = _strict_json(cli("similar", str(photos / "blue1.jpg"), "--json").stdout)
    assert isinstance(similar, list) and Path(similar[0]["path"]).name == "blue2.bmp"

    classified = _strict_json(cli("classify", str(photos / "blue1.jpg"), "--labels", "red,blue", "--json").stdout)
    assert isinstance(classified, list) and classified[0]["labels"]["blue"] > 0.5

    status = cli("status", check=False)
    assert status.returncode == 1
    line = next(x for x in status.stdout.splitlines() if x.startswith("Integrity:"))
    assert "1 photo with a vector that is not a number" in line and "clipdesk index" in line, line
    assert _strict_json(cli("status", "--json", check=False).stdout)

    # The cure the status line names: the next index encodes just that photo again.
    report = _strict_json(cli("index", "--json").stdout)
    assert isinstance(report, dict) and report["encoded"] == 1
    assert cli("status").returncode == 0
    found = _strict_json(cli("search", "blue", "--json", "-n", "2").stdout)
    assert isinstance(found, list)
    assert {Path(h["path"]).name for h in found} == {"blue1.jpg", "blue2.bmp"}


def test_the_in_memory_index_skips_a_nan_vector(cli: CliRunner, photos: Path, db_path: Path) -> None:
    cli("--model", COLOUR_MODEL, "index", str(photos))
    _poison(db_path, "red1.jpg")
    with Library(LibraryOptions(db_path=db_path, memory_index=True)) as library:
        assert library.vector_index is not None
        library.vector_index.sync(library.store, wait=True)  # searched from memory, not sqlite-vec
        hits = library.search(Query(texts=("red",), limit=20))
        assert all(np.isfinite(h.score) for h in hits)
        assert sorted(Path(h.path).name for h in hits[:2]) == ["red2.png", "red3.jpg"]
        assert len(hits) == 7


def test_the_product_imports_test_encoders_only_when_asked_for(
    tiny_clip: Path, photos: Path, tmp_path: Path
) -> None:
    code = (
        "import sys\n"
        "from clipdesk._cli import main\n"
        "import clipdesk._service, clipdesk._library, clipdesk._gui.app\n"
        f"assert main(['--db', {str(tmp_path / 'l.db')!r}, '--model', {str(tiny_clip)!r}, "
        f"'index', {str(photos)!r}]) == 0\n"
        f"assert main(['--db', {str(tmp_path / 'l.db')!r}, 'search', 'red']) == 0\n"
        "print(sorted(m for m in sys.modules if m.startswith('clipdesk._testing')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
