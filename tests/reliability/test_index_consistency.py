"""The index stays exact when contents move between files within one run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipdesk._indexer import Indexer, hash_path
from clipdesk._store import Store
from clipdesk._testing.colours import PALETTE, ColourEncoder

from .helpers import jpeg_bytes


def _colour_of(store: Store, path: Path) -> str:
    record = store.image_by_path(str(path))
    assert record is not None and record.hash == hash_path(str(path))
    vector = store.vector(record.id)
    assert vector is not None
    return list(PALETTE)[int(np.argmax(vector[: len(PALETTE)]))]


def test_copy_of_content_that_was_replaced_earlier_in_the_same_run(tmp_path: Path) -> None:
    """X changes from red to blue and Y becomes a copy of the old red X, in one run:
    Y must not borrow X's new (blue) vector."""
    root = tmp_path / "photos"
    root.mkdir()
    red, blue = jpeg_bytes(PALETTE["red"]), jpeg_bytes(PALETTE["blue"])
    (root / "x.jpg").write_bytes(red)
    encoder = ColourEncoder()
    encoder.batch_size = 1  # every encoded image is written before the next file
    with Store(tmp_path / "lib.db") as store:
        indexer = Indexer(store, encoder, workers=1)
        indexer.index([str(root)])
        (root / "x.jpg").write_bytes(blue)
        (root / "y.jpg").write_bytes(red)
        report = indexer.index([str(root)])
        assert not report.failed
        assert _colour_of(store, root / "x.jpg") == "blue"
        assert _colour_of(store, root / "y.jpg") == "red"
        assert store.integrity() == "ok"


def test_swapped_contents(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    red, blue = jpeg_bytes(PALETTE["red"]), jpeg_bytes(PALETTE["blue"])
    (root / "a.jpg").write_bytes(red)
    (root / "b.jpg").write_bytes(blue)
    encoder = ColourEncoder()
    encoder.batch_size = 1
    with Store(tmp_path / "lib.db") as store:
        indexer = Indexer(store, encoder, workers=1)
        indexer.index([str(root)])
        (root / "a.jpg").write_bytes(blue)
        (root / "b.jpg").write_bytes(red)
        (root / "c.jpg").write_bytes(red)
        assert not indexer.index([str(root)]).failed
        assert [_colour_of(store, root / n) for n in ("a.jpg", "b.jpg", "c.jpg")] == [
            "blue",
            "red",
            "red",
        ]
        assert store.integrity() == "ok"
