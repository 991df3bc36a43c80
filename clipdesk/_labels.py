"""Labels that stay: label sets applied to the library, their results, and safe search.

A label set (typed labels, a saved set, or a preset) is run over photos the
library holds, from their stored vectors and the model's text tower: nothing is
decoded or encoded again. Each image keeps every label's probability; the label
it *carries* is its set's best one, when that reaches the set's minimum
probability. Searching `--label beach` keeps the photos carrying "beach" in any
set. An active set is also applied to photos indexed later (see `ActiveLabeller`,
which the indexer calls inside its write transaction).

Safe search hides photos the moderation preset judges unsafe: those whose
probability of being anything but "safe" is at least the threshold.

All label SQL lives here; `Filter.sql` uses `label_sql` and `unsafe_sql`.
"""

from __future__ import annotations

import enum
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._classify import LabelSet, label_vectors, probabilities
from ._encoder import Encoder
from ._errors import ClipdeskError, UsageError
from ._paths import from_db
from ._presets import PRESETS
from ._store import Store, translate_errors

MODERATION = "moderation"
SAFE_LABEL = "safe"
DEFAULT_SAFE_THRESHOLD = 0.5
# Library settings (meta keys) for safe search.
SAFE_SEARCH_KEY = "safe_search"
SAFE_THRESHOLD_KEY = "safe_search.threshold"
# Photos labelled per batch when a set is applied (progress and cancel in between).
APPLY_BATCH = 4096
# How a moderation set is applied when safe search needs it (one line for every front end).
APPLY_MODERATION = "clipdesk tag --preset moderation"


class LabelSetKind(enum.Enum):
    """Where a label set came from: typed labels, a set the user saved by name, or a built-in preset."""

    TYPED = "typed"
    SAVED = "saved"
    PRESET = "preset"


@dataclass(frozen=True)
class LabelDefinition:
    """A label set to apply: its name (re-applying a name replaces its results) and labels."""

    name: str
    kind: LabelSetKind
    labels: LabelSet
    min_probability: float = 0.0
    active: bool = True  # photos indexed later get it too

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise UsageError("A label set needs a name.")
        if not 0.0 <= self.min_probability <= 1.0 or math.isnan(self.min_probability):
            raise UsageError(f"--min-probability must be between 0 and 1 (got {self.min_probability}).")
        if self.kind is not LabelSetKind.PRESET and self.name in PRESETS:
            raise UsageError(f"The name '{self.name}' belongs to the built-in preset; choose another name.")

    @classmethod
    def typed(
        cls,
        labels: Sequence[str],
        *,
        name: str | None = None,
        template: str | None = None,
        min_probability: float = 0.0,
        active: bool = True,
    ) -> LabelDefinition:
        """Labels typed by the user; named after the labels themselves unless given a name (a saved set)."""
        label_set = LabelSet.from_labels(labels) if template is None else LabelSet.from_labels(labels, template)
        kind = LabelSetKind.TYPED if name is None else LabelSetKind.SAVED
        return cls(name or ", ".join(labels), kind, label_set, min_probability, active)

    @classmethod
    def preset(cls, preset: str, *, min_probability: float = 0.0, active: bool = True) -> LabelDefinition:
        """A built-in preset, named after it."""
        return cls(preset, LabelSetKind.PRESET, LabelSet.preset(preset), min_probability, active)


@dataclass(frozen=True)
class LabelSetInfo:
    """A label set as the library holds it, with how many photos carry each label."""

    name: str
    kind: LabelSetKind
    labels: tuple[str, ...]
    min_probability: float
    active: bool
    model_id: str | None
    applied_at: float
    photos: int  # photos with results for this set
    counts: dict[str, int]  # photos carrying each label, in label order

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "labels": list(self.labels),
            "min_probability": self.min_probability,
            "active": self.active,
            "model": self.model_id,
            "applied_at": self.applied_at,
            "photos": self.photos,
            "counts": dict(self.counts),
        }


@dataclass(frozen=True)
class ImageLabel:
    """One label's probability for one image (for chips in a preview)."""

    set_name: str
    label: str
    probability: float
    carried: bool


@dataclass(frozen=True)
class LabelRow:
    """One exported row: a photo and a label it carries."""

    path: str
    set_name: str
    label: str
    probability: float


