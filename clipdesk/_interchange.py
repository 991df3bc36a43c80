"""A library's vectors and photo facts as files other tools read, and a library restored from them.

`export_library` writes Parquet, npz, a FAISS index or a Chroma collection;
`import_library` restores a library from a Parquet or npz export without
re-encoding. Both stream a chunk of photos at a time, so a million vectors are
never held twice. pyarrow, faiss-cpu and chromadb are optional (`clipdesk[export]`).

Layout (format 1): one row per photo, in the `COLUMNS` below, plus `vector`
(float32, unit length, so an inner product is the cosine clipdesk ranks by).
The model and the library's folders travel as JSON: the Parquet schema's
`clipdesk` metadata, or the npz member `meta`.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import secrets
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from ._encoder import normalise
from ._errors import ClipdeskError, ModelMismatch, UsageError
from ._facts import FACTS_VERSION, Facts, date_taken
from ._models import parse
from ._paths import FolderSet, display, folder_holding, is_within, make_private_dir
from ._store import MODEL_FINGERPRINT, NewImage, Store

if TYPE_CHECKING:
    from ._library import Library

log = logging.getLogger(__name__)

ExportProgress = Callable[[int, int], None]  # (photos done, photos in all)

FORMAT_NAME = "clipdesk-export"
FORMAT_VERSION = 1
CHROMA_COLLECTION = "clipdesk"
_CHUNK = 8192  # photos per Parquet row group / per import transaction

# npz has no nulls: a missing integer is this, a missing float NaN, missing text "".
NPZ_NO_INT = int(np.iinfo(np.int64).min)


class ExportFormat(enum.Enum):
    PARQUET = "parquet"
    NPZ = "npz"
    FAISS = "faiss"
    CHROMA = "chroma"


# What each format writes into the export folder.
OUTPUT_NAMES = {
    ExportFormat.PARQUET: ("clipdesk.parquet",),
    ExportFormat.NPZ: ("clipdesk.npz",),
    ExportFormat.FAISS: ("clipdesk.faiss", "clipdesk-paths.parquet"),
    ExportFormat.CHROMA: ("chroma",),
}


class Kind(enum.Enum):
    TEXT = "text"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind


# The first group is what `search --json` says about a photo; the second is what a
# restored library needs to treat the photo as indexed (and to notice when it changes).
COLUMNS: tuple[Column, ...] = (
    Column("path", Kind.TEXT),
    Column("taken_at", Kind.TEXT),  # ISO 8601, with the camera's offset when known
    Column("taken_from", Kind.TEXT),  # "exif", or "file" (the file's modification time)
    Column("camera", Kind.TEXT),
    Column("width", Kind.INT),
    Column("height", Kind.INT),
    Column("type", Kind.TEXT),
    Column("size", Kind.INT),
    Column("lens", Kind.TEXT),
    Column("latitude", Kind.FLOAT),
    Column("longitude", Kind.FLOAT),
    Column("exif_taken_at", Kind.TEXT),
    Column("taken_offset", Kind.TEXT),
    Column("camera_make", Kind.TEXT),
    Column("camera_model", Kind.TEXT),
    Column("mtime_ns", Kind.INT),
    Column("content_hash", Kind.TEXT),
    Column("phash", Kind.INT),
    Column("facts_read", Kind.BOOL),
)
_NAMES = tuple(c.name for c in COLUMNS)


@dataclass
class _Chunk:
    """Some photos, column by column (None where a value is unknown), and their vectors."""

    columns: dict[str, list[Any]]
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.vectors)


@dataclass(frozen=True)
class ExportReport:
    photos: int
    files: tuple[str, ...]  # what was written, in the export folder
    seconds: float


@dataclass
class ImportReport:
    photos: int = 0
    folders: list[str] = field(default_factory=list)
    missing_folders: list[str] = field(default_factory=list)  # not on this disk (yet)
    seconds: float = 0.0


def _need(module: str, what: str) -> Any:
    """Import an optional library, or say in one line how to get it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ClipdeskError(
            f"{what} needs the Python package '{module.split('.')[0]}': install clipdesk[export] "
            "(pip install 'clipdesk[export]')."
        ) from None


