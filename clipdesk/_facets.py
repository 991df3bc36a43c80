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


def filter_choices(store: Store, keep: Filter) -> FilterChoices:
    """Count every choice of the filter row for a library, given the filter now in force."""
    roots = tuple(f.path for f in store.folder_roots())
    # Per folder: every photo, those the other filters keep, those the whole filter keeps.
    per_folder = store.tally_by_folder([("1", []), replace(keep, folders=()).sql(), keep.sql()])
    types = Counter[str]()
    for file_type, count in store.count_by("file_type", *replace(keep, types=()).sql()):
        if file_type:
            types[str(file_type)] += int(count)
    cameras = Counter[str]()
    for make, model, count in store.count_by("camera_make, camera_model", *replace(keep, camera=None).sql()):
        name = camera_name(make, model)
        if name:
            cameras[name] += int(count)
    shapes = store.tally([replace(keep, orientation=shape).sql() for shape in Orientation])
    return FilterChoices(
        matching=sum(counts[2] for counts in per_folder.values()),
        total=sum(counts[0] for counts in per_folder.values()),
        roots=roots,
        folders=folder_counts({folder: counts[1] for folder, counts in per_folder.items()}, roots),
        types=_most_first(types),
        cameras=_most_first(cameras),
        orientations=tuple(zip(Orientation, shapes)),
    )


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