class TagPhase(enum.Enum):
    LABELLING = "labelling"
    SAVING = "saving"
    DONE = "done"


@dataclass(frozen=True)
class TagProgress:
    """How far applying a label set has got: `done` of `total` photos."""

    phase: TagPhase
    done: int
    total: int


TagProgressCallback = Callable[[TagProgress], None]


@dataclass
class TagReport:
    """What applying a label set did. Cancelled: nothing was written, old results stay."""

    name: str
    labelled: int = 0
    not_indexed: list[str] = field(default_factory=list)  # selected paths the library does not hold
    cancelled: bool = False
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "labelled": self.labelled,
            "not_indexed": list(self.not_indexed),
            "cancelled": self.cancelled,
            "seconds": round(self.seconds, 3),
            "counts": dict(self.counts),
        }


@dataclass(frozen=True)
class SafeSearch:
    """The library's safe-search setting: off by default."""

    enabled: bool = False
    threshold: float = DEFAULT_SAFE_THRESHOLD

    def __post_init__(self) -> None:
        check_threshold(self.threshold)


class SafeSearchUnavailable(UsageError):
    """Safe search was asked for, but the moderation preset has not been applied to the library."""


def check_threshold(threshold: float) -> float:
    if not 0.0 < threshold <= 1.0 or math.isnan(threshold):
        raise UsageError(f"The safe-search threshold must be above 0 and at most 1 (got {threshold}).")
    return threshold


# -- SQL used by filters -----------------------------------------------------------


def label_sql(labels: Sequence[str]) -> tuple[str, list[Any]]:
    """An SQL condition on `images.id`: photos carrying any of these labels (any set; case ignored)."""
    marks = ",".join("?" * len(labels))
    return (
        "id IN (SELECT il.image_id FROM image_labels il JOIN set_labels sl ON sl.id = il.label_id "
        f"WHERE il.carried = 1 AND sl.name COLLATE NOCASE IN ({marks}))",
        list(labels),
    )


def unsafe_sql(threshold: float) -> tuple[str, list[Any]]:
    """An SQL condition on `images.id`: photos the moderation preset does NOT judge unsafe at this threshold.

    Unsafe: the probability of every label but "safe", together (1 - P(safe)), is at least the threshold.
    Photos the preset has not judged are kept.
    """
    return (
        "id NOT IN (SELECT il.image_id FROM image_labels il JOIN set_labels sl ON sl.id = il.label_id "
        "JOIN label_sets ls ON ls.id = sl.set_id "
        "WHERE ls.kind = ? AND ls.name = ? AND sl.name = ? AND 1.0 - il.probability >= ?)",
        [LabelSetKind.PRESET.value, MODERATION, SAFE_LABEL, threshold],
    )


# -- reading ------------------------------------------------------------------------


