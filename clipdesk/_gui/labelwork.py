"""What the app's label features ask of the library, off the GUI thread (no Qt here).

Applying a label set runs on the library's writer (`ServiceWorker.write`), with a
`RunControl` the GUI uses to pause and cancel it; queries (label counts, a photo's
labels, searching and browsing by label) run on the interactive lane.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace


from .._filters import Filter
from .._hitlist import HitList
from .._labels import MODERATION, LabelDefinition, LabelSetInfo, SafeSearch, TagProgress, TagReport
from .._library import Library, PhotoOrder
from .._search import Hit, Query
from .._service import WriteContext


@dataclass(frozen=True)
class ApplyScope:
    """Which photos a label set is applied to: the whole library, one folder, or some photos."""

    folder: str | None = None
    paths: tuple[str, ...] | None = None

    def describe(self) -> str:
        if self.paths is not None:
            return f"{len(self.paths)} selected photo{'s' if len(self.paths) != 1 else ''}"
        return self.folder if self.folder is not None else "the whole library"


class RunControl:
    """Pause and cancel for one label run: the GUI calls pause/resume/stop, the writer waits."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.holding = threading.Event()  # the writer is held by Pause right now

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        """Cancel: the run ends at its next batch and writes nothing."""
        self.cancel.set()
        self._running.set()

    def between_batches(self, task: WriteContext) -> None:
        """On the writer, after each batch: searches first, then hold while paused."""
        task.between_batches()
        # Bounded waits, so the service stopping (task.cancel) ends a pause too.
        while not self._running.wait(0.2):
            self.holding.set()
            if task.cancel.is_set():
                break
        self.holding.clear()
        if task.cancel.is_set():
            self.cancel.set()  # the window is closing: stop without writing


def apply_labels(
    library: Library,
    task: WriteContext,
    definition: LabelDefinition,
    scope: ApplyScope,
    control: RunControl,
    progress: Callable[[TagProgress], None],
) -> TagReport:
    """Apply a label set to the scope's photos (writer thread); cancelled runs write nothing."""
    return library.apply_labels(
        definition,
        within=(scope.folder,) if scope.folder is not None else (),
        paths=scope.paths,
        progress=progress,
        cancel=control.cancel,
        between_batches=lambda: control.between_batches(task),
    )


@dataclass(frozen=True)
class LabelsState:
    """What the app shows about the library's labels: sets with counts, and safe search."""

    sets: tuple[LabelSetInfo, ...]
    safe: SafeSearch
    moderation_applied: bool


def labels_state(library: Library) -> LabelsState:
    """The library's label sets and safe-search setting (interactive lane)."""
    return LabelsState(tuple(library.label_sets()), library.safe_search(), library.moderation_applied())


def query_filter(labels: tuple[str, ...], keep: Filter | None = None) -> Filter | None:
    """`keep` narrowed to photos carrying any of `labels`; None when nothing narrows."""
    keep = keep or Filter()
    if labels:
        keep = replace(keep, labels=tuple(dict.fromkeys(keep.labels + labels)))
    return None if keep.is_empty() else keep


def hiding(library: Library) -> SafeSearch | None:
    """The library's safe-search setting while it hides photos: on, and the moderation
    labels are there to judge them. Read at each search, so switching it (here or from
    the command line) applies at once and no unsafe photo shows before the app knows."""
    safe = library.safe_search()
    return safe if safe.enabled and library.moderation_applied() else None


def effective_filter(library: Library, keep: Filter | None) -> Filter | None:
    """A filter as stored (a label no set has is a clear error), also hiding what safe search hides."""
    safe = hiding(library)
    if safe is not None:
        keep = replace(keep or Filter(), hide_unsafe_above=safe.threshold)
    if keep is None or keep.is_empty():
        return None
    return library.resolve_filter(keep)


def browse(library: Library, order: PhotoOrder, keep: Filter | None) -> HitList:
    """Every photo a filter keeps (all of them without one) and safe search shows, in the browsing order."""
    return library.all_photos(order, effective_filter(library, keep))


def search(library: Library, query: Query) -> list[Hit]:
    """A search by words and examples, within the query's filter, as safe search allows."""
    return library.search(replace(query, filter=effective_filter(library, query.filter)))


def unsafe_among(library: Library, ids: list[int]) -> set[int]:
    """Which of these photos safe search hides (none while it is off or cannot judge)."""
    safe = hiding(library)
    if not ids or safe is None:
        return set()
    where, params = Filter(hide_unsafe_above=safe.threshold).sql()
    shown = set(library.store.matching_ids(where, params).tolist())
    return {i for i in ids if i not in shown}


def moderation_preset() -> LabelDefinition:
    """The label set safe search needs, for the whole library."""
    return LabelDefinition.preset(MODERATION)
