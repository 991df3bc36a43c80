"""One library: its database, its model, and the operations the CLI, service and GUI share.

A Library belongs to the thread that opened it (it holds an SQLite connection);
the encoder it loads may be shared with other Libraries through `encoder=`.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from . import _librarylock as librarylock
from ._duplicates import DEFAULT_THRESHOLD, DuplicateGroup, FillProgress, fill_missing, find_duplicates
from ._classify import Classification, LabelSet, classify_vectors
from ._encoder import Encoder, encode_images, model_fingerprint
from ._errors import ClipdeskError, ImageUnreadable, ModelMismatch
from ._filters import Filter
from ._hitlist import HitList
from ._imaging import open_image
from . import _labels as labels_db
from ._export import write_labels_csv
from ._labels import (
    APPLY_BATCH,
    ImageLabel,
    LabelDefinition,
    LabelSetInfo,
    SafeSearch,
    SafeSearchUnavailable,
    TagProgressCallback,
    TagReport,
)
from ._safefile import require_photo_path
from ._indexer import Indexer, IndexReport, ProgressCallback, describe_missing
from ._models import DEFAULT_MODEL, EncoderOptions, ModelSpec, load_encoder, parse
from ._paths import display
from ._search import Hit, Query, Searcher, TextCache
from ._store import Folder, ImageRecord, ModelInfo, Store, is_sqlite_file
from ._vectorindex import VectorIndex


@dataclass(frozen=True)
class LibraryOptions:
    """How to open a library; plain data so it can be handed to other threads."""

    db_path: Path
    model: str | None = None  # None: the library's own model, else the default
    device: str = "auto"
    batch_size: int | None = None
    allow_pickle: bool = False
    workers: int | None = None
    # Keep an in-memory search index (fast repeated searches); a one-shot command
    # is faster without one, searching the database directly.
    memory_index: bool = True
    int8: bool = False  # opt-in faster CPU image encoding (see ClipEncoder.int8)

    def encoder_options(self) -> EncoderOptions:
        """The part of these options that says how to run the model."""
        return EncoderOptions(self.device, self.batch_size, self.allow_pickle, self.int8)


@dataclass(frozen=True)
class ClassifiedImage:
    path: str
    result: Classification | None
    error: str | None = None


def real_path(path: str | Path) -> str:
    """The absolute, symlink-free form under which files are stored."""
    return os.path.realpath(os.path.expanduser(str(path)))


def check_folders(paths: Sequence[str]) -> None:
    """Raise a clear error for a path that is missing or is not a folder."""
    for path in paths:
        if not os.path.exists(path):
            raise ClipdeskError(f"No folder at {path}.")
        if not os.path.isdir(path):
            raise ClipdeskError(f"{path} is a file; give a folder of photos.")


PhotoOrder = Literal["name", "newest", "oldest"]
PHOTO_ORDERS: tuple[PhotoOrder, ...] = ("name", "newest", "oldest")


class Library:
    """A library database and the model that indexes and searches it."""

    def __init__(
        self,
        options: LibraryOptions,
        *,
        create: bool = True,
        read_only: bool = False,
        encoder: Encoder | None = None,
        text_cache: TextCache | None = None,
        vector_index: VectorIndex | None = None,
    ) -> None:
        self.options = options
        # Held shared while open, so `rebuild` cannot move the file from under an index run.
        self._lock = librarylock.LibraryLock(Path(options.db_path))
        self._lock.acquire_shared()
        try:
            self.store = Store(options.db_path, create=create, read_only=read_only)
        except BaseException:
            self._lock.release()
            raise
        self._encoder = encoder
        self._encoder_lock = threading.Lock()
        self.text_cache = text_cache or TextCache()
        # May be shared with Libraries of other threads on the same database.
        self._owns_index = vector_index is None
        self.vector_index = vector_index or (VectorIndex() if options.memory_index else None)

    def close(self) -> None:
        if self._owns_index and self.vector_index is not None:
            self.vector_index.close()  # its temporary file
        self.store.close()
        self._lock.release()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- model --------------------------------------------------------------

    def model_spec(self) -> ModelSpec:
        """The model asked for, or the one this library was built with, or the default."""
        if self.options.model:
            return parse(self.options.model)
        current = self.store.model()
        return parse(current.model_id if current else DEFAULT_MODEL)

    def check_model(self, *, reindex: bool = False, encoder: Encoder | None = None) -> ModelSpec:
        """Refuse a model that differs from the library's: by id before loading anything,
        and by vector size and weights once `encoder` has read its folder."""
        spec = self.model_spec()
        if not reindex:
            if encoder is None:
                self.store.check_model(spec.model_id)
            else:
                self.store.check_model(encoder.model_id, encoder.dim, model_fingerprint(encoder))
        return spec

    @property
    def encoder(self) -> Encoder:
        with self._encoder_lock:
            if self._encoder is None:
                self._encoder = load_encoder(self.check_model(reindex=True), self.options.encoder_options())
            return self._encoder

    def adopt_encoder(self, encoder: Encoder) -> None:
        """Use an encoder already loaded (a service's) rather than loading another."""
        with self._encoder_lock:
            self._encoder = encoder

    # -- indexing -----------------------------------------------------------

    def index(
        self,
        paths: Sequence[str],
        *,
        reindex: bool = False,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> IndexReport:
        """Add folders (or, with none given, every known folder) and bring them up to date."""
        self.check_model(reindex=reindex)
        check_folders(paths)
        unusable = self.store.unusable_vectors()
        if unusable:
            # Vectors that are not numbers (written before they were checked): encode those photos again.
            self.store.mark_for_encoding(unusable)
        roots = [real_path(p) for p in paths] or [f.path for f in self.store.folders()]
        indexer = Indexer(
            self.store,
            self.encoder,
            workers=self.options.workers,
            progress=progress,
            cancel=cancel,
            reindex=reindex,
        )
        return indexer.index(roots)

    def folders(self) -> list[Folder]:
        return self.store.folders()

    def forget(self, path: str) -> int:
        """Drop a folder and its images from the library (the photos are not touched)."""
        root = real_path(path)
        folder = self.store.folder_by_path(root) or self.store.folder_by_path(path)
        if folder is None:
            known = ", ".join(f.path for f in self.store.folders()) or "none"
            raise ClipdeskError(f"{path} is not a folder of this library (its folders: {known}).")
        return self.store.remove_folder(folder.path)

    # -- search and classification ------------------------------------------

    def searcher(self) -> Searcher:
        self.check_model()  # before loading: a different model is refused at once
        self.check_model(encoder=self.encoder)
        return Searcher(self.store, self.encoder, self.text_cache, self.vector_index)

    def all_photos(self, order: PhotoOrder = "name", keep: Filter | None = None) -> HitList:
        """Every photo in the library (what a browser shows unsearched), or those `keep` keeps
        (safe search, a label): by path ignoring case, or by date taken (else modified),
        newest or oldest first."""
        if order != "name":
            ids, paths = self.store.ids_and_paths(by_date=True)
            if order == "newest":
                ids, paths = ids[::-1], paths[::-1]
        else:
            ids, paths = self.store.ids_and_paths()
            lowered = [p.lower() for p in paths]
            ranked = sorted(range(len(paths)), key=lowered.__getitem__)
            ids, paths = ids[ranked], [paths[i] for i in ranked]
        if keep is not None and not keep.is_empty():
            where, params = keep.sql()
            kept = np.isin(ids, self.store.matching_ids(where, params))
            ids, paths = ids[kept], [p for p, k in zip(paths, kept.tolist()) if k]
        return HitList(ids, paths)

    def search(self, query: Query) -> list[Hit]:
        if self.store.model() is None:
            raise ClipdeskError("The library is empty: index a folder first.")
        return self.searcher().search(query)

    # -- filters --------------------------------------------------------------

    def resolve_filter(self, keep: Filter) -> Filter:
        """A filter as typed, with its folders as stored (absolute, symlinks resolved);
        UsageError for a folder outside the library."""
        resolved = keep.with_folders([real_path(f) for f in keep.folders])
        if keep.labels:
            labels_db.require_labels(self.store, keep.labels)
        return resolved.within_library([f.path for f in self.store.folders()])

    def undescribed(self, keep: Filter) -> int:
        """How many photos this filter cannot judge yet: indexed before their facts were kept."""
        return self.store.count_undescribed() if keep.needs_facts() else 0

    def describe(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Read the facts of photos indexed before they were kept, from headers only; how many."""
        return describe_missing(self.store, progress=progress)

    def list_photos(self, keep: Filter, limit: int | None = None) -> list[ImageRecord]:
        """The photos a filter keeps, oldest first by date taken (else file time)."""
        where, params = keep.sql()
        return self.store.find(where, params, limit)

    def classify(
        self, paths: Sequence[str], labels: LabelSet
    ) -> list[ClassifiedImage]:
        """Label probabilities for each image, indexed or not; a bad file gets an error, not a crash."""
        vectors: list[np.ndarray] = []
        ok: list[int] = []
        out: list[ClassifiedImage] = [ClassifiedImage(p, None, None) for p in paths]
        searcher = Searcher(self.store, self.encoder, self.text_cache)
        try:  # the library's vectors serve only if this very model (and weights) made them
            self.check_model(encoder=self.encoder)
            use_library = self.store.model() == ModelInfo(self.encoder.model_id, self.encoder.dim)
        except ModelMismatch:
            use_library = False
        for index, path in enumerate(paths):
            try:
                require_photo_path(path)
                if use_library:
                    vector, _ = searcher.image_vector(real_path(path))
                else:
                    image, _ = open_image(path, min_side=self.encoder.image_size)
                    vector = encode_images(self.encoder, [image])[0]
                if not np.isfinite(vector).all():
                    raise ClipdeskError(f"{path}: the model gave no usable vector for this image (not a number).")
            except ImageUnreadable as exc:
                # The library lookup names the file by its real path; name it as given.
                reason = str(exc).removeprefix(f"{display(real_path(path))}: ")
                out[index] = ClassifiedImage(path, None, f"{path}: {reason}")
                continue
            except ClipdeskError as exc:
                out[index] = ClassifiedImage(path, None, str(exc))
                continue
            vectors.append(vector)
            ok.append(index)
        results = classify_vectors(self.encoder, np.stack(vectors) if vectors else np.zeros((0, 1)), labels)
        for index, result in zip(ok, results):
            out[index] = ClassifiedImage(paths[index], result)
        return out

    def duplicates(
        self,
        threshold: float | None = None,
        within: Sequence[str] = (),
        progress: FillProgress | None = None,
    ) -> list[DuplicateGroup]:
        """Groups of photos that are one picture, largest first; photos indexed before
        fingerprints were kept get theirs first, from their files (no model needed)."""
        threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        if not 0.0 <= threshold <= 1.0:
            raise ClipdeskError(f"The threshold must be between 0 and 1 (got {threshold}).")
        check_folders(within)
        roots = [real_path(p) for p in within]
        if not self.store.read_only:
            # A library that cannot be written (a read-only disk) is grouped as it is:
            # photos without a fingerprint then match by identical content only.
            fill_missing(self.store, roots, workers=self.options.workers or 2, progress=progress)
        return find_duplicates(self.store, threshold, roots)


    # -- labels and safe search (see labels.py) -----------------------------------------

    def apply_labels(
        self,
        definition: LabelDefinition,
        *,
        within: Sequence[str] = (),
        paths: Sequence[str] | None = None,
        progress: TagProgressCallback | None = None,
        cancel: threading.Event | None = None,
        between_batches: Callable[[], None] | None = None,
    ) -> TagReport:
        """Run a label set over the whole library, the folders `within`, or the photos `paths`,
        from their stored vectors (nothing is decoded or encoded). Re-running a set replaces
        its results; cancelling writes nothing. `between_batches` may block (a pause)."""
        if self.store.model() is None:
            raise ClipdeskError("The library is empty: index a folder first.")
        self.check_model()
        self.check_model(encoder=self.encoder)
        not_indexed: list[str] = []
        whole = False
        if paths is not None:
            given = {real_path(p): p for p in paths}
            found = self.store.images_at(given)
            not_indexed = [shown for real, shown in given.items() if real not in found]
            ids = np.asarray(sorted(s.id for s in found.values()), dtype=np.int64)
        elif within:
            check_folders(within)
            where, params = self.resolve_filter(Filter(folders=tuple(within))).sql()
            ids = self.store.matching_ids(where, params)
        else:
            whole = True
            ids = np.zeros(0, dtype=np.int64)
        batches = self.store.iter_vectors(APPLY_BATCH) if whole else self._vector_batches(ids)
        total = self.store.count_images() if whole else len(ids)
        report = labels_db.apply_label_set(
            self.store, self.encoder, definition, batches, total, whole_library=whole,
            progress=progress, cancel=cancel, between_batches=between_batches,
        )
        report.not_indexed = not_indexed
        return report

    def _vector_batches(self, ids: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(ids), APPLY_BATCH):
            yield self.store.vectors(ids[start : start + APPLY_BATCH])

    def label_sets(self) -> list[LabelSetInfo]:
        """The library's label sets by name, with how many photos carry each label."""
        return labels_db.label_sets(self.store)

    def known_labels(self) -> list[str]:
        """Every label of every set, once each, sorted ignoring case (for completion)."""
        return labels_db.known_labels(self.store)

    def labels_of(self, image_id: int) -> list[ImageLabel]:
        """The label probabilities the library holds for one photo, by set, most likely first."""
        return labels_db.labels_of(self.store, image_id)

    def set_label_set_active(self, name: str, active: bool) -> None:
        """Whether photos indexed later get this label set."""
        labels_db.set_active(self.store, name, active)

    def remove_label_set(self, name: str) -> None:
        """Drop a label set and its results."""
        labels_db.remove_set(self.store, name)

    def export_labels(self, target: str, set_name: str | None = None) -> int:
        """Write path, set, label, probability of every label photos carry (one set, or all) as CSV."""
        if set_name is not None:
            labels_db.require_set(self.store, set_name)
        return write_labels_csv(target, labels_db.carried_rows(self.store, set_name))

    def safe_search(self) -> SafeSearch:
        """The library's safe-search setting (off by default)."""
        return labels_db.safe_search(self.store)

    def set_safe_search(self, setting: SafeSearch) -> None:
        """Keep the safe-search setting in the library."""
        labels_db.set_safe_search(self.store, setting)

    def moderation_applied(self) -> bool:
        """Whether the moderation preset has judged photos of this library (safe search needs it)."""
        return labels_db.moderation_applied(self.store)

    def safe_filter(self, keep: Filter, threshold: float | None = None) -> Filter:
        """`keep`, also hiding what the moderation preset judges unsafe (at `threshold`, else the
        library's); SafeSearchUnavailable if the moderation preset has not been applied."""
        if not labels_db.moderation_applied(self.store):
            raise SafeSearchUnavailable(labels_db.unavailable_message())
        return replace(keep, hide_unsafe_above=self.safe_search().threshold if threshold is None else threshold)


def rebuild(db: Path) -> Path | None:
    """Move the library aside as a dated backup and create an empty one; returns the backup.

    Refuses (LibraryInUse) while a running service uses the library: it would go
    on writing into the backup and the new library would stay empty.
    """
    if db.exists() and (db.is_dir() or not is_sqlite_file(db)):
        # Following the advice must never move someone's photo or document aside.
        raise ClipdeskError(
            f"{display(str(db))} is not a clipdesk library (nor any database), so rebuild "
            "leaves it alone; choose another --db path."
        )
    backup = None
    with librarylock.exclusive(db):
        if db.exists():
            backup = db.with_name(f"{db.name}.backup-{time.strftime('%Y%m%d-%H%M%S')}")
            try:
                db.rename(backup)
                backup.chmod(0o600)  # it still holds the paths and dates of the user's photos
                for suffix in ("-wal", "-shm"):
                    side = db.with_name(db.name + suffix)
                    if side.exists():
                        moved = backup.with_name(backup.name + suffix)
                        side.rename(moved)
                        moved.chmod(0o600)
            except OSError as exc:
                if sys.platform == "win32" and isinstance(exc, PermissionError):
                    # Windows will not rename a file another process has open.
                    raise librarylock.LibraryInUse(librarylock.in_use_message(db)) from None
                raise ClipdeskError(
                    f"Cannot move the old library {display(str(db))} aside ({exc.strerror or exc}); "
                    "make its folder writable and try again."
                ) from None
        Store(db).close()
    return backup
