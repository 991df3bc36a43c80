"""A reader opened before the first photos were indexed still finds them (the GUI's case)."""

from __future__ import annotations

from pathlib import Path

from clipdesk._library import Library, LibraryOptions
from clipdesk._store import Store
from clipdesk._testing.colours import ColourEncoder


def test_reader_opened_on_an_empty_library_sees_vectors_indexed_later(photos: Path, db_path: Path):
    reader = Store(db_path)  # e.g. the service's interactive connection, opened at start-up
    try:
        assert reader.knn(ColourEncoder().encode_texts(["red"])[0], 3) == []
        with Library(LibraryOptions(db_path=db_path, model=ColourEncoder.model_id)) as writer:
            writer.index([str(photos)])
        found = reader.knn(ColourEncoder().encode_texts(["red"])[0], 3)
        assert len(found) == 3
    finally:
        reader.close()