def parse_format(name: str) -> ExportFormat:
    try:
        return ExportFormat(name.lower())
    except ValueError:
        known = ", ".join(f.value for f in ExportFormat)
        raise UsageError(f"Unknown export format '{name}'; choose one of {known}.") from None


# -- export -------------------------------------------------------------------


def _rows(store: Store, ids: np.ndarray, vectors: np.ndarray) -> _Chunk:
    records = store.images(int(i) for i in ids)
    phashes = store.phashes([int(i) for i in ids])
    keep = [row for row, i in enumerate(ids) if int(i) in records]
    columns: dict[str, list[Any]] = {name: [] for name in _NAMES}
    for row in keep:
        image_id = int(ids[row])
        record = records[image_id]
        facts = record.facts
        taken, source = date_taken(record.taken_at, facts.taken_offset if facts else None, record.mtime_ns)
        values: dict[str, Any] = {
            "path": record.path,
            "taken_at": taken,
            "taken_from": source.value,
            "camera": facts.camera if facts else None,
            "width": record.width,
            "height": record.height,
            "type": facts.file_type if facts else None,
            "size": record.size,
            "lens": facts.lens if facts else None,
            "latitude": facts.latitude if facts else None,
            "longitude": facts.longitude if facts else None,
            "exif_taken_at": record.taken_at,
            "taken_offset": facts.taken_offset if facts else None,
            "camera_make": facts.camera_make if facts else None,
            "camera_model": facts.camera_model if facts else None,
            "mtime_ns": record.mtime_ns,
            "content_hash": record.hash,
            "phash": phashes.get(image_id),
            "facts_read": facts is not None,
        }
        for name in _NAMES:
            columns[name].append(values[name])
    return _Chunk(columns, normalise(vectors[keep]))


def _chunks(store: Store) -> Iterator[_Chunk]:
    """Every photo with a usable vector, a few thousand at a time (call inside a snapshot)."""
    ids_parts: list[np.ndarray] = []
    vec_parts: list[np.ndarray] = []
    pending = 0
    for ids, vecs in store.iter_vectors():
        ids_parts.append(ids)
        vec_parts.append(vecs)
        pending += len(ids)
        if pending >= _CHUNK:
            all_ids, all_vecs = np.concatenate(ids_parts), np.concatenate(vec_parts)
            whole = pending - pending % _CHUNK
            for start in range(0, whole, _CHUNK):
                yield _rows(store, all_ids[start : start + _CHUNK], all_vecs[start : start + _CHUNK])
            ids_parts, vec_parts, pending = [all_ids[whole:]], [all_vecs[whole:]], pending - whole
    if pending:
        yield _rows(store, np.concatenate(ids_parts), np.concatenate(vec_parts))


def _meta(store: Store) -> dict[str, Any]:
    from . import __version__

    model = store.model()
    assert model is not None
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "model_id": model.model_id,
        "dim": model.dim,
        "model_fingerprint": store.meta(MODEL_FINGERPRINT),
        # Facts read by other rules (another clipdesk) are read again after an import.
        "facts_version": FACTS_VERSION,
        # JSON escapes the surrogates of names that are not UTF-8, so these round-trip.
        "folders": [{"path": f.path, "watched": f.watched} for f in store.folder_roots()],
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "clipdesk": __version__,
    }