def _rows(store: Store, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with translate_errors(str(store.path)):
        return list(store.conn.execute(sql, tuple(params)))


def label_sets(store: Store) -> list[LabelSetInfo]:
    """Every label set of the library, by name, with counts per label."""
    out = []
    for set_id, name, kind, prompts, min_p, active, model_id, applied_at in _rows(
        store,
        "SELECT id, name, kind, prompts, min_probability, active, model_id, applied_at "
        "FROM label_sets ORDER BY name",
    ):
        counts = {
            label: int(count)
            for label, count in _rows(
                store,
                "SELECT sl.name, (SELECT count(*) FROM image_labels il WHERE il.label_id = sl.id "
                "AND il.carried = 1) FROM set_labels sl WHERE sl.set_id = ? ORDER BY sl.position",
                (set_id,),
            )
        }
        photos = _rows(
            store,
            "SELECT count(*) FROM image_labels WHERE label_id = "
            "(SELECT id FROM set_labels WHERE set_id = ? ORDER BY position LIMIT 1)",
            (set_id,),
        )[0][0]
        out.append(
            LabelSetInfo(
                name, LabelSetKind(kind), tuple(json.loads(prompts)), float(min_p), bool(active),
                model_id, float(applied_at), int(photos), counts,
            )
        )
    return out


def known_labels(store: Store) -> list[str]:
    """Every label of every set, once each (as first written), sorted ignoring case."""
    names = {str(r[0]).lower(): str(r[0]) for r in _rows(store, "SELECT name FROM set_labels ORDER BY id DESC")}
    return sorted(names.values(), key=str.lower)


def labels_of(store: Store, image_id: int) -> list[ImageLabel]:
    """Every label probability the library holds for one image, by set, most likely first."""
    rows = _rows(
        store,
        "SELECT ls.name, sl.name, il.probability, il.carried FROM image_labels il "
        "JOIN set_labels sl ON sl.id = il.label_id JOIN label_sets ls ON ls.id = sl.set_id "
        "WHERE il.image_id = ? ORDER BY ls.name, il.probability DESC",
        (image_id,),
    )
    return [ImageLabel(r[0], r[1], float(r[2]), bool(r[3])) for r in rows]


def carried_rows(store: Store, set_name: str | None = None) -> Iterator[LabelRow]:
    """Each photo and each label it carries (in one set, or all), by path then set."""
    sql = (
        "SELECT i.path, ls.name, sl.name, il.probability FROM image_labels il "
        "JOIN set_labels sl ON sl.id = il.label_id JOIN label_sets ls ON ls.id = sl.set_id "
        "JOIN images i ON i.id = il.image_id WHERE il.carried = 1"
    )
    params: list[Any] = []
    if set_name is not None:
        sql += " AND ls.name = ?"
        params.append(set_name)
    for path, name, label, probability in _rows(store, sql + " ORDER BY i.path, ls.name", params):
        yield LabelRow(from_db(path), name, label, float(probability))


def moderation_applied(store: Store) -> bool:
    """Whether the moderation preset has judged any photo of this library."""
    return bool(
        _rows(
            store,
            "SELECT 1 FROM image_labels il JOIN set_labels sl ON sl.id = il.label_id "
            "JOIN label_sets ls ON ls.id = sl.set_id WHERE ls.kind = ? AND ls.name = ? AND sl.name = ? LIMIT 1",
            (LabelSetKind.PRESET.value, MODERATION, SAFE_LABEL),
        )
    )


def require_set(store: Store, name: str) -> None:
    """UsageError naming the sets there are, for a set the library does not have."""
    if not _rows(store, "SELECT 1 FROM label_sets WHERE name = ?", (name,)):
        known = ", ".join(s.name for s in label_sets(store)) or "none yet; apply one with `clipdesk tag`"
        raise UsageError(f"The library has no label set '{name}' (its sets: {known}).")


def require_labels(store: Store, labels: Sequence[str]) -> None:
    """UsageError for a label no set of the library has (a typo finds nothing, silently otherwise)."""
    known = known_labels(store)
    lowered = {k.lower() for k in known}
    for label in labels:
        if label.lower() not in lowered:
            listed = ", ".join(known) or "none yet; apply a label set with `clipdesk tag`"
            raise UsageError(f"No label set of this library has the label '{label}' (its labels: {listed}).")


# -- writing ------------------------------------------------------------------------


def set_active(store: Store, name: str, active: bool) -> None:
    """Whether photos indexed later get this set."""
    require_set(store, name)
    with store.write():
        store.conn.execute("UPDATE label_sets SET active = ? WHERE name = ?", (int(active), name))


def remove_set(store: Store, name: str) -> None:
    """Drop a label set and all its results (the photos are not touched)."""
    require_set(store, name)
    with store.write():
        store.conn.execute("DELETE FROM label_sets WHERE name = ?", (name,))


def _prompts_json(labels: LabelSet) -> str:
    return json.dumps(labels.prompts, ensure_ascii=False)


def _carried(probs: np.ndarray, min_probability: float) -> np.ndarray:
    """Per image and label, whether the image carries that label: its best, at or above the minimum."""
    best = probs.argmax(axis=1)
    carried = np.zeros(probs.shape, dtype=bool)
    rows = np.arange(len(probs))
    carried[rows, best] = probs[rows, best] >= min_probability
    return carried


def _label_rows(
    label_ids: Sequence[int], image_ids: np.ndarray, probs: np.ndarray, min_probability: float
) -> Iterator[tuple[int, int, float, int]]:
    """(label id, image id, probability, carried) for each image and label, made column-wise (fast)."""
    carried = _carried(probs, min_probability)
    return zip(
        np.tile(np.asarray(label_ids, dtype=np.int64), len(image_ids)).tolist(),
        np.repeat(np.asarray(image_ids, dtype=np.int64), len(label_ids)).tolist(),
        probs.ravel().tolist(),
        carried.ravel().astype(np.int64).tolist(),
    )


def save_results(
    store: Store,
    definition: LabelDefinition,
    model_id: str,
    image_ids: np.ndarray,
    probs: np.ndarray,
    *,
    whole_library: bool,
) -> None:
    """Record a set's results in one transaction, replacing its old ones.

    Results for photos outside this run's scope stay only if the set is unchanged
    (same prompts, minimum and model); otherwise every old result goes.
    """
    prompts = _prompts_json(definition.labels)
    with store.write():
        conn = store.conn
        row = conn.execute(
            "SELECT id, prompts, min_probability, model_id FROM label_sets WHERE name = ?", (definition.name,)
        ).fetchone()
        same = row is not None and (row[1], float(row[2]), row[3]) == (
            prompts, definition.min_probability, model_id
        )
        if row is not None and not same:
            conn.execute("DELETE FROM label_sets WHERE id = ?", (row[0],))  # its results follow
        if row is None or not same:
            conn.execute(
                "INSERT INTO label_sets(name, kind, prompts, min_probability, active, model_id, applied_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    definition.name, definition.kind.value, prompts, definition.min_probability,
                    int(definition.active), model_id, time.time(),
                ),
            )
            set_id = conn.last_insert_rowid()
            conn.executemany(
                "INSERT INTO set_labels(set_id, position, name) VALUES (?, ?, ?)",
                ((set_id, pos, label) for pos, label in enumerate(definition.labels.labels)),
            )
        else:
            set_id = row[0]
            conn.execute(
                "UPDATE label_sets SET kind = ?, active = ?, applied_at = ? WHERE id = ?",
                (definition.kind.value, int(definition.active), time.time(), set_id),
            )
        label_ids = [r[0] for r in conn.execute(
            "SELECT id FROM set_labels WHERE set_id = ? ORDER BY position", (set_id,)
        )]
        if same and whole_library:
            conn.executemany("DELETE FROM image_labels WHERE label_id = ?", ((i,) for i in label_ids))
        # Staged without indexes or checks, then written by one statement, which also
        # leaves out photos deleted while the set was being computed.
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS staged_labels(label_id INTEGER, image_id INTEGER, "
            "probability REAL, carried INTEGER)"
        )
        conn.execute("DELETE FROM temp.staged_labels")
        conn.executemany(
            "INSERT INTO temp.staged_labels VALUES (?, ?, ?, ?)",
            _label_rows(label_ids, image_ids, probs, definition.min_probability),
        )
        # INSERT OR REPLACE: a row per label and image, so the old results of these photos all go.
        conn.execute(
            "INSERT OR REPLACE INTO image_labels(label_id, image_id, probability, carried) "
            "SELECT s.label_id, s.image_id, s.probability, s.carried FROM temp.staged_labels s "
            "JOIN images i ON i.id = s.image_id"
        )
        conn.execute("DELETE FROM temp.staged_labels")


