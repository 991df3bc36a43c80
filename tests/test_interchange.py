"""Export to Parquet, npz, FAISS and Chroma, read back with each format's own library, and
import of a Parquet or npz export into a new library without re-encoding."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from clipdesk import _interchange as interchange
from clipdesk._errors import ClipdeskError, UsageError
from clipdesk._library import Library, LibraryOptions
from clipdesk._search import Query
from clipdesk._store import NewImage, Store
from clipdesk._testing.colours import ColourEncoder

from conftest import COLOUR_MODEL, make_photo

QUERIES = ["red", "green", "blue white", "purple", "orange yellow"]
PHOTOS = 36


def clipdesk(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`clipdesk ARGS...` in its own process, as a user runs it."""
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(data_dir), PYTHONWARNINGS="ignore")
    result = subprocess.run(
        [sys.executable, "-m", "clipdesk", *args],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"clipdesk {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def search(data_dir: Path, db: Path, query: str, *extra: str) -> list[dict[str, object]]:
    out = clipdesk(data_dir, "search", *query.split(), "-n", "10", "--json", "--db", str(db), *extra)
    hits: list[dict[str, object]] = json.loads(out.stdout)
    return hits


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    """(data dir, library, photo folder): photos of distinct random colours (so no two
    photos tie in a ranking), in two levels, indexed with the colour encoder."""
    root = tmp_path_factory.mktemp("interchange")
    photos = root / "photos"
    rng = random.Random(14)
    for i in range(PHOTOS):
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        make_photo(photos / ("trip" if i % 3 == 0 else "") / f"p{i:02d}.{'png' if i % 4 == 0 else 'jpg'}", colour)
    data, db = root / "data", root / "library.db"
    clipdesk(data, "index", str(photos), "--db", str(db), "--model", COLOUR_MODEL)
    yield data, db, photos


@pytest.fixture(scope="module")
def expected(indexed: tuple[Path, Path, Path]) -> dict[str, list[dict[str, object]]]:
    """`clipdesk search` for each query: what every export must answer too."""
    data, db, _ = indexed
    return {q: search(data, db, q) for q in QUERIES}


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Several chunks (row groups, npz spool pieces, import batches) even for a small library.
    monkeypatch.setattr(interchange, "_CHUNK", 7)


def export(db: Path, target: Path, fmt: str, progress: interchange.ExportProgress | None = None) -> interchange.ExportReport:
    with Library(LibraryOptions(db_path=db), create=False) as library:
        return interchange.export_library(library, target, fmt, progress)


def text_vector(query: str) -> np.ndarray:
    vector: np.ndarray = ColourEncoder().encode_texts([query])[0]
    return vector


def paths_of(hits: list[dict[str, object]]) -> list[object]:
    return [h["path"] for h in hits]


def test_parquet_ranks_like_clipdesk_search(indexed, expected, tmp_path, small_chunks) -> None:
    import pyarrow.parquet as pq

    _, db, _ = indexed
    seen: list[tuple[int, int]] = []
    report = export(db, tmp_path / "out", "parquet", lambda done, total: seen.append((done, total)))
    assert report.photos == PHOTOS
    assert len(seen) > 1 and seen[-1] == (PHOTOS, PHOTOS)  # a chunk at a time
    table = pq.read_table(tmp_path / "out" / "clipdesk.parquet")
    meta = json.loads(table.schema.metadata[b"clipdesk"])
    assert (meta["model_id"], meta["dim"]) == (COLOUR_MODEL, ColourEncoder.dim)
    vectors = np.stack(table.column("vector").to_numpy(zero_copy_only=False))
    paths = table.column("path").to_pylist()
    for query, hits in expected.items():
        scores = vectors @ text_vector(query)
        top = np.argsort(-scores)[:10]
        assert [paths[i] for i in top] == paths_of(hits), query
        assert np.allclose(scores[top], [h["score"] for h in hits], atol=1e-5)
    # The photo facts travel with the vectors, as `search --json` gives them.
    rows = {r["path"]: r for r in table.select(["path", "width", "height", "type", "size", "taken_at"]).to_pylist()}
    for hit in expected["red"]:
        assert rows[hit["path"]] == {k: hit[k] for k in ("path", "width", "height", "type", "size", "taken_at")}


def test_npz_ranks_like_clipdesk_search(indexed, expected, tmp_path, small_chunks) -> None:
    _, db, _ = indexed
    export(db, tmp_path / "out", "npz")
    with np.load(tmp_path / "out" / "clipdesk.npz") as data:  # no pickles: allow_pickle stays off
        vectors, paths = data["vectors"], data["path"]
        assert json.loads(str(data["meta"]))["model_id"] == COLOUR_MODEL
        sizes = dict(zip(data["path"].tolist(), data["size"].tolist()))
    assert vectors.shape == (PHOTOS, ColourEncoder.dim) and vectors.dtype == np.float32
    for query, hits in expected.items():
        top = np.argsort(-(vectors @ text_vector(query)))[:10]
        assert [str(paths[i]) for i in top] == paths_of(hits), query
    assert all(sizes[h["path"]] == h["size"] for h in expected["green"])


def test_faiss_ranks_like_clipdesk_search(indexed, expected, tmp_path, small_chunks) -> None:
    import faiss
    import pyarrow.parquet as pq

    _, db, _ = indexed
    report = export(db, tmp_path / "out", "faiss")
    assert report.files == ("clipdesk.faiss", "clipdesk-paths.parquet")
    index = faiss.read_index(str(tmp_path / "out" / "clipdesk.faiss"))
    paths = pq.read_table(tmp_path / "out" / "clipdesk-paths.parquet").column("path").to_pylist()
    assert index.ntotal == len(paths) == PHOTOS
    for query, hits in expected.items():
        scores, ids = index.search(text_vector(query)[None, :], 10)
        assert [paths[i] for i in ids[0]] == paths_of(hits), query
        assert np.allclose(scores[0], [h["score"] for h in hits], atol=1e-5)


def test_chroma_ranks_like_clipdesk_search(indexed, expected, tmp_path, small_chunks) -> None:
    import chromadb
    from chromadb.config import Settings

    _, db, _ = indexed
    export(db, tmp_path / "out", "chroma")
    client = chromadb.PersistentClient(path=str(tmp_path / "out" / "chroma"), settings=Settings(anonymized_telemetry=False))
    collection = client.get_collection("clipdesk")
    assert collection.count() == PHOTOS
    assert collection.metadata["model_id"] == COLOUR_MODEL
    for query, hits in expected.items():
        found = collection.query(query_embeddings=[text_vector(query)], n_results=10)
        assert [m["path"] for m in found["metadatas"][0]] == paths_of(hits), query
        # Chroma's cosine distance is 1 - the cosine clipdesk scores with.
        assert np.allclose(1 - np.asarray(found["distances"][0]), [h["score"] for h in hits], atol=1e-4)


def test_cli_export_writes_each_format_and_never_overwrites(indexed, tmp_path) -> None:
    data, db, _ = indexed
    out = tmp_path / "out"
    for fmt, names in [("npz", ["clipdesk.npz"]), ("faiss", ["clipdesk.faiss", "clipdesk-paths.parquet"])]:
        result = json.loads(clipdesk(data, "export", str(out), "--format", fmt, "--db", str(db), "--json").stdout)
        assert result["photos"] == PHOTOS and result["files"] == [str(out / n) for n in names]
    again = clipdesk(data, "export", str(out), "--format", "npz", "--db", str(db), check=False)
    assert again.returncode == 1 and "already exists" in again.stderr and len(again.stderr.splitlines()) == 1
    unknown = clipdesk(data, "export", str(out), "--format", "xml", "--db", str(db), check=False)
    assert unknown.returncode == 2
    assert sorted(p.name for p in out.iterdir()) == ["clipdesk-paths.parquet", "clipdesk.faiss", "clipdesk.npz"]
    # Like the library, an export holds the paths, dates and places of the user's photos.
    assert all(p.stat().st_mode & 0o077 == 0 for p in out.iterdir())


@pytest.mark.parametrize("fmt", ["parquet", "npz"])
def test_import_restores_a_library_without_encoding(indexed, expected, tmp_path, small_chunks, monkeypatch, fmt) -> None:
    data, db, photos = indexed
    export(db, tmp_path / "out", fmt)
    moved = tmp_path / "elsewhere" / "pictures"
    shutil.copytree(photos, moved)  # copy2: the files keep their times, as rsync -a does
    new_db = tmp_path / "new.db"

    def no_model(*args: object, **kwargs: object) -> object:
        raise AssertionError("import must not load the model")

    monkeypatch.setattr("clipdesk._library.load_encoder", no_model)
    with Library(LibraryOptions(db_path=new_db)) as library:
        report = interchange.import_library(
            library, tmp_path / "out" / f"clipdesk.{fmt}", [f"{photos}={moved}"]
        )
    assert report.photos == PHOTOS and report.folders == [str(moved)] and report.missing_folders == []
    monkeypatch.undo()  # searching needs the (colour) model, of course

    def moved_paths(hits: list[dict[str, object]]) -> list[str]:
        return [str(h["path"]).replace(str(photos), str(moved)) for h in hits]

    example = Path(str(expected["red"][0]["path"]))
    old_similar = search(data, db, "", "--like", str(example))
    with Library(LibraryOptions(db_path=new_db, model=COLOUR_MODEL, memory_index=False), create=False) as library:
        for query, hits in expected.items():
            again = library.search(Query(texts=(query,), limit=10))
            assert [h.path for h in again] == moved_paths(hits), query
            assert [round(h.score, 6) for h in again] == [h["score"] for h in hits]
        # Search by example finds the photo's own stored vector at its new path.
        like = library.search(Query(like=(str(moved / example.relative_to(photos)),), limit=10))
        assert [h.path for h in like] == moved_paths(old_similar)
    # The photo facts (and the filters on them) are as in the library exported.
    old_list = json.loads(clipdesk(data, "list", "--json", "--db", str(db)).stdout)
    new_list = json.loads(clipdesk(data, "list", "--json", "--db", str(new_db)).stdout)
    assert new_list == [dict(p, path=p["path"].replace(str(photos), str(moved))) for p in old_list]
    # A later index finds every photo unchanged: nothing is read or encoded again.
    first = json.loads(clipdesk(data, "index", "--json", "--db", str(new_db)).stdout)
    assert (first["unchanged"], first["encoded"], first["indexed"]) == (PHOTOS, 0, 0)


def test_files_copied_without_their_times_are_hashed_not_encoded(indexed, tmp_path) -> None:
    data, db, photos = indexed
    export(db, tmp_path / "out", "npz")
    moved = tmp_path / "pictures"
    shutil.copytree(photos, moved, copy_function=shutil.copyfile)  # new mtimes, as a plain cp gives
    new_db = tmp_path / "new.db"
    clipdesk(data, "import", str(tmp_path / "out"), "--db", str(new_db), "--map", f"{photos}={moved}")
    report = json.loads(clipdesk(data, "index", "--json", "--db", str(new_db)).stdout)
    assert report["encoded"] == 0 and report["failed"] == []
    assert json.loads(clipdesk(data, "status", "--json", "--db", str(new_db)).stdout)["images"] == PHOTOS
    # …and from then on they are known by this machine's times.
    assert json.loads(clipdesk(data, "index", "--json", "--db", str(new_db)).stdout)["unchanged"] == PHOTOS


def test_import_without_map_keeps_paths_and_reports_missing_folders(indexed, tmp_path) -> None:
    data, db, photos = indexed
    export(db, tmp_path / "out", "parquet")
    gone = tmp_path / "gone"
    out = clipdesk(data, "import", str(tmp_path / "out" / "clipdesk.parquet"), "--db", str(tmp_path / "n.db"),
                   "--map", f"{photos}={gone}")
    assert f"not on this disk (yet): {gone}" in out.stderr
    assert json.loads(clipdesk(data, "status", "--json", "--db", str(tmp_path / "n.db")).stdout)["images"] == PHOTOS


def test_map_of_an_inner_folder_moves_only_its_photos(indexed, tmp_path) -> None:
    data, db, photos = indexed
    export(db, tmp_path / "out", "npz")
    trip = tmp_path / "trip-elsewhere"
    new_db = tmp_path / "n.db"
    clipdesk(data, "import", str(tmp_path / "out"), "--db", str(new_db), "--map", f"{photos}/trip={trip}")
    listed = [p["path"] for p in json.loads(clipdesk(data, "list", "--json", "--db", str(new_db)).stdout)]
    assert sum(p.startswith(str(trip) + "/") for p in listed) == PHOTOS // 3
    assert sum(p.startswith(str(photos) + "/") for p in listed) == PHOTOS - PHOTOS // 3
    folders = {f["path"] for f in json.loads(clipdesk(data, "status", "--json", "--db", str(new_db)).stdout)["folders"]}
    assert folders == {str(photos), str(trip)}


def test_names_that_are_not_utf8_round_trip(tmp_path, small_chunks) -> None:
    photos = tmp_path / "photos"
    odd = os.fsdecode(os.fsencode(str(photos)) + b"/caf\xe9.jpg")
    make_photo(Path(odd), "red")
    make_photo(photos / "plain.jpg", "blue")
    db = tmp_path / "a.db"
    with Library(LibraryOptions(db_path=db, model=COLOUR_MODEL)) as library:
        library.index([str(photos)])
    for fmt in ("parquet", "npz"):
        export(db, tmp_path / fmt, fmt)
        with Library(LibraryOptions(db_path=tmp_path / f"{fmt}.db")) as library:
            interchange.import_library(library, tmp_path / fmt)
            assert sorted(library.store.ids_and_paths()[1]) == sorted([odd, str(photos / "plain.jpg")])


# -- refusals -----------------------------------------------------------------


def one_line_refusal(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("clipdesk: ")
    for word in words:
        assert word in result.stderr


def test_import_refuses_a_file_that_is_not_an_export(indexed, tmp_path) -> None:
    data, db, _ = indexed
    new_db = tmp_path / "n.db"
    (tmp_path / "notes.parquet").write_text("not a table")
    one_line_refusal(clipdesk(data, "import", str(tmp_path / "notes.parquet"), "--db", str(new_db), check=False),
                     "not a Parquet or npz export")
    export(db, tmp_path / "out", "faiss")
    one_line_refusal(clipdesk(data, "import", str(tmp_path / "out" / "clipdesk.faiss"), "--db", str(new_db), check=False),
                     "not a Parquet or npz export")
    one_line_refusal(clipdesk(data, "import", str(tmp_path / "out"), "--db", str(new_db), check=False),
                     "No Parquet or npz export")
    one_line_refusal(clipdesk(data, "import", str(tmp_path / "nothing.npz"), "--db", str(new_db), check=False),
                     "No file")
    assert not new_db.exists()  # refused before a library was made


@pytest.mark.parametrize("fmt", ["parquet", "npz"])
def test_import_refuses_a_damaged_export_and_changes_nothing(indexed, tmp_path, fmt) -> None:
    data, db, _ = indexed
    export(db, tmp_path / "out", fmt)
    whole = (tmp_path / "out" / f"clipdesk.{fmt}").read_bytes()
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(whole[: len(whole) // 2])
    new_db = tmp_path / "n.db"
    one_line_refusal(clipdesk(data, "import", str(cut), "--db", str(new_db), check=False), "damaged")
    # Damage inside the data (the vectors' bytes), found only while reading it.
    flipped = bytearray(whole)
    middle = len(whole) // 3
    flipped[middle : middle + 64] = bytes(b ^ 0x5A for b in flipped[middle : middle + 64])
    bad = tmp_path / f"bad.{fmt}"
    bad.write_bytes(bytes(flipped))
    result = clipdesk(data, "import", str(bad), "--db", str(new_db), check=False)
    one_line_refusal(result, "damaged")
    if new_db.exists():
        status = json.loads(clipdesk(data, "status", "--json", "--db", str(new_db)).stdout)
        assert status["images"] == 0 and status["folders"] == []


def test_import_refuses_another_model(indexed, tmp_path) -> None:
    data, db, photos = indexed
    export(db, tmp_path / "out", "npz")
    new_db = tmp_path / "n.db"
    one_line_refusal(
        clipdesk(data, "import", str(tmp_path / "out"), "--db", str(new_db), "--model", "ViT-B/32", check=False),
        "clip-vit-base-patch32", COLOUR_MODEL,
    )
    assert not new_db.exists()
    # A library that holds another model's vectors.
    other = tmp_path / "other.db"
    with Store(other) as store:
        store.bind_model("someone/else", ColourEncoder.dim)
        folder = store.add_folder(str(photos))
        with store.write():
            store.insert_image(NewImage(folder.id, str(photos / "x.jpg"), 1, 1, "h", 1, 1, None), np.ones(ColourEncoder.dim))
    one_line_refusal(clipdesk(data, "import", str(tmp_path / "out"), "--db", str(other), check=False),
                     "someone/else", COLOUR_MODEL, "new library")


def test_export_refusals(indexed, tmp_path, monkeypatch) -> None:
    _, db, _ = indexed
    with Library(LibraryOptions(db_path=db), create=False) as library:
        with pytest.raises(UsageError, match="Unknown export format 'xml'"):
            interchange.export_library(library, tmp_path, "xml")
        monkeypatch.setitem(sys.modules, "faiss", None)  # as if faiss-cpu were not installed
        with pytest.raises(ClipdeskError, match=r"clipdesk\[export\]"):
            interchange.export_library(library, tmp_path / "out", "faiss")
    assert not (tmp_path / "out").exists()
    with pytest.raises(UsageError, match="OLD=NEW"):
        interchange.PathMap.parse("/just/one/folder")
    empty = tmp_path / "empty.db"
    Store(empty).close()
    with Library(LibraryOptions(db_path=empty), create=False) as library, pytest.raises(ClipdeskError, match="empty"):
        interchange.export_library(library, tmp_path / "e", "npz")


def test_benchmark_runs(tmp_path) -> None:
    """benchmarks/bench_interchange.py still works (a smoke run; not a speed test)."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_interchange.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--json", "--formats", "parquet,npz"],
        capture_output=True, text=True, timeout=240, check=False, env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert set(result["export"]) == {"parquet", "npz"} and set(result["import"]) == {"parquet", "npz"}
    assert all(e["photos"] == result["photos"] and e["bytes"] > 0 for e in result["export"].values())
    assert all(e["photos"] == result["photos"] for e in result["import"].values())


def test_photos_without_a_usable_vector_are_left_out(tmp_path) -> None:
    import faiss

    db = tmp_path / "a.db"
    dim = ColourEncoder.dim
    with Store(db) as store:
        store.bind_model(COLOUR_MODEL, dim)
        folder = store.add_folder(str(tmp_path / "photos"))
        with store.write():
            for i, vector in enumerate([np.eye(dim)[0], np.full(dim, np.nan), np.eye(dim)[1]]):
                image = NewImage(folder.id, str(tmp_path / "photos" / f"{i}.jpg"), 10, 10, f"h{i}", 4, 4, None)
                store.insert_image(image, vector)
    assert export(db, tmp_path / "out", "faiss").photos == 2
    index = faiss.read_index(str(tmp_path / "out" / "clipdesk.faiss"))
    assert index.ntotal == 2
    _, ids = index.search(np.eye(dim, dtype=np.float32)[1:2], 1)
    import pyarrow.parquet as pq

    paths = pq.read_table(tmp_path / "out" / "clipdesk-paths.parquet").column("path").to_pylist()
    assert paths[ids[0][0]] == str(tmp_path / "photos" / "2.jpg")