def export_library(
    library: Library,
    directory: str | Path,
    fmt: ExportFormat | str,
    progress: ExportProgress | None = None,
) -> ExportReport:
    """Write the library's photos, facts, model and vectors into `directory` in one format.

    Nothing is overwritten: an earlier export of that format in the folder is refused.
    A failure leaves no partial files behind.
    """
    fmt = fmt if isinstance(fmt, ExportFormat) else parse_format(fmt)
    store = library.store
    if store.model() is None or store.count_images() == 0:
        raise ClipdeskError("The library is empty: index a folder first, then export it.")
    writer = {
        ExportFormat.PARQUET: _write_parquet,
        ExportFormat.NPZ: _write_npz,
        ExportFormat.FAISS: _write_faiss,
        ExportFormat.CHROMA: _write_chroma,
    }[fmt]
    # Checked before anything is read or written.
    for module in _NEEDS[fmt]:
        _need(module, f"Exporting to {fmt.name.title() if fmt is not ExportFormat.FAISS else 'FAISS'}")
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise ClipdeskError(f"{display(str(target))} is a file; give a folder to export into.")
    for name in OUTPUT_NAMES[fmt]:
        if (target / name).exists():
            raise ClipdeskError(
                f"{display(str(target / name))} already exists; choose another folder or delete it first."
            )
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ClipdeskError(f"Cannot create the folder {display(str(target))}: {exc.strerror or exc}.") from None
    start = time.monotonic()
    total = store.count_images()
    done = 0

    def chunks() -> Iterator[_Chunk]:
        nonlocal done
        for chunk in _chunks(store):
            yield chunk
            done += len(chunk)
            if progress is not None:
                progress(done, max(total, done))

    try:
        with store.snapshot():
            meta = _meta(store)
            writer(target, meta, chunks(), store.count_images())
    except OSError as exc:
        raise ClipdeskError(f"Could not write the export into {display(str(target))}: {exc.strerror or exc}.") from None
    return ExportReport(done, OUTPUT_NAMES[fmt], time.monotonic() - start)


_NEEDS = {
    ExportFormat.PARQUET: ("pyarrow.parquet",),
    ExportFormat.NPZ: (),
    ExportFormat.FAISS: ("faiss", "pyarrow.parquet"),
    ExportFormat.CHROMA: ("chromadb",),
}