def apply_label_set(
    store: Store,
    encoder: Encoder,
    definition: LabelDefinition,
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    total: int,
    *,
    whole_library: bool,
    progress: TagProgressCallback | None = None,
    cancel: threading.Event | None = None,
    between_batches: Callable[[], None] | None = None,
) -> TagReport:
    """Label (ids, vectors) batches and save the results in one transaction at the end.

    Cancelling (`cancel.is_set()`) between batches writes nothing: the old results stay.
    """
    start = time.monotonic()
    report = TagReport(definition.name)
    vectors_of_labels = label_vectors(encoder, definition.labels)
    all_ids: list[np.ndarray] = []
    all_probs: list[np.ndarray] = []
    done = 0
    if progress is not None:
        progress(TagProgress(TagPhase.LABELLING, 0, total))
    for ids, vectors in batches:
        if cancel is not None and cancel.is_set():
            report.cancelled = True
            break
        if len(ids):
            all_ids.append(np.asarray(ids, dtype=np.int64))
            all_probs.append(probabilities(encoder, vectors, vectors_of_labels))
        done += len(ids)
        if progress is not None:
            progress(TagProgress(TagPhase.LABELLING, min(done, total), total))
        if between_batches is not None:
            between_batches()
    if not report.cancelled and cancel is not None and cancel.is_set():
        report.cancelled = True
    if not report.cancelled:
        if progress is not None:
            progress(TagProgress(TagPhase.SAVING, done, total))
        n_labels = len(definition.labels.labels)
        image_ids = np.concatenate(all_ids) if all_ids else np.zeros(0, dtype=np.int64)
        probs = np.concatenate(all_probs) if all_probs else np.zeros((0, n_labels))
        save_results(store, definition, encoder.model_id, image_ids, probs, whole_library=whole_library)
        report.labelled = len(image_ids)
        carried = _carried(probs, definition.min_probability) if len(probs) else np.zeros((0, n_labels), bool)
        report.counts = {
            label: int(carried[:, i].sum()) for i, label in enumerate(definition.labels.labels)
        }
        if progress is not None:
            progress(TagProgress(TagPhase.DONE, done, total))
    report.seconds = time.monotonic() - start
    return report


