"""The in-memory search index: same answers as exact search, and it follows the library."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from clipdesk import _vectorindex as vectorindex
from clipdesk._library import Library, LibraryOptions
from clipdesk._search import Query, Searcher
from clipdesk._store import MAX_KNN, NewImage, Store
from clipdesk._testing.colours import ColourEncoder
from clipdesk._vectorindex import VectorIndex
from conftest import COLOUR_MODEL

DIM = 16


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def fill(store: Store, vectors: np.ndarray, start: int = 0) -> list[int]:
    folder = store.add_folder("/photos")
    ids = []
    with store.write():
        for i, v in enumerate(vectors, start):
            image = NewImage(folder.id, f"/photos/{i}.jpg", 1, 1, f"h{i}", 1, 1, None)
            ids.append(store.insert_image(image, v))
    return ids


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "lib.db")
    s.bind_model("test", DIM)
    yield s
    s.close()


def exact(store: Store, query: np.ndarray, k: int) -> list[int]:
    ids, vecs = zip(*store.iter_vectors())
    all_ids, all_vecs = np.concatenate(ids), np.concatenate(vecs)
    return [int(all_ids[i]) for i in np.argsort(-(all_vecs @ query), kind="stable")[:k]]


@pytest.mark.parametrize("exact_bytes", [vectorindex.EXACT_BYTES, 0], ids=["floats", "binary"])
def test_same_top_10_as_exact_search(store: Store, exact_bytes: int) -> None:
    rng = np.random.default_rng(1)
    fill(store, unit(rng.standard_normal((500, DIM))))
    index = VectorIndex(exact_bytes=exact_bytes)
    for query in unit(rng.standard_normal((10, DIM))):
        hits = index.search(store, query, 10)
        assert [i for i, _ in hits] == exact(store, query, 10)
        for image_id, score in hits:
            vector = store.vector(image_id)
            assert vector is not None
            assert score == pytest.approx(float(vector @ query), abs=1e-5)
    assert index.exact == (exact_bytes > 0)


def test_binary_prefilter_keeps_the_nearest(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # Few candidates out of many: the exact match (Hamming distance 0) must survive the prefilter.
    monkeypatch.setattr(vectorindex, "CANDIDATES", (32, 1))
    monkeypatch.setattr(vectorindex, "CANDIDATE_SHARE", 10**9)
    rng = np.random.default_rng(2)
    vectors = unit(rng.standard_normal((2000, DIM)))
    ids = fill(store, vectors)
    index = VectorIndex(exact_bytes=0)
    for row in (0, 777, 1999):
        assert index.search(store, vectors[row], 1)[0][0] == ids[row]


@pytest.mark.parametrize("exact_bytes", [vectorindex.EXACT_BYTES, 0], ids=["floats", "binary"])
def test_follows_inserts_replacements_and_deletions(store: Store, exact_bytes: int) -> None:
    rng = np.random.default_rng(3)
    ids = fill(store, unit(rng.standard_normal((50, DIM))))
    index = VectorIndex(exact_bytes=exact_bytes)
    target = unit(rng.standard_normal(DIM))
    assert index.search(store, target, 1)[0][1] < 0.999

    (new_id,) = fill(store, target[None], start=100)
    assert index.search(store, target, 1)[0] == (new_id, pytest.approx(1.0, abs=1e-5))

    with store.write():
        store.delete_images([new_id])
    assert new_id not in [i for i, _ in index.search(store, target, 60)]

    other = unit(rng.standard_normal(DIM))
    record = store.image(ids[5])
    assert record is not None
    with store.write():
        image = NewImage(record.folder_id, record.path, 2, 2, "changed", 1, 1, None)
        store.replace_image(ids[5], image, other)
    assert index.search(store, other, 1)[0] == (ids[5], pytest.approx(1.0, abs=1e-5))
    assert len(index) == 50


def searched_once(store: Store, rng: np.random.Generator) -> tuple[VectorIndex, np.ndarray]:
    """An index over 20 random photos that has answered one search, and a query unlike them."""
    fill(store, unit(rng.standard_normal((20, DIM))))
    index = VectorIndex()
    target = unit(rng.standard_normal(DIM))
    index.search(store, target, 5)
    return index, target


def test_sees_commits_of_other_connections(store: Store, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    index, target = searched_once(store, rng)
    with Store(tmp_path / "lib.db") as writer:
        (new_id,) = fill(writer, target[None], start=100)
    assert index.search(store, target, 1)[0][0] == new_id


def test_commit_landing_while_the_index_reads_is_not_missed(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another connection commits just after the index took its snapshot: the next
    # search must notice, or the new photo stays unsearchable until some later commit.
    rng = np.random.default_rng(6)
    index, target = searched_once(store, rng)
    with Store(tmp_path / "lib.db") as writer:
        fill(writer, unit(rng.standard_normal((1, DIM))), start=50)  # makes the next search read
        original = VectorIndex._update
        landed: list[int] = []

        def update_then_commit(self: VectorIndex, s: Store, ids: np.ndarray, stamps: np.ndarray) -> bool:
            done = original(self, s, ids, stamps)
            if not landed:
                landed.extend(fill(writer, target[None], start=100))
            return done

        monkeypatch.setattr(VectorIndex, "_update", update_then_commit)
        index.search(store, target, 1)
        monkeypatch.setattr(VectorIndex, "_update", original)
    assert index.search(store, target, 1)[0][0] == landed[0]


def test_unchanged_library_is_not_read_again(store: Store) -> None:
    fill(store, unit(np.random.default_rng(5).standard_normal((30, DIM))))
    index = VectorIndex()
    query = unit(np.ones(DIM))
    index.search(store, query, 5)
    index.search(store, query, 5)
    assert index.rebuilds == 1


def test_more_results_than_sqlite_vec_allows(store: Store) -> None:
    rng = np.random.default_rng(6)
    fill(store, unit(rng.standard_normal((MAX_KNN + 500, DIM))))
    encoder = ColourEncoder()
    searcher = Searcher(store, encoder)
    pairs = searcher.rank(unit(rng.standard_normal(DIM)), MAX_KNN + 100)
    assert len(pairs) == MAX_KNN + 100
    scores = [s for _, s in pairs]
    assert scores == sorted(scores, reverse=True)


def test_empty_library(store: Store) -> None:
    assert VectorIndex().search(store, unit(np.ones(DIM)), 10) == []


def test_library_search_same_with_and_without_index(photos: Path, db_path: Path) -> None:
    from clipdesk._library import Library, LibraryOptions
    from clipdesk._search import Query

    from clipdesk._testing.colours import ColourEncoder

    with Library(LibraryOptions(db_path=db_path, model=ColourEncoder.model_id)) as library:
        library.index([str(photos)])
        with_index = library.search(Query(texts=("red",), negatives=("blue",), limit=8))
        assert library.vector_index is not None and len(library.vector_index) == 8
    options = LibraryOptions(db_path=db_path, model=ColourEncoder.model_id, memory_index=False)
    with Library(options) as library:
        without = library.search(Query(texts=("red",), negatives=("blue",), limit=8))
        assert library.vector_index is None
    # Equal photos score equally; either may come first.
    assert sorted((round(h.score, 4), h.path) for h in with_index) == sorted(
        (round(h.score, 4), h.path) for h in without
    )
    assert "red" in with_index[0].path


def test_a_large_library_is_read_in_the_background_while_searches_go_on(
    db_path: Path, photos: Path
) -> None:
    # The first search of a large library must not wait seconds for the index:
    # sqlite-vec answers (same ranking) while the index is read on its own thread.
    with Library(LibraryOptions(db_path, model=COLOUR_MODEL)) as lib:
        lib.index([str(photos)])
        assert lib.vector_index is not None
        lib.vector_index.exact_bytes = 0  # "large": binary mode
        first = lib.search(Query(texts=("red",), limit=3))
        wait_until(lambda: not lib.vector_index.building)
        assert lib.vector_index.rebuilds == 1 and not lib.vector_index.exact
        later = lib.search(Query(texts=("red",), limit=3))
    assert sorted(Path(h.path).stem for h in first) == ["red1", "red2", "red3"]
    # The three reds tie, so only their order among themselves may differ.
    assert sorted(h.image_id for h in later) == sorted(h.image_id for h in first)
    assert [h.score for h in later] == pytest.approx([h.score for h in first], abs=1e-5)


def test_closing_stops_a_background_read(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Closing must not wait for a long read to finish: the read stops at its next chunk.
    # (How long close takes is a figure in benchmarks/bench_vectorindex.py.)
    fill(store, unit(np.random.default_rng(8).standard_normal((40, DIM))))
    started, release = threading.Event(), threading.Event()
    chunks_read: list[int] = []
    real = Store.iter_vectors

    def slow(self: Store, batch: int = 10_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for chunk in real(self, 5):  # 8 chunks
            chunks_read.append(len(chunk[0]))
            started.set()
            release.wait(10)  # a read that would take long
            yield chunk

    monkeypatch.setattr(Store, "iter_vectors", slow)
    index = VectorIndex(exact_bytes=0)
    assert index.search_if_ready(store, unit(np.ones(DIM)), 5) is None
    assert started.wait(5) and index.building
    closer = threading.Thread(target=index.close)
    closer.start()
    assert index._cancel.wait(5)  # close has asked the read to stop ...
    release.set()  # ... and only now does the slow chunk arrive
    closer.join(10)
    assert not closer.is_alive() and not index.building and index.rebuilds == 0
    assert len(chunks_read) < 8


def test_binary_mode_needs_no_unix_only_file_calls(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # Windows has no os.pwrite/pread/preadv: a large library must get its index there too.
    for name in ("pwrite", "pwritev", "pread", "preadv"):
        monkeypatch.delattr(os, name, raising=False)
    rng = np.random.default_rng(9)
    fill(store, unit(rng.standard_normal((300, DIM))))
    index = VectorIndex(exact_bytes=0)
    for query in unit(rng.standard_normal((5, DIM))):
        assert [i for i, _ in index.search(store, query, 10)] == exact(store, query, 10)
    assert not index.exact
    monkeypatch.setattr(vectorindex, "REBUILD_RATIO", 1)  # a change too small for a full read
    fill(store, unit(rng.standard_normal((1, DIM))), start=1000)  # so it is appended to the file
    query = unit(rng.standard_normal(DIM))
    assert [i for i, _ in index.search(store, query, 10)] == exact(store, query, 10)
    assert index.rebuilds == 1
