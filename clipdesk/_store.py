"""The library database: folders, images and their vectors in one SQLite file.

One Store per thread (SQLite connections are not shared). Vectors live in a
sqlite-vec ``vec0`` table; apsw is used because it bundles an SQLite that can
load extensions everywhere, unlike the system Python's sqlite3 on many machines.
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
import numpy as np

from . import _migrations as migrations
from ._errors import InternalError, LibraryBusy, LibraryCorrupt, LibraryError, ModelMismatch
from ._facts import FACTS_VERSION, Facts
from ._logfile import log_path
from ._paths import default_db_path, display, folder_holding, from_db, is_within, to_db

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 15_000
# sqlite-vec refuses k above this in one KNN query.
MAX_KNN = 4096
SQLITE_HEADER = b"SQLite format 3\x00"

# meta key: what identifies the model's weights (see encoder.model_fingerprint).
MODEL_FINGERPRINT = "model_fingerprint"

# An image's date: when it was taken (EXIF), else when its file was last modified,
# both as local time, as a camera writes them (`facts.date_taken` says the same).
TAKEN_SQL = (
    "coalesce(taken_at, strftime('%Y-%m-%dT%H:%M:%S', mtime_ns / 1000000000, 'unixepoch', 'localtime'))"
)


@dataclass(frozen=True)
class Folder:
    id: int
    path: str
    added_at: float
    image_count: int = 0
    # False once the user stopped watching it: its photos stay searchable.
    watched: bool = True


@dataclass(frozen=True)
class ImageState:
    """What the indexer compares with the disk to decide whether a file changed."""

    id: int
    path: str
    folder_id: int
    size: int
    mtime_ns: int
    hash: str
    # None where unknown: images indexed by a library format before 3.
    ctime_ns: int | None = None
    inode: int | None = None


@dataclass(frozen=True)
class FailedFile:
    """A file that could not be indexed, and what it looked like then."""

    path: str
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    reason: str


@dataclass(frozen=True)
class ImageRecord:
    id: int
    path: str
    folder_id: int
    size: int
    mtime_ns: int
    hash: str
    width: int | None
    height: int | None
    taken_at: str | None
    facts: Facts | None = None  # None until its header has been read (see describe)


@dataclass(frozen=True)
class NewImage:
    """An image ready to be written: its file facts, metadata and vector."""

    folder_id: int
    path: str
    size: int
    mtime_ns: int
    hash: str
    width: int | None
    height: int | None
    taken_at: str | None
    ctime_ns: int | None = None
    inode: int | None = None
    facts: Facts | None = None  # None: not known (filled in later from the header)
    phash: int | None = None  # perceptual fingerprint (duplicates.phash); None: not computed


@dataclass(frozen=True)
class PhotoFacts:
    """What finding duplicates and choosing the one to keep need about an image."""

    id: int
    path: str
    hash: str
    phash: int | None
    width: int | None
    height: int | None
    taken_at: str | None

    @property
    def pixels(self) -> int:
        return (self.width or 0) * (self.height or 0)


@dataclass(frozen=True)
class ModelInfo:
    model_id: str
    dim: int


_WRITE_ERRORS = frozenset(
    {
        apsw.SQLITE_IOERR_WRITE,
        apsw.SQLITE_IOERR_FSYNC,
        apsw.SQLITE_IOERR_TRUNCATE,
        apsw.SQLITE_IOERR_SHMSIZE,
    }
)


def rebuild_advice(db_path: str) -> str:
    """How to start over, in the user's own words: with their --db when it is not the default."""
    command = "clipdesk rebuild"
    if os.path.abspath(db_path) != os.path.abspath(default_db_path()):
        command += f" --db {shlex.quote(display(db_path))}"
    return f"Run `{command}` to start a new one (the old file is kept as a backup)."


def is_sqlite_file(path: Path) -> bool:
    """Whether a file starts like an SQLite database (an empty file is a new one)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except OSError:
        return False
    return head == SQLITE_HEADER or head == b""


def damaged_library(db_path: str) -> LibraryError:
    """The error for a file SQLite cannot read: rebuild advice only when it is a database at all."""
    shown = display(db_path)
    if not is_sqlite_file(Path(db_path)):
        return LibraryError(
            f"{shown} is not a clipdesk library (nor any database); choose another --db path. "
            "clipdesk leaves the file as it is."
        )
    return LibraryCorrupt(f"The library {shown} is damaged. " + rebuild_advice(db_path))


def _fails_quick_check(db_path: str) -> bool:
    """Whether SQLite finds the library file itself damaged (a fresh read-only look)."""
    if db_path == ":memory:":
        return False
    try:
        conn = apsw.Connection(db_path, flags=apsw.SQLITE_OPEN_READONLY)
        try:
            return any(row[0] != "ok" for row in conn.execute("PRAGMA quick_check"))
        finally:
            conn.close()
    except (apsw.CorruptError, apsw.NotADBError):
        return True
    except apsw.Error:
        return False


def internal_error(db_path: str, exc: BaseException) -> InternalError:
    """An SQLite failure that is clipdesk's fault, not the library's: logged in full."""
    log.error("internal error using the library %s", display(db_path), exc_info=exc)
    return InternalError(
        f"Internal error while using the library {display(db_path)} ({type(exc).__name__}); "
        f"this is a bug in clipdesk, not a problem with your library. Details are in {log_path()}."
    )


@contextmanager
def translate_errors(db_path: str) -> Iterator[None]:
    """Turn SQLite's failures into errors with a sentence a user can act on."""
    try:
        yield
    except apsw.BusyError:
        raise LibraryBusy(
            f"The library {display(db_path)} is busy: another clipdesk process is writing to it. "
            "Try again in a moment."
        ) from None
    except (apsw.NotADBError, apsw.CorruptError):
        raise damaged_library(db_path) from None
    except apsw.FullError:
        raise LibraryError(
            f"The disk holding {display(db_path)} is full; free some space and try again. "
            "Nothing already saved was lost."
        ) from None
    except apsw.ReadOnlyError:
        raise LibraryError(
            f"The library {display(db_path)} is read-only; searching works, but it cannot be changed."
        ) from None
    except apsw.CantOpenError:
        raise LibraryError(
            f"Cannot open the library {display(db_path)}: check the path and its permissions."
        ) from None
    except apsw.IOError as exc:
        if getattr(exc, "extendedresult", None) in _WRITE_ERRORS:
            # EFBIG (file size limit) and failing disks land here rather than in FullError.
            raise LibraryError(
                f"Could not write to the library {display(db_path)}: the disk may be full or the file "
                "too large for it. Free some space and try again; nothing already saved was lost."
            ) from None
        raise LibraryError(f"Disk error while using the library {display(db_path)}: {exc}") from None
    except apsw.Error as exc:
        # sqlite-vec reports damaged vector pages as a plain error, so ask SQLite
        # whether the file is sound before taking the blame for it.
        if _fails_quick_check(db_path):
            raise damaged_library(db_path) from None
        # Anything else (a constraint, a misuse, an SQL error) is ours to fix.
        raise internal_error(db_path, exc) from None


