"""Library format versions and the numbered steps that upgrade one to the next.

A library records its format in ``PRAGMA user_version``. Version 1 is the format
clipdesk 0.1 wrote (commit a6be625); every later format is one `Step` in `STEPS`.
Opening an older library runs the missing steps in order, each in its own write
transaction that also sets the new version, so a crash leaves the library at
some whole version. Before the first step, a copy of the file is kept beside it
(``library.db.v1-backup``). A step never drops vectors: a library holds hours of
encoding work.

To change the format: append a `Step` whose ``version`` is one more than the
last, write its SQL so it works on a library of the previous version, and add a
test to ``tests/test_migrations.py`` that upgrades a library of that version.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import apsw

from ._errors import LibraryError
from ._paths import display, to_db

log = logging.getLogger(__name__)

APP_ID = "clipdesk"

# Version 1, exactly as clipdesk 0.1 created it. The vector table is made when the
# first model is bound (its size depends on the model); see Store.bind_model.
SCHEMA_V1 = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE folders(
    id INTEGER PRIMARY KEY,
    path NOT NULL UNIQUE,          -- TEXT, or BLOB for names that are not UTF-8
    added_at REAL NOT NULL
);
CREATE TABLE images(
    id INTEGER PRIMARY KEY,
    folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    path NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    taken_at TEXT,
    indexed_at REAL NOT NULL
);
CREATE INDEX images_hash ON images(hash);
CREATE INDEX images_folder ON images(folder_id);
"""

# Version 1 kept the folders the user stopped watching as a JSON list here.
_V1_UNWATCHED_KEY = "service.unwatched"


@dataclass(frozen=True)
class Step:
    """One upgrade: from ``version - 1`` to ``version``, run inside a write transaction."""

    version: int
    summary: str
    run: Callable[[apsw.Connection], None]


def _v2_watched_column(conn: apsw.Connection) -> None:
    conn.execute("ALTER TABLE folders ADD COLUMN watched INTEGER NOT NULL DEFAULT 1")
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (_V1_UNWATCHED_KEY,)).fetchone()
    if row is None:
        return
    try:
        paths = json.loads(row[0])
    except ValueError:
        paths = []
    if not isinstance(paths, list):
        paths = []
    # A damaged list only loses the "not watched" marks, never a folder or photo.
    for path in paths:
        if isinstance(path, str):
            conn.execute("UPDATE folders SET watched = 0 WHERE path = ?", (to_db(path),))
    conn.execute("DELETE FROM meta WHERE key = ?", (_V1_UNWATCHED_KEY,))


def _v3_file_identity_and_failures(conn: apsw.Connection) -> None:
    # An edit that keeps size and mtime still changes the ctime (or, replaced by a
    # rename, the inode). NULL for images indexed before: "unknown", filled in by
    # the next scan without re-encoding.
    conn.execute("ALTER TABLE images ADD COLUMN ctime_ns INTEGER")
    conn.execute("ALTER TABLE images ADD COLUMN inode INTEGER")
    # Files that could not be indexed, with what they looked like then: tried
    # again only once they change, not on every index and reconcile.
    conn.execute(
        """
        CREATE TABLE failed_files(
            path NOT NULL PRIMARY KEY,     -- TEXT, or BLOB for names that are not UTF-8
            folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            ctime_ns INTEGER NOT NULL,
            inode INTEGER NOT NULL,
            reason TEXT NOT NULL,
            failed_at REAL NOT NULL
        )
        """
    )
    conn.execute("CREATE INDEX failed_files_folder ON failed_files(folder_id)")


def _v4_photo_facts(conn: apsw.Connection) -> None:
    # What a photo's header says, for filtering. NULL facts_version: not read yet
    # (photos indexed before); a background pass reads their headers, never pixels.
    # A later clipdesk that reads more sets it back to NULL in its own step.
    for column in (
        "taken_offset TEXT", "camera_make TEXT", "camera_model TEXT", "lens TEXT",
        "gps_lat REAL", "gps_lon REAL", "file_type TEXT", "facts_version INTEGER",
    ):
        conn.execute(f"ALTER TABLE images ADD COLUMN {column}")
    # Only the photos still to read: finding none costs nothing at a million photos.
    conn.execute("CREATE INDEX images_undescribed ON images(id) WHERE facts_version IS NULL")


def _v5_perceptual_hash(conn: apsw.Connection) -> None:
    # A 64-bit perceptual fingerprint (see duplicates.phash), stored signed. NULL
    # for photos indexed before: `clipdesk duplicates` computes those from the
    # files (a small decode, no model), so nobody re-encodes a library for it.
    conn.execute("ALTER TABLE images ADD COLUMN phash INTEGER")