# -- photos indexed later -----------------------------------------------------------


@dataclass
class _ActiveSet:
    set_id: int
    label_ids: list[int]
    labels: LabelSet
    min_probability: float
    vectors: np.ndarray | None = None  # the labels' text vectors, made on first use


class ActiveLabeller:
    """Gives newly written images the library's active label sets. Use on the Store's (writer) thread."""

    def __init__(self, store: Store, encoder: Encoder) -> None:
        self.store = store
        self.encoder = encoder
        self._sets: list[_ActiveSet] | None = None

    def refresh(self) -> None:
        """Read the active sets again at the next `label` (sets may have changed since)."""
        self._sets = None

    def _load(self) -> list[_ActiveSet]:
        sets = []
        for set_id, prompts, min_p in self.store.conn.execute(
            "SELECT id, prompts, min_probability FROM label_sets WHERE active = 1 ORDER BY id"
        ):
            label_ids = [r[0] for r in self.store.conn.execute(
                "SELECT id FROM set_labels WHERE set_id = ? ORDER BY position", (set_id,)
            )]
            parsed = json.loads(prompts)
            sets.append(_ActiveSet(set_id, label_ids, LabelSet({str(k): list(v) for k, v in parsed.items()}),
                                   float(min_p)))
        return sets

    def label(self, image_ids: Sequence[int], vectors: Sequence[np.ndarray]) -> None:
        """Label these images with every active set; inside the caller's write transaction."""
        if not image_ids:
            return
        if self._sets is None:
            self._sets = self._load()
        if not self._sets:
            return
        ids = np.asarray(image_ids, dtype=np.int64)
        stacked = np.stack([np.asarray(v, dtype=np.float32) for v in vectors])
        for active in self._sets:
            if active.vectors is None:
                active.vectors = label_vectors(self.encoder, active.labels)
            probs = probabilities(self.encoder, stacked, active.vectors)
            self.store.conn.executemany(
                "INSERT OR REPLACE INTO image_labels(label_id, image_id, probability, carried) VALUES (?, ?, ?, ?)",
                _label_rows(active.label_ids, ids, probs, active.min_probability),
            )
            self.store.conn.execute(
                "UPDATE label_sets SET model_id = ? WHERE id = ? AND model_id IS NOT ?",
                (self.encoder.model_id, active.set_id, self.encoder.model_id),
            )


# -- safe search setting ------------------------------------------------------------


def safe_search(store: Store) -> SafeSearch:
    """The library's stored safe-search setting (off unless switched on)."""
    enabled = store.meta(SAFE_SEARCH_KEY) == "on"
    try:
        threshold = check_threshold(float(store.meta(SAFE_THRESHOLD_KEY) or DEFAULT_SAFE_THRESHOLD))
    except (ValueError, ClipdeskError):
        threshold = DEFAULT_SAFE_THRESHOLD  # a damaged setting falls back to the default
    return SafeSearch(enabled, threshold)


def set_safe_search(store: Store, setting: SafeSearch) -> None:
    """Keep the safe-search setting in the library."""
    with store.write():
        store.conn.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", (SAFE_SEARCH_KEY, "on" if setting.enabled else "off")
        )
        store.conn.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", (SAFE_THRESHOLD_KEY, repr(float(setting.threshold)))
        )


def unavailable_message() -> str:
    return (
        "Safe search needs the moderation labels, which this library does not have yet: "
        f"run `{APPLY_MODERATION}` first."
    )