def _writable(path: Path) -> bool:
    """Whether this process may change the library (the file, and its folder for the WAL)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)


def _create_private_file(path: Path) -> None:
    """Create the database file readable by its owner only, before SQLite does."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    except OSError as exc:
        raise LibraryError(
            f"Cannot create the library {display(str(path))}: {exc.strerror or exc}."
        ) from None
    os.close(fd)


class Store:
    """A connection to one library. Use from the thread that opened it.

    ``read_only`` opens it for queries alone (the interactive lane, search on a
    read-only disk); a library that cannot be written is opened so by itself.
    """

    def __init__(self, path: str | Path, *, create: bool = True, read_only: bool = False) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            if not self.path.exists():
                if not create or read_only:
                    raise LibraryError(f"No library at {display(str(self.path))}: index a folder first.")
                _create_private_file(self.path)
            elif self.path.is_dir():
                raise LibraryError(f"{display(str(self.path))} is a folder, not a library file.")
            elif not self.path.is_file():
                raise LibraryError(
                    f"{display(str(self.path))} is not a regular file, so it cannot be a library."
                )
            elif not is_sqlite_file(self.path):
                raise damaged_library(str(self.path))
            read_only = read_only or not _writable(self.path)
        self.read_only = read_only
        with translate_errors(str(self.path)):
            self.conn = self._connect(read_only)
            self._load_vec()
            self._refuse_foreign()  # before WAL mode would rewrite another program's file
            self._refuse_newer()
            if not read_only:
                self._pragmas()
                self._migrate()
            else:
                self._refuse_older()
                self.conn.execute("PRAGMA query_only = ON")
        self._vec_dim = self._read_vec_dim()
        self._count: tuple[object, int] | None = None  # (change marker, images then)

    # -- connection set-up -------------------------------------------------

    def _connect(self, read_only: bool) -> apsw.Connection:
        if not read_only:
            conn = apsw.Connection(str(self.path))
        else:
            conn = apsw.Connection(str(self.path), flags=apsw.SQLITE_OPEN_READONLY)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except (apsw.CantOpenError, apsw.ReadOnlyError):
                # A WAL library on a read-only disk cannot make its shared-memory file;
                # nothing else can be writing there, so read it as an unchanging file.
                conn.close()
                uri = Path(os.path.abspath(self.path)).as_uri() + "?immutable=1"
                conn = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
        conn.setbusytimeout(BUSY_TIMEOUT_MS)
        return conn

    def _load_vec(self) -> None:
        import sqlite_vec

        try:
            self.conn.enable_load_extension(True)
            self.conn.load_extension(sqlite_vec.loadable_path())
        except apsw.Error as exc:
            raise LibraryError(f"Cannot load the sqlite-vec extension: {exc}") from None

    def _pragmas(self) -> None:
        self.conn.execute("PRAGMA foreign_keys = ON")
        # Turning a new file to WAL needs it alone for a moment, and SQLite does
        # not wait for that (no busy handler): retry while another connection
        # (the service's other thread, another process) is opening it too.
        for attempt in range(200):
            try:
                mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()
                break
            except apsw.BusyError:
                if attempt == 199:
                    raise
                time.sleep(0.025)
        del mode  # ':memory:' answers 'memory'; files answer 'wal'
        # NORMAL in WAL mode never corrupts; at worst the last commit before a
        # power cut is lost, which the next index run redoes.
        self.conn.execute("PRAGMA synchronous = NORMAL")

    def _scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None

    def _refuse_foreign(self) -> None:
        """Another program's database (which may set user_version too) is left untouched."""
        version = self._scalar("PRAGMA user_version")
        tables = self._scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
        if (version != 0 or tables) and not self._is_clipdesk():
            raise LibraryCorrupt(
                f"{display(str(self.path))} is an SQLite database but not a clipdesk library; "
                "choose another --db path."
            )

    def _refuse_newer(self) -> None:
        version = self._scalar("PRAGMA user_version")
        if version > migrations.LATEST:
            raise LibraryError(
                f"The library {display(str(self.path))} was made by a newer clipdesk (format {version}; "
                f"this one reads up to {migrations.LATEST}); update clipdesk to open it. "
                "It was left unchanged."
            )

    def _refuse_older(self) -> None:
        version = self._scalar("PRAGMA user_version")
        if version == 0:
            raise LibraryError(f"No library at {display(str(self.path))}: index a folder first.")
        if version < migrations.LATEST:
            raise LibraryError(
                f"The library {display(str(self.path))} is in an older format and is read-only here, "
                "so it cannot be upgraded; open it once where it can be written."
            )

    def _migrate(self) -> None:
        if self._scalar("PRAGMA user_version") == 0:
            # Look again under the write lock: another connection (the service's
            # other thread, another process) may be creating the library right now.
            with self._transaction():
                version = self._scalar("PRAGMA user_version")
                tables = self._scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
                if version == 0 and tables:
                    raise LibraryCorrupt(
                        f"{display(str(self.path))} is an SQLite database but not a clipdesk library; "
                        "choose another --db path."
                    )
                if version == 0:
                    migrations.create(self.conn)
        elif not self._is_clipdesk():
            raise LibraryCorrupt(f"{display(str(self.path))} is not a clipdesk library.")
        disk = None if str(self.path) == ":memory:" else self.path
        migrations.upgrade(self.conn, disk, self._transaction)

    def _is_clipdesk(self) -> bool:
        if not self._scalar("SELECT count(*) FROM sqlite_master WHERE name = 'meta'"):
            return False
        try:
            app = self._scalar("SELECT value FROM meta WHERE key = 'app'")
        except apsw.SQLError:  # a 'meta' table of another shape
            return False
        return bool(app == migrations.APP_ID)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions -------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so two writers queue on the
        # busy timeout instead of deadlocking when a reader upgrades.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[None]:
        """One atomic write transaction; SQLite errors become LibraryErrors."""
        with translate_errors(str(self.path)), self._transaction():
            yield

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads that all see the library as it was at the first one (a read transaction),
        while other connections go on writing: for exporting a whole library at once."""
        with translate_errors(str(self.path)):
            self.conn.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            with translate_errors(str(self.path)):
                self.conn.execute("COMMIT")

    def _query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        with translate_errors(str(self.path)):
            return list(self.conn.execute(sql, params))

    # -- meta and model -----------------------------------------------------

    def meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def set_meta(self, key: str, value: str | None) -> None:
        """Keep a setting in the library (None deletes it); its own transaction."""
        with self.write():
            if value is None:
                self.conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                self._set_meta(key, value)

    def model(self) -> ModelInfo | None:
        """The model whose vectors this library holds, if any."""
        model_id, dim = self.meta("model_id"), self.meta("model_dim")
        return ModelInfo(model_id, int(dim)) if model_id and dim else None

    def vec_dim(self) -> int | None:
        """The vector size now: another connection may have indexed the first images,
        or re-indexed with another model, since this one opened."""
        self._vec_dim = self._read_vec_dim()
        return self._vec_dim

    def _read_vec_dim(self) -> int | None:
        info = self.model()
        return info.dim if info else None

    def check_model(self, model_id: str, dim: int | None = None, fingerprint: str | None = None) -> None:
        """The one rule for a wrong model: vectors of another model (or other weights) never mix.

        Raises ModelMismatch unless the library is empty or its vectors came from this model;
        dim and fingerprint are checked when known (once the model's folder has been read)."""
        current = self.model()
        if current is None:
            return
        stored = self.meta(MODEL_FINGERPRINT)
        if current.model_id != model_id:
            problem = (
                f"This library was indexed with the model '{current.model_id}', not "
                f"'{model_id}'. Leave out --model to use the library's model, or "
                f"re-index with `clipdesk index --reindex --model {model_id}`."
            )
        elif dim is not None and dim != current.dim:
            problem = (
                f"The model '{model_id}' now gives vectors of size {dim}, but this library holds "
                f"vectors of size {current.dim}: the model was replaced since it was indexed. "
                "Restore that model, or re-index with `clipdesk index --reindex`."
            )
        elif fingerprint is not None and stored is not None and stored != fingerprint:
            problem = (
                f"The weights of the model '{model_id}' changed since this library was indexed. "
                "Restore the old weights, or re-index with `clipdesk index --reindex`."
            )
        else:
            return
        # A library with no images yet (e.g. its first model failed to load) may switch freely.
        if self.count_images() > 0:
            raise ModelMismatch(problem)

    def bind_model(
        self, model_id: str, dim: int, *, reindex: bool = False, fingerprint: str | None = None
    ) -> None:
        """Record the model for this library; refuse another unless reindex drops the old vectors."""
        if not reindex:
            self.check_model(model_id, dim, fingerprint)
        if self._bound_to(model_id, dim, fingerprint):
            if fingerprint is not None and self.meta(MODEL_FINGERPRINT) is None:
                # A library indexed before fingerprints were kept adopts its model's weights as they are now.
                log.info("library %s: recording the weights fingerprint of %s", self.path, model_id)
                self.set_meta(MODEL_FINGERPRINT, fingerprint)
            return
        with self.write():
            # Decide again under the write lock: another process may have bound a model
            # and indexed with it since we looked, and its work must not be dropped.
            if not reindex:
                self.check_model(model_id, dim, fingerprint)
            if self._bound_to(model_id, dim, fingerprint):
                self._vec_dim = int(dim)
                return
            self.conn.execute("DROP TRIGGER IF EXISTS images_drop_vector")
            self.conn.execute("DROP TABLE IF EXISTS vectors")
            # Images whose vectors came from another model must be encoded again.
            self.conn.execute("DELETE FROM images")
            self.conn.execute("DELETE FROM failed_files")  # a re-index tries everything again
            self.conn.execute(
                "CREATE VIRTUAL TABLE vectors USING vec0("
                f"image_id INTEGER PRIMARY KEY, embedding float[{int(dim)}] distance_metric=cosine)"
            )
            self.conn.execute(
                "CREATE TRIGGER images_drop_vector AFTER DELETE ON images "
                "BEGIN DELETE FROM vectors WHERE image_id = old.id; END"
            )
            self._set_meta("model_id", model_id)
            self._set_meta("model_dim", str(int(dim)))
            self.conn.execute("DELETE FROM meta WHERE key = ?", (MODEL_FINGERPRINT,))
            if fingerprint is not None:
                self._set_meta(MODEL_FINGERPRINT, fingerprint)
        self._vec_dim = int(dim)

    def _bound_to(self, model_id: str, dim: int, fingerprint: str | None) -> bool:
        """Whether this library holds vectors of this model (and these weights, where known)."""
        stored = self.meta(MODEL_FINGERPRINT)
        return self.model() == ModelInfo(model_id, dim) and (
            stored is None or stored == fingerprint or fingerprint is None
        )

    # -- folders ------------------------------------------------------------

    def folders(self) -> list[Folder]:
        """Every folder with its image count (callers per change: `folder_roots` skips the counts)."""
        roots = self.folder_roots()
        if len(roots) == 1:
            # Every image belongs to a folder. SQLite counts a whole table from its
            # index pages (~3 ms of CPU at a million rows, and count_images keeps
            # the answer until the next commit); counting one folder's rows steps
            # through each of them (~35 ms).
            only = roots[0]
            return [Folder(only.id, only.path, only.added_at, self.count_images(), only.watched)]
        rows = self._query(
            "SELECT f.id, f.path, f.added_at, "
            "(SELECT count(*) FROM images i WHERE i.folder_id = f.id), f.watched FROM folders f ORDER BY f.path"
        )
        return [Folder(r[0], from_db(r[1]), r[2], r[3], bool(r[4])) for r in rows]

    def unwatched_folders(self) -> set[str]:
        """Folders the user stopped watching; their photos stay searchable."""
        return {f.path for f in self.folder_roots() if not f.watched}

    def set_unwatched(self, paths: Iterable[str]) -> None:
        """Mark exactly these library folders as not watched (others as watched); one transaction."""
        wanted = {to_db(p) for p in paths}
        with self.write():
            for folder_id, path, watched in list(self.conn.execute("SELECT id, path, watched FROM folders")):
                should = path not in wanted
                if bool(watched) != should:
                    self.conn.execute("UPDATE folders SET watched = ? WHERE id = ?", (int(should), folder_id))

    def folder_by_path(self, path: str) -> Folder | None:
        rows = self._query(
            "SELECT id, path, added_at, watched FROM folders WHERE path = ?", (to_db(path),)
        )
        return Folder(rows[0][0], from_db(rows[0][1]), rows[0][2], 0, bool(rows[0][3])) if rows else None

    def folder_roots(self) -> list[Folder]:
        """Every folder without its image count (which costs a pass over all images)."""
        rows = self._query("SELECT id, path, added_at, watched FROM folders ORDER BY path")
        return [Folder(r[0], from_db(r[1]), r[2], 0, bool(r[3])) for r in rows]

    def folder_containing(self, path: str) -> Folder | None:
        """The library folder that covers this path (itself or an ancestor)."""
        folders = {folder.path: folder for folder in self.folder_roots()}
        holder = folder_holding(path, folders)
        return None if holder is None else folders[holder]

    def add_folder(self, path: str) -> Folder:
        """Remember a folder; a folder inside one already known is covered by it.

        Adding a parent of known folders takes their images over, so each photo
        belongs to exactly one folder.
        """
        covering = self.folder_containing(path)
        if covering is not None:
            return covering
        with self.write():
            # Look again under the write lock: another process may have added it meanwhile.
            if self.folder_containing(path) is None:
                self.conn.execute(
                    "INSERT INTO folders(path, added_at) VALUES (?, ?)", (to_db(path), time.time())
                )
                new_id = self.conn.last_insert_rowid()
                for folder in self.folder_roots():
                    if folder.id != new_id and is_within(folder.path, path):
                        for table in ("images", "failed_files"):
                            self.conn.execute(
                                f"UPDATE {table} SET folder_id = ? WHERE folder_id = ?", (new_id, folder.id)
                            )
                        self.conn.execute("DELETE FROM folders WHERE id = ?", (folder.id,))
        added = self.folder_containing(path)
        assert added is not None
        return added

    def remove_folder(self, path: str) -> int:
        """Forget a folder and its images; returns how many images were dropped."""
        folder = self.folder_by_path(path)
        if folder is None:
            return 0
        with self.write():
            count = self._scalar(
                "SELECT count(*) FROM images WHERE folder_id = ?", (folder.id,)
            )
            self.conn.execute("DELETE FROM folders WHERE id = ?", (folder.id,))
        return int(count)

    # -- images -------------------------------------------------------------

    def image_states(self, folder_id: int) -> dict[str, ImageState]:
        """Every image of a folder by path, for comparing with a fresh scan (bulk work)."""
        rows = self._query(_STATE_SELECT + " WHERE folder_id = ?", (folder_id,))
        return {from_db(r[1]): _state(r) for r in rows}

    def images_at(self, paths: Iterable[str]) -> dict[str, ImageState]:
        """The images at these paths, by path (one index lookup each: for a few changes)."""
        keys = [to_db(p) for p in dict.fromkeys(paths)]
        out: dict[str, ImageState] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._query(_STATE_SELECT + f" WHERE path IN ({marks})", chunk):
                out[from_db(row[1])] = _state(row)
        return out

    def images_under(self, path: str) -> list[ImageState]:
        """The image at this path and every image below it, by a range of the path index."""
        clause, params = under_sql(path)
        return [_state(r) for r in self._query(_STATE_SELECT + f" WHERE {clause}", params)]

    def ids_and_paths(
        self, *, by_date: bool = False, where: str = "1", params: Sequence[Any] = ()
    ) -> tuple[np.ndarray, list[str]]:
        """Every image's id and path (or those an SQL condition keeps): in no particular order,
        or oldest first.

        An image's date is when it was taken (EXIF), else when its file was last
        modified, both as local time, as a camera writes them.
        """
        order = f" ORDER BY {TAKEN_SQL}, path" if by_date else ""
        rows = self._query(f"SELECT id, path FROM images WHERE {where}" + order, tuple(params))
        ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        return ids, [from_db(r[1]) for r in rows]

    def images_with_hash(self, digest: str) -> list[ImageState]:
        """Every image holding this content."""
        return [_state(r) for r in self._query(_STATE_SELECT + " WHERE hash = ?", (digest,))]

    def holds_hash(self, digest: str) -> bool:
        """True if some image has this content (one lookup in the hash index)."""
        return bool(self._query("SELECT 1 FROM images WHERE hash = ? LIMIT 1", (digest,)))

    def image_with_hash(self, content_hash: str) -> ImageRecord | None:
        """Some image whose content has this hash, as the database holds it now."""
        rows = self._query(_IMAGE_SELECT + " WHERE hash = ? LIMIT 1", (content_hash,))
        return _record(rows[0]) if rows else None

    def image(self, image_id: int) -> ImageRecord | None:
        rows = self._query(_IMAGE_SELECT + " WHERE id = ?", (image_id,))
        return _record(rows[0]) if rows else None

    def image_by_path(self, path: str) -> ImageRecord | None:
        rows = self._query(_IMAGE_SELECT + " WHERE path = ?", (to_db(path),))
        return _record(rows[0]) if rows else None

    def images(self, ids: Iterable[int]) -> dict[int, ImageRecord]:
        """Records for many ids at once (for decorating search results)."""
        id_list = list(ids)
        out: dict[int, ImageRecord] = {}
        for start in range(0, len(id_list), 500):
            chunk = id_list[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._query(_IMAGE_SELECT + f" WHERE id IN ({marks})", chunk):
                out[row[0]] = _record(row)
        return out

    def count_images(self) -> int:
        """How many images the library holds; counted again only after a commit."""
        # Counting visits every page of an index (~3 ms of CPU at a million photos),
        # and a watcher asks several times per change: once per commit is enough.
        marker = self.change_marker()
        if self._count is None or self._count[0] != marker:
            self._count = (marker, int(self._query("SELECT count(*) FROM images")[0][0]))
        return self._count[1]

    # The writers below expect to run inside `with store.write():`.

    def insert_image(self, image: NewImage, vector: np.ndarray) -> int | None:
        """Add an image, or replace the one at its path (another process may have added
        it since we looked); None if its folder has left the library meanwhile."""
        path = to_db(image.path)
        if not self._folder_exists(image.folder_id):
            return None
        holder = self._scalar("SELECT id FROM images WHERE path = ?", (path,))
        if holder is not None:
            self._overwrite(int(holder), image, vector)
            return int(holder)
        self.conn.execute(
            "INSERT INTO images(folder_id, path, size, mtime_ns, hash, width, height, taken_at, "
            f"indexed_at, ctime_ns, inode, {_FACT_COLUMNS}, phash) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {_PHASH})",
            (
                image.folder_id,
                path,
                image.size,
                image.mtime_ns,
                image.hash,
                image.width,
                image.height,
                image.taken_at,
                time.time(),
                image.ctime_ns,
                image.inode,
                *_fact_values(image.facts),
                image.phash,
                image.hash,
            ),
        )
        self._clear_failure(path)
        image_id = self.conn.last_insert_rowid()
        self.conn.execute(
            "INSERT INTO vectors(image_id, embedding) VALUES (?, ?)",
            (image_id, _blob(vector)),
        )
        return int(image_id)

    def replace_image(self, image_id: int, image: NewImage, vector: np.ndarray) -> int | None:
        """New content at a known path: new facts and a new vector, same id.

        If another process removed that image meanwhile, the image is added again
        (see insert_image); returns its id, or None if its folder is gone.
        """
        if not self._folder_exists(image.folder_id):
            return None
        if self._scalar("SELECT path FROM images WHERE id = ?", (image_id,)) != to_db(image.path):
            return self.insert_image(image, vector)
        self._overwrite(image_id, image, vector)
        return image_id

    def _overwrite(self, image_id: int, image: NewImage, vector: np.ndarray) -> None:
        self.conn.execute(
            "UPDATE images SET folder_id = ?, size = ?, mtime_ns = ?, hash = ?, width = ?, "
            f"height = ?, taken_at = ?, indexed_at = ?, ctime_ns = ?, inode = ?, {_FACTS_SET}, "
            f"phash = {_PHASH} "
            "WHERE id = ?",
            (
                image.folder_id,
                image.size,
                image.mtime_ns,
                image.hash,
                image.width,
                image.height,
                image.taken_at,
                time.time(),
                image.ctime_ns,
                image.inode,
                *_fact_values(image.facts),
                image.phash,
                image.hash,
                image_id,
            ),
        )
        self._clear_failure(to_db(image.path))
        self.conn.execute("DELETE FROM vectors WHERE image_id = ?", (image_id,))
        self.conn.execute(
            "INSERT INTO vectors(image_id, embedding) VALUES (?, ?)", (image_id, _blob(vector))
        )

    def update_file(
        self,
        image_id: int,
        path: str,
        folder_id: int,
        size: int,
        mtime_ns: int,
        ctime_ns: int | None,
        inode: int | None,
    ) -> bool:
        """A file moved, renamed or touched without its content changing: the vector stays.

        False if another process removed the image or its folder meanwhile (nothing
        changed). A row another process added at the new path meanwhile gives way.
        """
        if not self._folder_exists(folder_id):
            return False
        if self._scalar("SELECT 1 FROM images WHERE id = ?", (image_id,)) is None:
            return False
        self.conn.execute("DELETE FROM images WHERE path = ? AND id != ?", (to_db(path), image_id))
        self.conn.execute(
            "UPDATE images SET path = ?, folder_id = ?, size = ?, mtime_ns = ?, ctime_ns = ?, "
            "inode = ? WHERE id = ?",
            (to_db(path), folder_id, size, mtime_ns, ctime_ns, inode, image_id),
        )
        self._clear_failure(to_db(path))
        return True

    def set_file_identity(self, identities: Iterable[tuple[int, int, int]]) -> None:
        """Record (image id, ctime_ns, inode) for images indexed before these were kept."""
        self.conn.executemany(
            "UPDATE images SET ctime_ns = ?, inode = ? WHERE id = ?",
            ((ctime, inode, image_id) for image_id, ctime, inode in identities),
        )

    # -- photo facts and filters ---------------------------------------------

    def undescribed(self, after_id: int = 0, limit: int = 500) -> list[tuple[int, str]]:
        """(id, path) of images whose header facts are not read yet, by id."""
        rows = self._query(
            "SELECT id, path FROM images WHERE facts_version IS NULL AND id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [(int(r[0]), from_db(r[1])) for r in rows]

    def count_undescribed(self) -> int:
        return int(self._scalar("SELECT count(*) FROM images WHERE facts_version IS NULL"))

    def set_facts(self, described: Iterable[tuple[int, Facts]]) -> None:
        """Record the header facts of images already in the library (their vectors stay)."""
        self.conn.executemany(
            f"UPDATE images SET {_FACTS_SET} WHERE id = ?",
            ((*_fact_values(facts), image_id) for image_id, facts in described),
        )

    def matching_ids(self, where: str, params: Sequence[Any]) -> np.ndarray:
        """The ids of the images an SQL condition over `images` keeps (see filters.Filter)."""
        with translate_errors(str(self.path)):
            cursor = self.conn.execute(f"SELECT id FROM images WHERE {where}", tuple(params))
            return np.fromiter((r[0] for r in cursor), dtype=np.int64)

    def tally_by(
        self,
        columns: str,
        per_row: Sequence[tuple[str, Sequence[Any]]],
        per_group: Sequence[tuple[str, Sequence[Any]]],
        where: str,
        params: Sequence[Any],
    ) -> list[tuple[Any, ...]]:
        """Among the images an SQL condition over `images` keeps (see filters.Filter), grouped by
        some columns: (values…, whether each `per_group` condition holds for those values,
        how many images each `per_row` condition keeps), in one pass.

        A condition on the grouped columns alone is asked once per group rather than per image.
        """
        sums = ", ".join(f"sum(CASE WHEN ({c}) THEN 1 ELSE 0 END) AS n{i}" for i, (c, _) in enumerate(per_row))
        truths = "".join(f"CASE WHEN ({c}) THEN 1 ELSE 0 END, " for c, _ in per_group)
        counts = ", ".join(f"n{i}" for i in range(len(per_row)))
        sql = (
            f"SELECT {columns}, {truths}{counts} "
            f"FROM (SELECT {columns}, {sums} FROM images WHERE {where} GROUP BY {columns})"
        )
        args = (*(p for _, ps in per_group for p in ps), *(p for _, ps in per_row for p in ps), *params)
        return self._query(sql, args)

    def find(self, where: str, params: Sequence[Any], limit: int | None = None) -> list[ImageRecord]:
        """The images an SQL condition keeps, oldest first by date taken (else file time)."""
        sql = _IMAGE_SELECT + f" WHERE {where} ORDER BY {TAKEN_SQL}, path"
        args = list(params)
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_record(r) for r in self._query(sql, args)]

    # -- perceptual fingerprints (see duplicates.py) ------------------------------

    def duplicate_facts(self) -> list[PhotoFacts]:
        """Every image with what finding and ranking duplicates needs (bulk work)."""
        rows = self._query("SELECT id, path, hash, phash, width, height, taken_at FROM images")
        return [PhotoFacts(r[0], from_db(r[1]), *r[2:]) for r in rows]

    def missing_phashes(self) -> list[tuple[int, str, str]]:
        """(id, path, content hash) of the images without a fingerprint yet."""
        rows = self._query("SELECT id, path, hash FROM images WHERE phash IS NULL")
        return [(r[0], from_db(r[1]), r[2]) for r in rows]

    def phashes(self, ids: Sequence[int]) -> dict[int, int]:
        """The fingerprints of these images, by id (those without one are left out)."""
        out: dict[int, int] = {}
        for start in range(0, len(ids), 500):
            chunk = [int(i) for i in ids[start : start + 500]]
            marks = ",".join("?" * len(chunk))
            rows = self._query(f"SELECT id, phash FROM images WHERE phash IS NOT NULL AND id IN ({marks})", chunk)
            out.update((int(r[0]), int(r[1])) for r in rows)
        return out

    def set_phashes(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Record (image id, fingerprint) pairs (inside `write()`)."""
        self.conn.executemany("UPDATE images SET phash = ? WHERE id = ?", ((h, i) for i, h in pairs))

    # -- files that failed ----------------------------------------------------

    def failures(self, folder_id: int) -> dict[str, FailedFile]:
        """The files of a folder that could not be indexed, by path."""
        rows = self._query(
            "SELECT path, size, mtime_ns, ctime_ns, inode, reason FROM failed_files "
            "WHERE folder_id = ?",
            (folder_id,),
        )
        return {from_db(r[0]): FailedFile(from_db(r[0]), *r[1:]) for r in rows}

    def failure(self, path: str) -> FailedFile | None:
        rows = self._query(
            "SELECT path, size, mtime_ns, ctime_ns, inode, reason FROM failed_files WHERE path = ?",
            (to_db(path),),
        )
        return FailedFile(from_db(rows[0][0]), *rows[0][1:]) if rows else None

    def record_failure(self, folder_id: int, failed: FailedFile) -> None:
        """Remember a file that could not be indexed (not if its folder is gone meanwhile)."""
        self.conn.execute(
            "INSERT OR REPLACE INTO failed_files(path, folder_id, size, mtime_ns, ctime_ns, inode, "
            "reason, failed_at) SELECT ?, ?, ?, ?, ?, ?, ?, ? "
            "WHERE EXISTS (SELECT 1 FROM folders WHERE id = ?)",
            (
                to_db(failed.path), folder_id, failed.size, failed.mtime_ns, failed.ctime_ns,
                failed.inode, failed.reason, time.time(), folder_id,
            ),
        )

    def forget_failures(self, paths: Iterable[str]) -> None:
        """Drop the records of failed files that are no longer there."""
        self.conn.executemany("DELETE FROM failed_files WHERE path = ?", ((to_db(p),) for p in paths))

    def _clear_failure(self, db_path: Any) -> None:
        self.conn.execute("DELETE FROM failed_files WHERE path = ?", (db_path,))

    def _folder_exists(self, folder_id: int) -> bool:
        # `forget` in another process may have dropped it since this one planned its work.
        return self._scalar("SELECT 1 FROM folders WHERE id = ?", (folder_id,)) is not None

    def delete_images(self, ids: Iterable[int]) -> None:
        # The images_drop_vector trigger removes their vectors too.
        self.conn.executemany("DELETE FROM images WHERE id = ?", ((i,) for i in ids))

    # -- vectors ------------------------------------------------------------

    def vector(self, image_id: int) -> np.ndarray | None:
        """An image's stored vector; None if it has none or only an unusable (NaN) one."""
        rows = self._query("SELECT embedding FROM vectors WHERE image_id = ?", (image_id,))
        vector = np.frombuffer(rows[0][0], dtype=np.float32).copy() if rows else None
        return vector if vector is not None and np.isfinite(vector).all() else None

    def unusable_vectors(self) -> list[int]:
        """Images whose stored vector is not a number (NaN or infinity): search cannot find them."""
        return [
            int(i) for ids, vecs in self._all_vectors() for i in ids[~np.isfinite(vecs).all(axis=1)]
        ]

    def mark_for_encoding(self, ids: Sequence[int]) -> None:
        """Make the next index encode these images again (their file facts no longer match)."""
        with self.write():
            self.conn.executemany(
                "UPDATE images SET hash = '', mtime_ns = -1 WHERE id = ?", ((int(i),) for i in ids)
            )

    def iter_vectors(self, batch: int = 10_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All usable (ids, vectors) in chunks, for building an in-memory index."""
        for ids, vecs in self._all_vectors(batch):
            usable = np.isfinite(vecs).all(axis=1)
            yield (ids, vecs) if usable.all() else (ids[usable], vecs[usable])

    def _all_vectors(self, batch: int = 10_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self.vec_dim() is None:
            return
        # Reading sqlite-vec's chunk tables directly is ~25x faster than its
        # row-by-row scan (0.1 s against 2.3 s for 100k vectors); should a future
        # sqlite-vec lay them out differently, the public way below still works.
        try:
            chunks = self._vector_chunks()
            first = next(chunks, None)
        except (apsw.Error, ValueError, KeyError):
            first = chunks = None
        if chunks is not None:
            if first is not None:
                yield first
                yield from chunks
            return
        last = -1
        while True:
            rows = self._query(
                "SELECT image_id, embedding FROM vectors WHERE image_id > ? "
                "ORDER BY image_id LIMIT ?",
                (last, batch),
            )
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
            yield ids, vecs.reshape(len(rows), -1)
            last = int(ids[-1])

    def vectors(self, ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """The vectors of many images, by point lookups: (ids found, vectors), in the order asked."""
        dim = self.vec_dim() or 0
        found: list[int] = []
        blobs: list[bytes] = []
        with translate_errors(str(self.path)):
            for image_id in ids:
                row = self.conn.execute(
                    "SELECT embedding FROM vectors WHERE image_id = ?", (int(image_id),)
                ).fetchone()
                if row is not None:
                    found.append(int(image_id))
                    blobs.append(row[0])
        vecs = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(found), dim)
        usable = np.isfinite(vecs).all(axis=1)  # a NaN vector matches nothing: leave it out
        return np.asarray(found, dtype=np.int64)[usable], vecs[usable]

    def vector_stamps(self) -> tuple[np.ndarray, np.ndarray]:
        """(image ids, when each vector was written), ordered by id, to find what changed."""
        # Straight from the cursor into one array: a list of a million row tuples
        # would cost ~150 MB that Python keeps after it is freed.
        with translate_errors(str(self.path)):
            cursor = self.conn.execute("SELECT id, indexed_at FROM images ORDER BY id")
            rows = np.fromiter(cursor, dtype=np.dtype([("id", np.int64), ("at", np.float64)]))
        return rows["id"].copy(), rows["at"].copy()

    def change_marker(self) -> tuple[int, int, int]:
        """Differs whenever this connection or any other has committed since the last call's answer."""
        # data_version sees other connections' commits; total_changes sees our own.
        return id(self.conn), self.data_version(), int(self.conn.total_changes())

    def _vector_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) per sqlite-vec storage chunk; ValueError if the layout is not the known one."""
        dim = self._vec_dim
        assert dim is not None
        with translate_errors(str(self.path)):
            chunks = {
                int(cid): (int(size), validity, rowids)
                for cid, size, validity, rowids in self.conn.execute(
                    "SELECT chunk_id, size, validity, rowids FROM vectors_chunks"
                )
            }
            rows = self.conn.execute("SELECT rowid, vectors FROM vectors_vector_chunks00")
        for cid, blob in rows:
            size, validity, rowids = chunks[int(cid)]
            if len(blob) != size * dim * 4 or len(rowids) != size * 8:
                raise ValueError("unexpected sqlite-vec chunk layout")
            keep = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")[:size]
            keep = keep.astype(bool)
            if keep.any():
                ids = np.frombuffer(rowids, dtype=np.int64)[keep]
                yield ids, np.frombuffer(blob, dtype=np.float32).reshape(size, dim)[keep]

    def knn(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Nearest images to a vector by cosine similarity: (image id, similarity), best first."""
        if self.vec_dim() is None or k <= 0 or not np.isfinite(query).all():
            return []
        k = min(k, MAX_KNN)
        ask = k
        while True:
            rows = self._query(
                "SELECT image_id, distance FROM vectors WHERE embedding MATCH ? AND k = ? "
                "ORDER BY distance",
                (_blob(query), ask),
            )
            # A vector that is not a number has no distance (sqlite-vec gives NULL, first):
            # skip it, and ask for more so it costs no real result.
            hits = [(int(i), 1.0 - float(d)) for i, d in rows if d is not None and math.isfinite(d)]
            if len(hits) >= k or len(rows) < ask or ask >= MAX_KNN:
                return hits[:k]
            ask = min(MAX_KNN, ask + (len(rows) - len(hits)))

    # -- health -------------------------------------------------------------

    def data_version(self) -> int:
        """Changes whenever another connection commits (to refresh cached indexes)."""
        return int(self._query("PRAGMA data_version")[0][0])

    def integrity(self) -> str:
        """'ok', or a description of what is wrong with the database."""
        try:
            problems = [r[0] for r in self._query("PRAGMA quick_check") if r[0] != "ok"]
            if problems:
                return "; ".join(problems[:5])
            if self.vec_dim() is None:
                return "ok"
            orphans = self._query(
                "SELECT count(*) FROM vectors WHERE image_id NOT IN (SELECT id FROM images)"
            )[0][0]
            missing = self._query(
                "SELECT count(*) FROM images WHERE id NOT IN (SELECT image_id FROM vectors)"
            )[0][0]
            dupes = self._query(
                "SELECT count(*) FROM (SELECT path FROM images GROUP BY path HAVING count(*) > 1)"
            )[0][0]
            unusable = len(self.unusable_vectors())
        except LibraryError as exc:
            return str(exc)
        found = []
        if unusable:
            found.append(
                f"{unusable} photo{'s' if unusable != 1 else ''} with a vector that is not a number "
                "(search skips them; `clipdesk index` encodes them again)"
            )
        if orphans:
            found.append(f"{orphans} vectors without an image")
        if missing:
            found.append(f"{missing} images without a vector")
        if dupes:
            found.append(f"{dupes} paths stored twice")
        return "; ".join(found) or "ok"

    def checkpoint(self) -> None:
        """Fold the WAL back into the main file (on clean shutdown)."""
        with translate_errors(str(self.path)):
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


_FACT_COLUMNS = (
    "taken_offset, camera_make, camera_model, lens, gps_lat, gps_lon, file_type, facts_version"
)
_FACTS_SET = ", ".join(f"{c.strip()} = ?" for c in _FACT_COLUMNS.split(","))

_IMAGE_SELECT = (
    f"SELECT id, path, folder_id, size, mtime_ns, hash, width, height, taken_at, {_FACT_COLUMNS} "
    "FROM images"
)


def under_sql(path: str) -> tuple[str, list[Any]]:
    """An SQL condition on `images.path`: this path and every path below it, as ranges of the index."""
    below = path.rstrip(os.sep) + os.sep
    # Every path below starts with `below`; the next character after the
    # separator ends the range. Names that are not UTF-8 are BLOBs, which
    # SQLite orders after all text: they get a range of their own.
    clauses = ["path = ?", "(path >= ? AND path < ?)"]
    params: list[Any] = [to_db(path), os.fsencode(below), os.fsencode(below[:-1] + chr(ord(os.sep) + 1))]
    if isinstance(to_db(below), str):
        clauses.append("(path >= ? AND path < ?)")
        params += [below, below[:-1] + chr(ord(os.sep) + 1)]
    return "(" + " OR ".join(clauses) + ")", params


def _fact_values(facts: Facts | None) -> tuple[Any, ...]:
    """The values of _FACT_COLUMNS; all NULL (to be read later) for unknown facts."""
    if facts is None:
        return (None,) * 8
    return (
        facts.taken_offset, facts.camera_make, facts.camera_model, facts.lens,
        facts.latitude, facts.longitude, facts.file_type, FACTS_VERSION,
    )


# An image written without a fingerprint (a copy of content the library holds,
# which is not decoded) takes the one its content already has.
_PHASH = "coalesce(?, (SELECT phash FROM images WHERE hash = ? AND phash IS NOT NULL LIMIT 1))"

_STATE_SELECT = "SELECT id, path, folder_id, size, mtime_ns, hash, ctime_ns, inode FROM images"


def _state(row: tuple[Any, ...]) -> ImageState:
    return ImageState(row[0], from_db(row[1]), row[2], row[3], row[4], row[5], row[6], row[7])


def _record(row: tuple[Any, ...]) -> ImageRecord:
    return ImageRecord(
        id=row[0],
        path=from_db(row[1]),
        folder_id=row[2],
        size=row[3],
        mtime_ns=row[4],
        hash=row[5],
        width=row[6],
        height=row[7],
        taken_at=row[8],
        facts=None if row[16] is None else Facts(*row[9:16]),
    )


def _blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


__all__ = [
    "FailedFile",
    "Folder",
    "ImageRecord",
    "ImageState",
    "ModelInfo",
    "NewImage",
    "PhotoFacts",
    "Store",
    "display",
    "translate_errors",
]
