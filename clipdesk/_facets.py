"""How many photos each filter choice would keep: folders (as a tree), types, cameras, shapes.

What the desktop app's filter row shows beside each choice. Each is counted
under the other filters in force, its own left out, so a count says what
choosing it would give. Every count goes through `Filter.sql`, the one home of
the rules. Read-only; runs on whichever thread owns the Store.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ._facts import Orientation, camera_name
from ._filters import Filter
from ._paths import FolderSet
from ._store import Store


@dataclass(frozen=True)
class FilterChoices:
    """The choices a library offers, with how many photos each keeps among the other filters."""

    matching: int  # photos the whole filter keeps
    total: int  # photos in the library
    roots: tuple[str, ...]  # the library's folders, by path
    # Every folder holding photos (its subfolders' included), down from the roots: photos the
    # other filters keep there; 0 where they keep none.
    folders: Mapping[str, int]
    types: tuple[tuple[str, int], ...]  # stored type names, most photos first
    cameras: tuple[tuple[str, int], ...]  # camera names (see facts.camera_name), most photos first
    orientations: tuple[tuple[Orientation, int], ...]


class ChoiceCounter:
    """Counts the filter row's choices in one Store (on the thread that owns it).

    Keeps which folder each photo is in until the library changes: reading a
    million paths costs seconds, counting kept photos per folder from ids costs
    a fraction of that.
    """

    def __init__(self) -> None:
        self._marker: tuple[int, int, int] | None = None
        self._ids = np.zeros(0, dtype=np.int64)  # every photo's id, ascending
        self._folder_of = np.zeros(0, dtype=np.int64)  # the index in _folders of each, in the same order
        self._folders: list[str] = []

    def count(self, store: Store, keep: Filter) -> FilterChoices:
        """Count every choice of the filter row, given the filter now in force."""
        self._read_folders(store)
        others = replace(keep, folders=())  # folders are counted under the other filters
        if others.is_empty():
            per_folder = np.bincount(self._folder_of, minlength=len(self._folders))
        else:
            ids = store.matching_ids(*others.sql())
            at = np.searchsorted(self._ids, ids)
            known = at < len(self._ids)
            known[known] = self._ids[at[known]] == ids[known]  # photos added since are counted next time
            per_folder = np.bincount(self._folder_of[at[known]], minlength=len(self._folders))
        # One pass for the rest, grouped by type and camera among the photos the filters other
        # than type, camera and shape keep: shapes are counted per photo, and the type and camera
        # rules asked once per group (a Filter of one field is the SQL of just that rule).
        types, cameras = Counter[str](), Counter[str]()
        shapes = [0] * len(Orientation)
        matching = 0
        rows = store.tally_by(
            "file_type, camera_make, camera_model",
            [Filter(orientation=keep.orientation).sql(), *(Filter(orientation=o).sql() for o in Orientation)],
            [Filter(types=keep.types).sql(), Filter(camera=keep.camera).sql()],
            *replace(keep, types=(), camera=None, orientation=None).sql(),
        )
        for file_type, make, model, type_ok, camera_ok, shaped, *by_shape in rows:
            if type_ok and camera_ok:
                matching += int(shaped)
                for i, n in enumerate(by_shape):
                    shapes[i] += int(n)
            if not shaped:
                continue  # none of these photos has the shape asked for: no type or camera to count
            if file_type and camera_ok:
                types[str(file_type)] += int(shaped)
            name = camera_name(make, model)
            if name and type_ok:
                cameras[name] += int(shaped)
        roots = tuple(f.path for f in store.folder_roots())
        return FilterChoices(
            matching=matching,
            total=len(self._ids),
            roots=roots,
            folders=folder_counts(dict(zip(self._folders, per_folder.tolist())), roots),
            types=_most_first(types),
            cameras=_most_first(cameras),
            orientations=tuple(zip(Orientation, shapes)),
        )

    def _read_folders(self, store: Store) -> None:
        marker = store.change_marker()
        if marker == self._marker:
            return
        ids, paths = store.ids_and_paths()
        index: dict[str, int] = {}
        folder_of = np.fromiter(
            (index.setdefault(os.path.dirname(p), len(index)) for p in paths), np.int64, len(paths)
        )
        order = np.argsort(ids, kind="stable")
        self._ids, self._folder_of, self._folders = ids[order], folder_of[order], list(index)
        self._marker = marker


def folder_counts(per_folder: Mapping[str, int], roots: Sequence[str]) -> dict[str, int]:
    """Each folder from a root down to every folder holding photos, with the photos it holds
    (its subfolders' included), given those each folder holds itself."""
    tops = FolderSet(roots)
    counts: dict[str, int] = {}
    for folder, n in per_folder.items():
        root = tops.holder(folder)
        if root is None:
            continue  # a photo outside every folder of the library (its folder was just removed)
        at = folder
        while len(at) > len(root):  # up to the root, however a case-blind system spells it
            counts[at] = counts.get(at, 0) + n
            at = os.path.dirname(at)
        counts[root] = counts.get(root, 0) + n
    for root in roots:
        counts.setdefault(root, 0)
    return counts


def _most_first(counts: Counter[str]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0].lower())))