def _v6_labels(conn: apsw.Connection) -> None:
    # Label sets applied to the library (see labels.py). A set keeps its prompts so
    # photos indexed later get exactly the same labelling; `model_id` names the
    # model whose vectors its results came from.
    conn.execute(
        """
        CREATE TABLE label_sets(
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,              -- 'typed', 'saved' or 'preset'
            prompts TEXT NOT NULL,           -- JSON {label: [prompt, ...]}, in label order
            min_probability REAL NOT NULL,
            active INTEGER NOT NULL,         -- new photos get it when indexed
            model_id TEXT,
            applied_at REAL NOT NULL
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE set_labels(
            id INTEGER PRIMARY KEY,
            set_id INTEGER NOT NULL REFERENCES label_sets(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            UNIQUE(set_id, name)
        )
        """
    )
    # Every label's probability per image; `carried` marks the label the image has
    # (its set's best, at or above the set's min_probability). Rows follow their
    # image and their set out of the library (ON DELETE CASCADE).
    conn.execute(
        """
        CREATE TABLE image_labels(
            label_id INTEGER NOT NULL REFERENCES set_labels(id) ON DELETE CASCADE,
            image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
            probability REAL NOT NULL,
            carried INTEGER NOT NULL,
            PRIMARY KEY(label_id, image_id)
        ) WITHOUT ROWID
        """
    )
    conn.execute("CREATE INDEX image_labels_image ON image_labels(image_id)")  # for deletes of images
    # `--label`: the photos carrying a label, without reading the others' rows.
    conn.execute("CREATE INDEX image_labels_carried ON image_labels(label_id, image_id) WHERE carried = 1")


STEPS: tuple[Step, ...] = (
    Step(2, "folders the user stopped watching move from meta JSON to folders.watched", _v2_watched_column),
    Step(3, "images keep their file's ctime and inode; files that failed are remembered",
         _v3_file_identity_and_failures),
    Step(4, "images keep camera, lens, GPS, date offset and file type (read from headers later)",
         _v4_photo_facts),
    Step(5, "images keep a perceptual fingerprint, for finding near-duplicates", _v5_perceptual_hash),
    Step(6, "label sets applied to the library, and each image's label probabilities", _v6_labels),
)

LATEST = STEPS[-1].version if STEPS else 1


def user_version(conn: apsw.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0]) if row else 0


def create(conn: apsw.Connection) -> None:
    """Lay out a new, empty library at the latest version (inside the caller's transaction)."""
    conn.execute(SCHEMA_V1)
    conn.execute("INSERT INTO meta VALUES ('app', ?)", (APP_ID,))
    for step in STEPS:
        step.run(conn)
    conn.execute(f"PRAGMA user_version = {LATEST}")


def backup_path(db: Path, version: int) -> Path:
    """Where the copy of a library taken before upgrading it from `version` goes."""
    return db.with_name(f"{db.name}.v{version}-backup")


def upgrade(
    conn: apsw.Connection,
    db: Path | None,
    transaction: Callable[[], AbstractContextManager[None]],
) -> None:
    """Run the steps this library lacks, keeping a copy of the file before the first."""
    version = user_version(conn)
    backed_up = db is None
    for step in STEPS:
        if step.version <= version:
            continue
        if not backed_up:
            # SQLite copies a database only while nobody holds its write lock, so the
            # copy comes first; a writer in between is another clipdesk upgrading too.
            assert db is not None
            _backup(conn, db, version)
            backed_up = True
        with transaction():
            # Another connection may have upgraded while this one waited for the lock.
            version = user_version(conn)
            if version >= step.version:
                continue
            log.info("upgrading %s to format %d: %s", display(str(db)), step.version, step.summary)
            step.run(conn)
            conn.execute(f"PRAGMA user_version = {step.version}")
        version = step.version


def _backup(conn: apsw.Connection, db: Path, version: int) -> None:
    """Copy the library page by page (the WAL included) before changing it."""
    target = backup_path(db, version)
    partial = target.with_name(f"{target.name}.{os.getpid()}-{threading.get_ident()}.partial")
    try:
        fd = os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        os.close(fd)
        copy = apsw.Connection(str(partial))
        try:
            with copy.backup("main", conn, "main") as job:
                job.step(-1)
        finally:
            copy.close()
        os.replace(partial, target)
    except (OSError, apsw.Error) as exc:
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "strerror", None) or str(exc)
        raise LibraryError(
            f"The library {display(str(db))} needs upgrading to this clipdesk's format, but a "
            f"backup could not be written beside it ({reason}); it was left unchanged. Free some "
            "space or make its folder writable, then try again."
        ) from None
    log.info("kept a copy of the format-%d library at %s", version, display(str(target)))
