"""clipdesk: private, offline photo-library search with CLIP, as a Python library.

This module is the public API (reference and examples: docs/api.md): thin
wrappers over the engine (`Library` over `_library.Library`, `Model` over an
`_encoder.Encoder`) and frozen dataclasses for what they return, so the
engine's own records can change without breaking callers. Everything public is
listed in `__all__`; every other module is private (`clipdesk._…`).

Importing clipdesk is cheap: numpy, Pillow, the database, torch and
transformers load inside the calls that need them.
"""

from __future__ import annotations

# Names imported for the code below carry a leading underscore, so that the module's
# public names are exactly `__all__`.
import os as _os
import typing as _typing
from collections.abc import Mapping as _Mapping
from dataclasses import dataclass as _dataclass
from dataclasses import field as _field
from datetime import date as _date
from datetime import datetime as _datetime
from pathlib import Path as _Path

from ._errors import (
    ClipdeskError,
    ImageUnreadable,
    LibraryError,
    ModelMismatch,
    ModelUnavailable,
    UsageError,
)
from ._presets import DEFAULT_TEMPLATE as _DEFAULT_TEMPLATE

if _typing.TYPE_CHECKING:
    import os
    import threading
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from datetime import date
    from pathlib import Path
    from typing import Literal, TypeAlias

    import numpy as np
    from PIL import Image

    from . import _filters
    from ._classify import LabelSet
    from ._encoder import Encoder
    from ._indexer import IndexProgress as _EngineProgress
    from ._library import Library as _EngineLibrary
    from ._store import ImageRecord

    PathLike: TypeAlias = str | os.PathLike[str]  # a file or folder: a str or a pathlib.Path
    ImageInput: TypeAlias = str | os.PathLike[str] | Image.Image  # a file, or a Pillow image in memory

__version__ = "0.1.0"

__all__ = [
    "Classification",
    "ClipdeskError",
    "ExportReport",
    "Failure",
    "Filter",
    "ImageUnreadable",
    "ImportReport",
    "IndexProgress",
    "IndexReport",
    "Library",
    "LibraryError",
    "Match",
    "Model",
    "ModelMismatch",
    "ModelUnavailable",
    "Photo",
    "UsageError",
    "Vectors",
    "__version__",
    "presets",
]

# The errors live in `_errors` (the engine raises them); named here, as users catch them.
_error: type[ClipdeskError]
for _error in (ClipdeskError, ImageUnreadable, LibraryError, ModelMismatch, ModelUnavailable, UsageError):
    _error.__module__ = __name__
del _error


# -- records ------------------------------------------------------------------


@_dataclass(frozen=True)
class Filter:
    """Which photos a search, listing or vector read considers; the default keeps all.

    Dates are whole days, both ends inclusive: `"2019"`, `"2019-07"`, `"2019-07-14"`
    or a `datetime.date`. Invalid values raise `UsageError` when the Filter is made.
    """

    after: str | date | None = None
    before: str | date | None = None
    folders: Sequence[PathLike] = ()  # any folders inside the library
    types: Sequence[str] = ()  # file types: "jpeg", "png", "heic"…
    camera: str | None = None  # camera make or model contains this (any case)
    orientation: Literal["landscape", "portrait", "square"] | None = None
    min_pixels: int | None = None  # width × height at least this
    has_gps: bool = False  # only photos that record where they were taken

    def __post_init__(self) -> None:
        object.__setattr__(self, "folders", tuple(_path_list(self.folders)))
        object.__setattr__(self, "types", tuple(_text_list(self.types)))
        self._engine()  # refuse an impossible filter here, where it was written

    def _engine(self) -> _filters.Filter:
        from ._facts import Orientation
        from ._filters import Filter as EngineFilter
        from ._filters import parse_date, parse_types

        def day(value: str | date | None, *, end: bool, name: str) -> date | None:
            if value is None:
                return None
            if isinstance(value, _datetime):  # a date too, but with a time that would count
                return value.date()
            if isinstance(value, _date):
                return value
            return parse_date(value, end=end, option=name)

        try:
            orientation = Orientation(self.orientation) if self.orientation else None
        except ValueError:
            choices = ", ".join(repr(o.value) for o in Orientation)
            raise UsageError(f"orientation {self.orientation!r} is not one of {choices}.") from None
        return EngineFilter(
            after=day(self.after, end=False, name="after"),
            before=day(self.before, end=True, name="before"),
            folders=tuple(str(f) for f in self.folders),
            types=parse_types(list(self.types)),
            camera=self.camera or None,
            orientation=orientation,
            min_pixels=self.min_pixels,
            has_gps=self.has_gps,
        )


