"""The library database: model binding, foreign files, odd file names."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from clipdesk._errors import LibraryCorrupt, LibraryError, ModelMismatch
from clipdesk._store import NewImage, Store


def test_new_library_is_private(db_path: Path) -> None:
    Store(db_path).close()
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700


def test_a_different_model_is_refused_unless_reindexing(db_path: Path) -> None:
    with Store(db_path) as store:
        store.bind_model("model-a", 4)
        folder = store.add_folder("/p")
        with store.write():
            store.insert_image(NewImage(folder.id, "/p/a.jpg", 1, 1, "h", 1, 1, None), np.ones(4))
        with pytest.raises(ModelMismatch, match="model-a"):
            store.bind_model("model-b", 8)
        store.bind_model("model-b", 8, reindex=True)
        assert store.model() is not None and store.model().dim == 8  # type: ignore[union-attr]


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with Store(tmp_path / "seed.db"):
        pass
    import apsw

    conn = apsw.Connection(str(other))
    conn.execute("CREATE TABLE notes(x)")
    conn.close()
    with pytest.raises(LibraryCorrupt, match="not a clipdesk library"):
        Store(other)


def test_garbage_file_is_refused_clearly(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(8192))
    with pytest.raises(LibraryError):
        Store(junk)


def test_missing_library_is_not_created_for_reading(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="index a folder first"):
        Store(tmp_path / "none.db", create=False)
    assert not (tmp_path / "none.db").exists()


def test_non_utf8_file_names_round_trip(db_path: Path) -> None:
    name = os.fsdecode(b"/photos/caf\xe9.jpg")
    with Store(db_path) as store:
        store.bind_model("m", 3)
        folder = store.add_folder("/photos")
        with store.write():
            store.insert_image(NewImage(folder.id, name, 1, 2, "h", 1, 1, None), np.ones(3))
        assert store.image_by_path(name) is not None
        assert name in store.image_states(folder.id)
        assert store.integrity() == "ok"


def test_knn_returns_cosine_similarity_best_first(db_path: Path) -> None:
    with Store(db_path) as store:
        store.bind_model("m", 2)
        folder = store.add_folder("/p")
        with store.write():
            for i, v in enumerate([(1, 0), (0, 1), (1, 1)]):
                store.insert_image(NewImage(folder.id, f"/p/{i}", 1, 1, str(i), 1, 1, None), np.array(v, float))
        hits = store.knn(np.array([1.0, 0.0], dtype=np.float32), 3)
        assert [round(s, 3) for _, s in hits] == [1.0, 0.707, 0.0]


def test_the_image_count_follows_this_and_other_connections(tmp_path: Path) -> None:
    db = tmp_path / "library.db"
    with Store(db) as first, Store(db) as second:
        first.bind_model("m", 2)
        folder = first.add_folder("/photos")
        assert first.count_images() == second.count_images() == 0
        with first.write():
            for name in ("a.jpg", "b.jpg"):
                first.insert_image(NewImage(folder.id, f"/photos/{name}", 1, 1, name, 1, 1, None), np.ones(2))
        assert first.count_images() == second.count_images() == 2
        with second.write():
            second.delete_images([1])
        assert first.count_images() == second.count_images() == 1