@contextlib.contextmanager
def _staged(final: Path) -> Iterator[Path]:
    """A temporary name beside `final`, renamed to it only when the block succeeds.

    The file is made readable by its owner only, like the library it copies (it
    holds the paths, dates and places of the user's photos)."""
    temp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.part")
    try:
        yield temp
        temp.chmod(0o600)
        os.replace(temp, final)
    finally:
        if temp.is_dir():
            shutil.rmtree(temp, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                temp.unlink()


def _arrow_schema(dim: int | None, meta: dict[str, Any]) -> Any:
    import pyarrow as pa

    types = {Kind.TEXT: pa.string(), Kind.INT: pa.int64(), Kind.FLOAT: pa.float64(), Kind.BOOL: pa.bool_()}
    fields = [pa.field(c.name, types[c.kind], nullable=c.name != "path") for c in COLUMNS]
    # Only for names that are not UTF-8 (Parquet text must be): the name's raw bytes.
    fields.insert(1, pa.field("path_raw", pa.binary()))
    if dim is not None:
        fields.append(pa.field("vector", pa.list_(pa.float32(), dim), nullable=False))
    return pa.schema(fields, metadata={"clipdesk": json.dumps(meta)})


def _arrow_table(chunk: _Chunk, schema: Any) -> Any:
    import pyarrow as pa

    arrays = []
    for f in schema:
        if f.name == "path":
            arrays.append(pa.array([display(p) for p in chunk.columns["path"]], f.type))
        elif f.name == "path_raw":
            arrays.append(pa.array([None if display(p) == p else os.fsencode(p) for p in chunk.columns["path"]], f.type))
        elif f.name == "vector":
            flat = pa.array(np.ascontiguousarray(chunk.vectors, dtype=np.float32).ravel(), pa.float32())
            arrays.append(pa.FixedSizeListArray.from_arrays(flat, f.type.list_size))
        else:
            arrays.append(pa.array(chunk.columns[f.name], f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _write_table(path: Path, meta: dict[str, Any], chunks: Iterator[_Chunk], *, vectors: bool) -> int:
    """A Parquet file, one row group per chunk; returns how many rows it holds."""
    import pyarrow.parquet as pq

    schema = _arrow_schema(meta["dim"] if vectors else None, meta)
    rows = 0
    # Page checksums let an import tell damaged data from other numbers.
    with _staged(path) as temp, pq.ParquetWriter(temp, schema, write_page_checksum=True) as out:
        for chunk in chunks:
            out.write_table(_arrow_table(chunk, schema))
            rows += len(chunk)
    return rows


def _write_parquet(target: Path, meta: dict[str, Any], chunks: Iterator[_Chunk], expected: int) -> None:
    _write_table(target / "clipdesk.parquet", meta, chunks, vectors=True)


def _write_faiss(target: Path, meta: dict[str, Any], chunks: Iterator[_Chunk], expected: int) -> None:
    import faiss

    # Exact inner-product search: on unit vectors, the cosine clipdesk ranks by.
    # Ids are row numbers in clipdesk-paths.parquet. FAISS holds the whole index in
    # memory; `add` grows it by doubling (up to three copies of the vectors while it
    # reallocates), so its storage is sized once, for the photos counted, and filled
    # in place: one copy.
    dim = int(meta["dim"])
    index = faiss.IndexFlatIP(dim)
    row_bytes = dim * 4
    index.codes.resize(expected * row_bytes)
    rows = 0

    def added() -> Iterator[_Chunk]:
        nonlocal rows
        for chunk in chunks:
            end = rows + len(chunk)
            if end * row_bytes > index.codes.size():
                index.codes.resize(end * row_bytes)  # more photos than counted (never, in a snapshot)
            storage = faiss.rev_swig_ptr(index.codes.data(), index.codes.size()).view(np.float32)
            storage[rows * dim : end * dim] = chunk.vectors.ravel()
            rows = end
            yield chunk

    with _staged(target / "clipdesk.faiss") as temp:
        _write_table(target / "clipdesk-paths.parquet", meta, added(), vectors=False)
        index.codes.resize(rows * row_bytes)  # photos with an unusable vector were left out
        index.ntotal = rows
        try:
            faiss.write_index(index, str(temp))
        except BaseException:
            with contextlib.suppress(OSError):
                (target / "clipdesk-paths.parquet").unlink()
            raise


def _write_chroma(target: Path, meta: dict[str, Any], chunks: Iterator[_Chunk], expected: int) -> None:
    import chromadb
    from chromadb.config import Settings

    # Written in place (Chroma keeps its files open while the process runs, so it
    # cannot be renamed into place); removed again if the export fails.
    final = target / "chroma"
    try:
        make_private_dir(final)
        client = chromadb.PersistentClient(path=str(final), settings=Settings(anonymized_telemetry=False))
        collection = client.create_collection(
            CHROMA_COLLECTION,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={
                "model_id": meta["model_id"], "dim": meta["dim"],
                "model_fingerprint": meta["model_fingerprint"] or "", "exported_by": f"clipdesk {meta['clipdesk']}",
            },
            embedding_function=None,
        )
        batch = max(1, min(_CHUNK, int(client.get_max_batch_size())))
        shown = [c.name for c in COLUMNS if c.name != "path"]
        for chunk in chunks:
            paths = [display(p) for p in chunk.columns["path"]]
            metadatas = [
                {"path": paths[row]}
                | {name: chunk.columns[name][row] for name in shown if chunk.columns[name][row] is not None}
                for row in range(len(chunk))
            ]
            for start in range(0, len(chunk), batch):
                end = start + batch
                collection.add(
                    ids=paths[start:end],
                    embeddings=chunk.vectors[start:end],
                    metadatas=metadatas[start:end],  # type: ignore[arg-type]
                )
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise


def _write_npz(target: Path, meta: dict[str, Any], chunks: Iterator[_Chunk], expected: int) -> None:
    # An .npy member starts with its shape and dtype (the longest text sets the width),
    # known only after the last chunk: each column is spooled to a scratch file, a
    # chunk at a time, then copied into the archive.
    with tempfile.TemporaryDirectory(dir=target, prefix=".clipdesk-npz-") as scratch:
        spools = {name: open(os.path.join(scratch, name), "wb") for name in (*_NAMES, "vectors")}  # noqa: SIM115
        widths = dict.fromkeys(_NAMES, 1)
        rows = 0
        try:
            for chunk in chunks:
                for c in COLUMNS:
                    array = _npz_column(c, chunk.columns[c.name])
                    if c.kind is Kind.TEXT:
                        widths[c.name] = max(widths[c.name], array.dtype.itemsize // 4)
                    np.save(spools[c.name], array)
                np.save(spools["vectors"], np.ascontiguousarray(chunk.vectors, dtype=np.float32))
                rows += len(chunk)
        finally:
            for handle in spools.values():
                handle.close()
        with _staged(target / "clipdesk.npz") as temp, zipfile.ZipFile(temp, "w", zipfile.ZIP_STORED) as archive:
            meta = dict(meta, photos=rows)
            with archive.open("meta.npy", "w") as out:
                np.lib.format.write_array(out, np.asarray(json.dumps(meta)))
            dim = int(meta["dim"])
            _copy_member(archive, "vectors", os.path.join(scratch, "vectors"), np.dtype(np.float32), (rows, dim))
            for c in COLUMNS:
                dtype = np.dtype(f"<U{widths[c.name]}") if c.kind is Kind.TEXT else _NPZ_DTYPES[c.kind]
                _copy_member(archive, c.name, os.path.join(scratch, c.name), dtype, (rows,))


_NPZ_DTYPES = {Kind.INT: np.dtype(np.int64), Kind.FLOAT: np.dtype(np.float64), Kind.BOOL: np.dtype(np.bool_)}


def _npz_column(column: Column, values: list[Any]) -> np.ndarray:
    if column.kind is Kind.TEXT:
        return np.asarray(["" if v is None else v for v in values], dtype=np.str_)
    if column.kind is Kind.INT:
        return np.asarray([NPZ_NO_INT if v is None else v for v in values], dtype=np.int64)
    if column.kind is Kind.FLOAT:
        return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    return np.asarray(values, dtype=np.bool_)


def _copy_member(archive: zipfile.ZipFile, name: str, spool: str, dtype: np.dtype[Any], shape: tuple[int, ...]) -> None:
    """Write one .npy member of the given shape from the chunks spooled for it."""
    with archive.open(f"{name}.npy", "w", force_zip64=True) as out, open(spool, "rb") as source:
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_2_0(out, header)
        while source.tell() < os.fstat(source.fileno()).st_size:
            out.write(np.ascontiguousarray(np.load(source), dtype=dtype).tobytes())


# -- import -------------------------------------------------------------------


class _Damaged(Exception):
    """The export file is not what its format promises."""


def _damaged(source: Path, why: str) -> UsageError:
    return UsageError(f"{display(str(source))} is damaged or not a complete clipdesk export ({why.rstrip('.')}).")


def _export_file(source: Path) -> Path:
    """The export file itself, given it or the folder it was written into."""
    if source.is_dir():
        for name in ("clipdesk.parquet", "clipdesk.npz"):
            if (source / name).is_file():
                return source / name
        raise UsageError(
            f"No Parquet or npz export in {display(str(source))}; `clipdesk import` reads the "
            "clipdesk.parquet or clipdesk.npz that `clipdesk export --format parquet|npz` writes."
        )
    if not source.exists():
        raise UsageError(f"No file at {display(str(source))}.")
    return source


def _sniff(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise UsageError(f"Cannot read {display(str(path))}: {exc.strerror or exc}.") from None
    if head == b"PAR1":
        return "parquet"
    if head == b"PK\x03\x04":
        return "npz"
    raise UsageError(
        f"{display(str(path))} is not a Parquet or npz export (the only formats `clipdesk import` reads; "
        "FAISS and Chroma exports hold no photo facts to restore a library from)."
    )


def _check_meta(raw: Any) -> dict[str, Any]:
    try:
        meta = json.loads(raw)
    except (TypeError, ValueError):
        raise _Damaged("its description is not readable") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise _Damaged("it carries no clipdesk description")
    if not isinstance(meta.get("version"), int) or meta["version"] > FORMAT_VERSION:
        raise _Damaged(f"export format {meta.get('version')!r}; this clipdesk reads up to {FORMAT_VERSION}")
    if not isinstance(meta.get("model_id"), str) or not isinstance(meta.get("dim"), int) or meta["dim"] < 1:
        raise _Damaged("it names no model")
    folders = meta.get("folders")
    if not isinstance(folders, list) or not all(isinstance(f, dict) and isinstance(f.get("path"), str) for f in folders):
        raise _Damaged("its folder list is not readable")
    return meta


class _ParquetReader:
    def __init__(self, path: Path) -> None:
        pq = _need("pyarrow.parquet", "Importing a Parquet export")
        # pre_buffer (pyarrow's default) keeps every row group read until the file is
        # closed: a whole export's vectors in memory by the end.
        self.file = pq.ParquetFile(path, page_checksum_verification=True, pre_buffer=False)
        raw = (self.file.schema_arrow.metadata or {}).get(b"clipdesk")
        if raw is None:
            raise _Damaged("it carries no clipdesk description")
        self.meta = _check_meta(raw)
        names = set(self.file.schema_arrow.names)
        missing = [n for n in (*_NAMES, "path_raw", "vector") if n not in names]
        if missing:
            raise _Damaged(f"no column {missing[0]!r}")
        self.rows = int(self.file.metadata.num_rows)

    def close(self) -> None:
        self.file.close()

    def chunks(self) -> Iterator[_Chunk]:
        dim = int(self.meta["dim"])
        for batch in self.file.iter_batches(batch_size=_CHUNK, columns=[*_NAMES, "path_raw", "vector"]):
            vec_col = batch.column("vector")
            flat = vec_col.flatten().to_numpy(zero_copy_only=False)
            if vec_col.null_count or len(flat) != len(batch) * dim:
                raise _Damaged("vectors of the wrong size")
            columns = {name: batch.column(name).to_pylist() for name in _NAMES}
            raw = batch.column("path_raw").to_pylist()
            columns["path"] = [os.fsdecode(r) if r is not None else p for p, r in zip(columns["path"], raw)]
            yield _Chunk(columns, np.asarray(flat, dtype=np.float32).reshape(len(batch), dim))


class _NpzReader:
    def __init__(self, path: Path) -> None:
        self.archive = zipfile.ZipFile(path)
        try:
            self._read_meta()
        except BaseException:
            self.archive.close()
            raise

    def close(self) -> None:
        self.archive.close()

    def _read_meta(self) -> None:
        members = set(self.archive.namelist())
        for name in ("meta", "vectors", *_NAMES):
            if f"{name}.npy" not in members:
                raise _Damaged(f"no array {name!r}")
        with self.archive.open("meta.npy") as handle:
            shape, dtype = self._header(handle)
            if shape != () or dtype.kind != "U":
                raise _Damaged("its description is not text")
            self.meta = _check_meta(str(np.frombuffer(handle.read(dtype.itemsize), dtype=dtype)[0]))
        with self.archive.open("vectors.npy") as handle:
            shape, dtype = self._header(handle)
        if len(shape) != 2 or shape[1] != self.meta["dim"] or dtype != np.float32:
            raise _Damaged("vectors of the wrong size")
        self.rows = int(shape[0])

    @staticmethod
    def _header(handle: IO[bytes]) -> tuple[tuple[int, ...], np.dtype[Any]]:
        # Never pickles: an array of Python objects is refused, not loaded.
        version = np.lib.format.read_magic(handle)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(handle)
        if fortran or dtype.hasobject:
            raise _Damaged("an array clipdesk does not write")
        return tuple(shape), dtype

    def chunks(self) -> Iterator[_Chunk]:
        handles: dict[str, tuple[IO[bytes], np.dtype[Any]]] = {}
        try:
            for name in ("vectors", *_NAMES):
                handle = self.archive.open(f"{name}.npy")
                shape, dtype = self._header(handle)
                if shape[0] != self.rows:
                    raise _Damaged(f"array {name!r} has {shape[0]} rows, not {self.rows}")
                handles[name] = (handle, dtype)
            kinds = {c.name: c.kind for c in COLUMNS}
            dim = int(self.meta["dim"])
            for start in range(0, self.rows, _CHUNK):
                n = min(_CHUNK, self.rows - start)
                columns: dict[str, list[Any]] = {}
                for name in _NAMES:
                    handle, dtype = handles[name]
                    columns[name] = _from_npz(kinds[name], _read_rows(handle, dtype, n))
                handle, dtype = handles["vectors"]
                vectors = _read_rows(handle, dtype, n * dim).reshape(n, dim)
                yield _Chunk(columns, vectors.astype(np.float32))
        finally:
            for handle, _ in handles.values():
                handle.close()


def _read_rows(handle: IO[bytes], dtype: np.dtype[Any], n: int) -> np.ndarray:
    data = handle.read(n * dtype.itemsize)
    if len(data) != n * dtype.itemsize:
        raise _Damaged("it ends early")
    return np.frombuffer(data, dtype=dtype)


def _from_npz(kind: Kind, values: np.ndarray) -> list[Any]:
    items = values.tolist()
    if kind is Kind.TEXT:
        return [v or None for v in items]
    if kind is Kind.INT:
        return [None if v == NPZ_NO_INT else v for v in items]
    if kind is Kind.FLOAT:
        return [None if v != v else v for v in items]  # NaN
    return [bool(v) for v in items]


@dataclass(frozen=True)
class PathMap:
    """`--map OLD=NEW`: paths in OLD (as the export names them) move to NEW on this machine."""

    old: str
    new: str

    @classmethod
    def parse(cls, text: str) -> PathMap:
        from ._library import real_path

        old, sep, new = text.partition("=")
        if not sep or not old or not new:
            raise UsageError(f"--map takes OLD=NEW (two folders), not {text!r}.")
        return cls(old.rstrip(os.sep) or os.sep, real_path(new))


def _remap(path: str, maps: Sequence[PathMap]) -> str:
    """The path on this machine: the deepest OLD holding it replaced by its NEW."""
    by_old = {m.old: m.new for m in maps}
    old = folder_holding(path, by_old)
    if old is None:
        return path
    rest = path[len(old.rstrip(os.sep)) :].lstrip(os.sep)
    return os.path.join(by_old[old], rest) if rest else by_old[old]


def _open_export(source: Path) -> _ParquetReader | _NpzReader:
    kind = _sniff(source)
    try:
        return _ParquetReader(source) if kind == "parquet" else _NpzReader(source)
    except _Damaged as exc:
        raise _damaged(source, str(exc)) from None
    except (OSError, ValueError, zipfile.BadZipFile, KeyError, EOFError) as exc:
        raise _damaged(source, type(exc).__name__ if not str(exc) else str(exc).splitlines()[0][:200]) from None


def check_export(source: str | Path, model: str | None = None) -> dict[str, Any]:
    """The description of a Parquet or npz export (model, folders); UsageError if it is not
    one, or if `model` (a --model asked for) is not the model that made it."""
    path = _export_file(Path(source))
    with contextlib.closing(_open_export(path)) as reader:
        _refuse_other_model(path, reader.meta, model)
        return reader.meta


def _refuse_other_model(source: Path, meta: dict[str, Any], model: str | None) -> None:
    if model and parse(model).model_id != meta["model_id"]:
        raise UsageError(
            f"{display(str(source))} holds vectors of the model '{meta['model_id']}', not "
            f"'{parse(model).model_id}': vectors of two models cannot be mixed. "
            "Leave out --model to import it as it is."
        )


def import_library(
    library: Library,
    source: str | Path,
    maps: Sequence[PathMap | str] = (),
    progress: ExportProgress | None = None,
) -> ImportReport:
    """Restore photos and vectors from a Parquet or npz export into this library, without
    re-encoding; paths are moved by `maps` (OLD=NEW). Refuses an export of another model."""
    path_maps = [m if isinstance(m, PathMap) else PathMap.parse(m) for m in maps]
    source = _export_file(Path(source))
    with contextlib.closing(_open_export(source)) as reader:
        return _import(library, source, reader, path_maps, progress)


def _import(
    library: Library,
    source: Path,
    reader: _ParquetReader | _NpzReader,
    path_maps: Sequence[PathMap],
    progress: ExportProgress | None,
) -> ImportReport:
    start = time.monotonic()
    meta = reader.meta
    model_id, dim = str(meta["model_id"]), int(meta["dim"])
    fingerprint = meta.get("model_fingerprint") if isinstance(meta.get("model_fingerprint"), str) else None
    store = library.store
    _refuse_other_model(source, meta, library.options.model)
    try:
        store.check_model(model_id, dim, fingerprint)
    except ModelMismatch:
        current = store.model()
        raise UsageError(
            f"{display(str(source))} holds vectors of the model '{model_id}'"
            + (f" (vector size {dim})" if current and current.model_id == model_id else "")
            + f", but the library {display(str(store.path))} holds vectors of "
            f"'{current.model_id if current else '?'}' or of other weights: import it into a new library "
            "(another --db)."
        ) from None
    store.bind_model(model_id, dim, fingerprint=fingerprint)

    report = ImportReport()
    known = {f.path for f in store.folder_roots()}
    facts_ok = meta.get("facts_version") == FACTS_VERSION
    exported = [str(f["path"]) for f in meta["folders"]]
    folders = [(_remap(path, path_maps), bool(f.get("watched", True))) for path, f in zip(exported, meta["folders"])]
    # A --map of a folder inside an exported folder takes its photos out of that
    # folder's new place: the folder they are mapped into joins the library too.
    inner = [m.new for m in path_maps if any(is_within(m.old, f) and not is_within(f, m.old) for f in exported)]
    folder_ids = _add_folders(store, [p for p, _ in folders] + inner)
    holders = FolderSet(folder_ids)
    try:
        # All or nothing: a file found damaged halfway leaves the library as it was.
        with store.write():
            for chunk in reader.chunks():
                _check_vectors(chunk.vectors)
                for row in range(len(chunk)):
                    path = _remap(chunk.columns["path"][row], path_maps)
                    holder = holders.holder(path)
                    if holder is None:
                        raise _Damaged(f"the photo {display(path)} lies in none of its folders")
                    image = _new_image(chunk, row, path, folder_ids[holder], facts_ok)
                    store.insert_image(image, chunk.vectors[row])
                report.photos += len(chunk)
                if progress is not None:
                    progress(report.photos, max(reader.rows, report.photos))
    except (_Damaged, OSError, ValueError, zipfile.BadZipFile, KeyError, TypeError, EOFError) as exc:
        # In the log in full, in case it is clipdesk's fault after all.
        log.warning("importing %s failed", display(str(source)), exc_info=True)
        for path in set(folder_ids) - known:
            store.remove_folder(path)
        why = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise _damaged(source, why + "; nothing was imported") from None
    added = [p for p in folder_ids if p not in known]
    unwatched = {p for p, watched in folders if not watched}
    if unwatched & set(added):
        store.set_unwatched(store.unwatched_folders() | (unwatched & set(added)))
    report.folders = sorted(added)
    report.missing_folders = [p for p in report.folders if not os.path.isdir(p)]
    report.seconds = time.monotonic() - start
    return report


def _add_folders(store: Store, paths: Sequence[str]) -> dict[str, int]:
    """Add folders (outer ones first, so a folder inside another joins it); every
    library folder's id by its stored path."""
    for path in sorted(set(paths), key=len):
        store.add_folder(path)
    return {f.path: f.id for f in store.folder_roots()}


def _check_vectors(vectors: np.ndarray) -> None:
    if not np.isfinite(vectors).all():
        raise _Damaged("vectors that are not numbers")


def _new_image(chunk: _Chunk, row: int, path: str, folder_id: int, facts_ok: bool) -> NewImage:
    def value(name: str) -> Any:
        return chunk.columns[name][row]

    size, mtime_ns, content_hash = value("size"), value("mtime_ns"), value("content_hash")
    if not isinstance(size, int) or not isinstance(mtime_ns, int) or not content_hash:
        raise _Damaged("a photo without its size, time or content hash")
    facts = None
    if facts_ok and value("facts_read"):
        facts = Facts(
            value("taken_offset"), value("camera_make"), value("camera_model"), value("lens"),
            value("latitude"), value("longitude"), value("type"),
        )
    return NewImage(
        folder_id=folder_id,
        path=path,
        size=size,
        mtime_ns=mtime_ns,
        hash=str(content_hash),
        width=value("width"),
        height=value("height"),
        taken_at=value("exif_taken_at"),
        # Another machine's ctime and inode mean nothing here: unknown, so the next
        # index judges the file by size and mtime, then records them (see indexer).
        ctime_ns=None,
        inode=None,
        facts=facts,
        phash=value("phash"),
    )


__all__ = [
    "COLUMNS",
    "ExportFormat",
    "ExportReport",
    "ImportReport",
    "PathMap",
    "export_library",
    "import_library",
    "parse_format",
]