@_dataclass(frozen=True)
class Photo:
    """What the library knows about one photo; a field is None where the file does not say."""

    path: str
    taken_at: str  # ISO 8601, with the camera's offset when its EXIF gives one
    taken_from: Literal["exif", "file"]  # "file": no EXIF date, the modification time stands in
    width: int | None
    height: int | None
    size: int  # bytes
    file_type: str | None  # what the file is ("jpeg", "png", "heif"…), not what its name says
    camera: str | None
    latitude: float | None
    longitude: float | None


@_dataclass(frozen=True)
class Match:
    """One search result: a photo and its cosine similarity to the query (higher is closer)."""

    path: str
    score: float
    photo: Photo


@_dataclass(frozen=True)
class IndexProgress:
    """A progress snapshot while indexing; passed to `progress` on the indexing thread."""

    phase: Literal["scanning", "indexing", "done"]
    done: int  # photos handled so far in this phase
    total: int  # photos to handle (0 while scanning)
    current: str | None  # the photo just handled
    encoded: int  # photos the model ran on so far
    failed: int  # unreadable files so far
    elapsed: float  # seconds since the run started


@_dataclass(frozen=True)
class Failure:
    """A file that could not be indexed, and why (one bad file never stops a run)."""

    path: str
    error: str


@_dataclass(frozen=True)
class IndexReport:
    """What one `Library.index` call did; `encoded` counts the photos the model actually ran on."""

    indexed: int
    unchanged: int
    moved: int
    removed: int
    encoded: int
    skipped: int  # failed in an earlier run and unchanged since: not read again
    failed: tuple[Failure, ...]
    cancelled: bool
    seconds: float


@_dataclass(frozen=True)
class Classification:
    """One image's label probabilities (they sum to 1), or why it could not be classified."""

    path: str | None  # the path as given; None for a Pillow image
    probabilities: Mapping[str, float] = _field(default_factory=dict)  # labels in the order given
    error: str | None = None

    @property
    def best(self) -> str | None:
        """The most likely label; None if the image could not be read."""
        if not self.probabilities:
            return None
        return max(self.probabilities, key=self.probabilities.__getitem__)

    def ranked(self) -> list[tuple[str, float]]:
        """(label, probability) pairs, most likely first."""
        return sorted(self.probabilities.items(), key=lambda pair: -pair[1])


@_dataclass(frozen=True, eq=False)
class Vectors:
    """Image vectors with the paths they belong to: row i of `array` is `paths[i]`.

    `array` is read-only float32 of shape (len(paths), dim), each row unit length,
    so a dot product is the cosine similarity.
    """

    paths: tuple[str, ...]
    array: np.ndarray
    model_id: str

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def dim(self) -> int:
        return int(self.array.shape[1])


@_dataclass(frozen=True)
class ExportReport:
    """What `Library.export` wrote: how many photos, the files (names in the export folder), how long."""

    photos: int
    files: tuple[str, ...]
    seconds: float


@_dataclass(frozen=True)
class ImportReport:
    """What `Library.import_from` restored, and which of its folders are not on this disk (yet)."""

    photos: int
    folders: tuple[str, ...]
    missing_folders: tuple[str, ...]
    seconds: float


def presets() -> dict[str, tuple[str, ...]]:
    """The built-in label sets by name (e.g. "moderation"), each with its labels."""
    from ._presets import PRESETS

    return {name: tuple(prompts) for name, prompts in PRESETS.items()}


# -- the model ----------------------------------------------------------------


class Model:
    """A CLIP model (or the test colour encoder): images and texts to vectors, classification.

    Named by hub id, short name ("ViT-B/32", "ViT-B/16", "ViT-L/14") or local folder saved
    with `save_pretrained`; by default ViT-B/32. A hub model not yet cached is downloaded
    when this is made (never with HF_HUB_OFFLINE=1); its weights load on the first encode.
    Thread-safe for encoding.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str = "auto",
        batch_size: int | None = None,
        allow_pickle: bool = False,
    ) -> None:
        from ._models import DEFAULT_MODEL, EncoderOptions, load_encoder

        self._encoder = load_encoder(model or DEFAULT_MODEL, EncoderOptions(device, batch_size, allow_pickle))

    @classmethod
    def _of(cls, encoder: Encoder) -> Model:
        """A Model over an encoder already loaded (a library's)."""
        model = cls.__new__(cls)
        model._encoder = encoder
        return model

    def __repr__(self) -> str:
        return f"<clipdesk.Model {self.model_id!r}>"

    @property
    def model_id(self) -> str:
        """The id a library records for this model (a hub id, or a folder's absolute path)."""
        return self._encoder.model_id

    @property
    def dim(self) -> int:
        """The length of its vectors."""
        return self._encoder.dim

    def encode_texts(self, texts: str | Sequence[str]) -> np.ndarray:
        """Texts to unit vectors, float32 (len(texts), dim); one string gives one row."""
        import numpy as np

        items = [texts] if isinstance(texts, str) else list(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._encoder.encode_texts(items), dtype=np.float32)

    def encode_images(self, images: ImageInput | Sequence[ImageInput]) -> np.ndarray:
        """Images to unit vectors, float32 (len(images), dim), in batches; one image gives one row.

        Raises ImageUnreadable naming the first file that is not a usable image
        (`Library.index` skips such files instead, and `classify` reports them per image).
        """
        import numpy as np

        items = _images(images)
        rows = [np.zeros((0, self.dim), dtype=np.float32)]
        step = max(1, self._encoder.batch_size)
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            vectors = self._encode_decoded([_decode(item, self._encoder.image_size) for item in chunk])
            for item, vector in zip(chunk, vectors):
                _require_finite(vector, item)
            rows.append(vectors)
        return np.concatenate(rows)

    def classify(
        self,
        images: ImageInput | Sequence[ImageInput],
        labels: str | Sequence[str] | None = None,
        *,
        preset: str | None = None,
        template: str = _DEFAULT_TEMPLATE,
    ) -> list[Classification]:
        """Zero-shot label probabilities for each image, in order; an unreadable image gets an
        `error` instead of stopping the others. Give `labels` (a list, or "cat, dog") or a `preset`."""
        return self._classify(_images(images), _label_set(labels, preset, template))

    def _classify(self, items: Sequence[ImageInput], label_set: LabelSet) -> list[Classification]:
        import numpy as np

        from ._classify import classify_vectors

        out = [Classification(_shown(item)) for item in items]
        ok: list[int] = []
        vectors: list[np.ndarray] = []
        for index, item in enumerate(items):
            try:
                vector = self._encode_decoded([_decode(item, self._encoder.image_size)])[0]
                _require_finite(vector, item)
            except ClipdeskError as exc:
                out[index] = Classification(_shown(item), {}, str(exc))
                continue
            ok.append(index)
            vectors.append(vector)
        if vectors:
            for index, result in zip(ok, classify_vectors(self._encoder, np.stack(vectors), label_set)):
                out[index] = Classification(_shown(items[index]), result.probabilities)
        return out

    def _encode_decoded(self, images: Sequence[Image.Image]) -> np.ndarray:
        from ._encoder import encode_images

        return encode_images(self._encoder, images)


# -- the library --------------------------------------------------------------


class Library:
    """A clipdesk library file: its photos, their vectors, and the model that made them.

    Opened (and by default created) at `path`; without one, the library the
    `clipdesk` command and the app use. Use it from the thread that opened it, and
    close it (or use `with`). A library built with one model refuses another unless
    re-indexed (`ModelMismatch`).
    """

    def __init__(
        self,
        path: PathLike | None = None,
        *,
        model: str | None = None,
        create: bool = True,
        read_only: bool = False,
        device: str = "auto",
        batch_size: int | None = None,
        workers: int | None = None,
        allow_pickle: bool = False,
    ) -> None:
        from ._library import Library as EngineLibrary
        from ._library import LibraryOptions
        from ._paths import default_db_path

        db = _Path(path).expanduser() if path is not None else default_db_path()
        options = LibraryOptions(
            db_path=db,
            model=model,
            device=device,
            batch_size=batch_size,
            allow_pickle=allow_pickle,
            workers=workers,
        )
        self._library: _EngineLibrary | None = EngineLibrary(options, create=create, read_only=read_only)
        self._model: Model | None = None
        self._path = db

    def __repr__(self) -> str:
        return f"<clipdesk.Library {str(self.path)!r}>"

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database (vectors already written are safe; so is a second close)."""
        library, self._library = self._library, None
        if library is not None:
            library.close()

    @property
    def path(self) -> Path:
        """The library's database file."""
        return self._path

    @property
    def model_id(self) -> str | None:
        """The model that made this library's vectors; None while it holds none."""
        info = self._open().store.model()
        return info.model_id if info else None

    def __len__(self) -> int:
        """How many photos the library holds."""
        return self._open().store.count_images()

    def model(self) -> Model:
        """This library's model (as asked for when opened, else the one it was built with)."""
        if self._model is None:
            self._model = Model._of(self._open().encoder)
        return self._model

    def folders(self) -> list[str]:
        """The folders this library indexes (absolute paths)."""
        return [f.path for f in self._open().folders()]

    def forget(self, folder: PathLike) -> int:
        """Drop a folder and its photos from the library (the files are not touched); how many."""
        return self._open().forget(_os.fspath(folder))

    def index(
        self,
        folders: PathLike | Sequence[PathLike] = (),
        *,
        progress: Callable[[IndexProgress], None] | None = None,
        reindex: bool = False,
        cancel: threading.Event | None = None,
    ) -> IndexReport:
        """Add folders (remembered) and bring them up to date; with none, update every known folder.

        `progress` is called on this thread a few times a second; setting `cancel` stops the
        run after the batch in flight (everything indexed so far is kept). `reindex` encodes
        everything again, with the model this library was opened with.
        """
        library = self._open()
        paths = _path_list(folders)
        if not paths and not library.folders():
            raise UsageError("No folders to index: give one, e.g. library.index('~/Pictures').")
        relay = None if progress is None else _progress_relay(progress)
        report = library.index(paths, reindex=reindex, progress=relay, cancel=cancel)
        return IndexReport(
            indexed=report.indexed,
            unchanged=report.unchanged,
            moved=report.moved,
            removed=report.removed,
            encoded=report.encoded,
            skipped=report.skipped,
            failed=tuple(Failure(f.path, f.error) for f in report.failed),
            cancelled=report.cancelled,
            seconds=report.seconds,
        )

    def search(
        self,
        text: str | Sequence[str] = (),
        *,
        like: PathLike | Sequence[PathLike] = (),
        negatives: str | Sequence[str] = (),
        filter: Filter | None = None,
        limit: int = 20,
        min_score: float | None = None,
    ) -> list[Match]:
        """The photos best matching some words and/or example images, best first.

        Several texts and examples are averaged; `negatives` push matching photos down;
        `filter` chooses which photos are ranked at all (before `limit`). Example images
        need not be in the library; those that are, are left out of the results.
        """
        from ._search import Query

        if limit < 1:
            raise UsageError(f"limit must be 1 or more (got {limit}).")
        library = self._open()
        query = Query(
            texts=tuple(_text_list(text)),
            negatives=tuple(_text_list(negatives)),
            like=tuple(_path_list(like)),
            limit=limit,
            min_score=min_score,
            filter=self._ready(filter),
        )
        if query.is_empty():
            raise UsageError("Nothing to search for: give some words or an example image (like=).")
        return [Match(hit.path, hit.score, _photo(hit.record)) for hit in library.search(query) if hit.record]

    def similar(
        self,
        image: PathLike,
        *,
        filter: Filter | None = None,
        limit: int = 20,
        min_score: float | None = None,
    ) -> list[Match]:
        """The photos most like an image (in the library or not), best first, itself left out."""
        return self.search(like=image, filter=filter, limit=limit, min_score=min_score)

    def photos(self, filter: Filter | None = None, *, limit: int | None = None) -> list[Photo]:
        """The photos a filter keeps (all without one), oldest first by date taken."""
        from ._filters import Filter as EngineFilter

        library = self._open()
        keep = self._ready(filter) or EngineFilter()
        return [_photo(record) for record in library.list_photos(keep, limit)]

    def classify(
        self,
        images: ImageInput | Sequence[ImageInput],
        labels: str | Sequence[str] | None = None,
        *,
        preset: str | None = None,
        template: str = _DEFAULT_TEMPLATE,
    ) -> list[Classification]:
        """Like `Model.classify`, with this library's model; an image already indexed uses its
        stored vector instead of being decoded again."""
        label_set = _label_set(labels, preset, template)
        items = _images(images)
        files = {i: _shown_path(item) for i, item in enumerate(items) if isinstance(item, (str, _os.PathLike))}
        out = [Classification(_shown(item)) for item in items]
        if files:
            results = self._open().classify(list(files.values()), label_set)
            for index, result in zip(files, results):
                if result.result is None:
                    out[index] = Classification(result.path, {}, result.error)
                else:
                    out[index] = Classification(result.path, result.result.probabilities)
        in_memory = [i for i in range(len(items)) if i not in files]
        if in_memory:
            classified = self.model()._classify([items[i] for i in in_memory], label_set)
            for index, result_in_memory in zip(in_memory, classified):
                out[index] = result_in_memory
        return out

    def vectors(self, filter: Filter | None = None) -> Vectors:
        """Every photo's vector (or those a filter keeps) with its path, sorted by path.

        Holds len × dim × 4 bytes (about 2 GB for a million photos at 512 dimensions).
        """
        import numpy as np

        library = self._open()
        store = library.store
        keep = self._ready(filter)
        ids, paths = store.ids_and_paths()
        path_of = dict(zip(ids.tolist(), paths))
        allowed: np.ndarray | None = None
        if keep is not None and not keep.is_empty():
            allowed = store.matching_ids(*keep.sql())
        found_ids: list[np.ndarray] = []
        found: list[np.ndarray] = []
        for chunk_ids, chunk in store.iter_vectors():
            # Photos written after the paths were read have no path here: left out.
            wanted = np.isin(chunk_ids, ids)
            if allowed is not None:
                wanted &= np.isin(chunk_ids, allowed)
            found_ids.append(chunk_ids[wanted])
            found.append(chunk[wanted])
        info = store.model()
        # An empty library's vectors are of the model it would index with.
        model_id = info.model_id if info else library.model_spec().model_id
        dim = info.dim if info else 0
        all_ids = np.concatenate(found_ids) if found_ids else np.zeros(0, np.int64)
        array = np.concatenate(found) if found else np.zeros((0, dim), np.float32)
        names = [path_of[int(i)] for i in all_ids]
        order = sorted(range(len(names)), key=names.__getitem__)
        array = np.ascontiguousarray(array[order], dtype=np.float32)
        array.flags.writeable = False
        return Vectors(tuple(names[i] for i in order), array, model_id)

    def export(
        self,
        directory: PathLike,
        format: Literal["parquet", "npz", "faiss", "chroma"],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> ExportReport:
        """Write paths, photo facts, model id and vectors into `directory` for other tools.

        parquet and npz are one file each (and can be imported again); faiss is an index plus
        an id-to-path table; chroma a persistent Chroma collection. `progress(done, total)`.
        """
        from ._interchange import export_library

        report = export_library(self._open(), _os.fspath(directory), format, progress)
        return ExportReport(report.photos, tuple(report.files), report.seconds)

    def import_from(
        self,
        source: PathLike,
        *,
        remap: Mapping[str, str] | Iterable[str] = (),
        progress: Callable[[int, int], None] | None = None,
    ) -> ImportReport:
        """Restore photos and vectors from a Parquet or npz export made with the same model,
        without re-encoding; `remap` moves paths ({old_folder: new_folder} or "OLD=NEW")."""
        from ._interchange import import_library

        maps = [f"{old}={new}" for old, new in remap.items()] if isinstance(remap, _Mapping) else list(remap)
        report = import_library(self._open(), _os.fspath(source), maps, progress)
        return ImportReport(report.photos, tuple(report.folders), tuple(report.missing_folders), report.seconds)

    # -- helpers --------------------------------------------------------------

    def _open(self) -> _EngineLibrary:
        if self._library is None:
            raise UsageError("This library is closed.")
        return self._library

    def _ready(self, typed: Filter | None) -> _filters.Filter | None:
        """The engine's filter with its folders checked against the library's, after first
        reading the facts (from file headers) of photos indexed before those were kept."""
        if typed is None:
            return None
        library = self._open()
        keep = library.resolve_filter(typed._engine())
        if library.undescribed(keep) and not library.store.read_only:
            library.describe()
        return keep


# -- helpers --------------------------------------------------------------------


def _text_list(value: str | Iterable[str]) -> list[str]:
    """One string or several, as a list (a string is one text, not its characters)."""
    return [value] if isinstance(value, str) else list(value)


def _path_list(value: PathLike | Iterable[PathLike]) -> list[str]:
    """One path or several, as strings with `~` expanded."""
    items = [value] if isinstance(value, (str, _os.PathLike)) else list(value)
    return [_os.path.expanduser(_os.fspath(item)) for item in items]


def _images(images: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    from PIL import Image

    if isinstance(images, (str, _os.PathLike, Image.Image)):
        return [images]
    return list(images)


def _shown(item: ImageInput) -> str | None:
    return _shown_path(item) if isinstance(item, (str, _os.PathLike)) else None


def _shown_path(item: str | os.PathLike[str]) -> str:
    return _os.path.expanduser(_os.fspath(item))


def _decode(item: ImageInput, min_side: int) -> Image.Image:
    """A file decoded upright through clipdesk's safe, memory-bounded open; a Pillow image as it is."""
    from ._imaging import open_image
    from ._paths import display
    from ._safefile import require_photo_path

    if not isinstance(item, (str, _os.PathLike)):
        return item
    path = _shown_path(item)
    require_photo_path(path)
    try:
        image, _ = open_image(path, min_side=min_side)
    except ImageUnreadable as exc:
        raise ImageUnreadable(f"{display(path)}: {exc}") from None
    return image


def _require_finite(vector: np.ndarray, item: ImageInput) -> None:
    import numpy as np

    if not np.isfinite(vector).all():
        name = _shown(item) or "an image"
        raise ClipdeskError(f"{name}: the model gave no usable vector for this image (not a number).")


def _label_set(labels: str | Sequence[str] | None, preset: str | None, template: str) -> LabelSet:
    from ._classify import LabelSet
    from ._presets import parse_labels

    if (labels is None) == (preset is None):
        raise UsageError("Give either labels (e.g. ['cat', 'dog']) or a preset (e.g. 'moderation').")
    if preset is not None:
        return LabelSet.preset(preset)
    assert labels is not None
    names = parse_labels(labels) if isinstance(labels, str) else list(dict.fromkeys(labels))
    return LabelSet.from_labels(names, template)


def _progress_relay(progress: Callable[[IndexProgress], None]) -> Callable[[_EngineProgress], None]:
    def relay(p: _EngineProgress) -> None:
        phase: Literal["scanning", "indexing", "done"] = (
            "scanning" if p.phase == "scanning" else "done" if p.phase == "done" else "indexing"
        )
        progress(IndexProgress(phase, p.done, p.total, p.current, p.encoded, p.failed, p.elapsed))

    return relay


def _photo(record: ImageRecord) -> Photo:
    from ._facts import date_taken

    facts = record.facts
    taken, source = date_taken(record.taken_at, facts.taken_offset if facts else None, record.mtime_ns)
    return Photo(
        path=record.path,
        taken_at=taken,
        taken_from="exif" if source.value == "exif" else "file",
        width=record.width,
        height=record.height,
        size=record.size,
        file_type=facts.file_type if facts else None,
        camera=facts.camera if facts else None,
        latitude=facts.latitude if facts else None,
        longitude=facts.longitude if facts else None,
    )


del annotations  # bound by the __future__ import; not part of the API
