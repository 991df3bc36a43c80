"""Sorting classified photos into one folder per label, never overwriting anything.

Copies by default; a move only removes the original once the new file is in place.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


@dataclass(frozen=True)
class Placement:
    source: str
    target: str


@dataclass
class SortReport:
    done: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def folder_name(label: str) -> str:
    """A label as a folder name that is valid everywhere ('a/b?' -> 'a_b_')."""
    name = _UNSAFE.sub("_", label).strip().strip(".")
    return name or "unnamed"


def _free_name(target: Path, taken: set[str]) -> Path:
    """`target`, or 'name (2).ext', 'name (3).ext'… if it exists or is already planned."""
    candidate, n = target, 1
    while str(candidate) in taken or candidate.exists():
        n += 1
        candidate = target.with_name(f"{target.stem} ({n}){target.suffix}")
    return candidate


def plan_sort(items: Iterable[tuple[str, str]], destination: str | Path) -> list[Placement]:
    """Where each (path, label) goes: destination/label/name, with new names for clashes."""
    dest = Path(destination)
    taken: set[str] = set()
    plan: list[Placement] = []
    for path, label in items:
        target = _free_name(dest / folder_name(label) / os.path.basename(path), taken)
        taken.add(str(target))
        plan.append(Placement(path, str(target)))
    return plan


def _copy_new(source: str, target: str) -> None:
    """Copy to a file that must not exist yet (O_EXCL: a race cannot overwrite either)."""
    with open(source, "rb") as src, open(target, "xb") as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)
    shutil.copystat(source, target)


def apply_sort(plan: Sequence[Placement], *, move: bool = False) -> SortReport:
    """Carry out a plan; a file that fails is reported and the rest go on."""
    report = SortReport()
    for item in plan:
        target = item.target
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if os.path.exists(target):
                target = str(_free_name(Path(target), set()))
            if move:
                try:
                    os.link(item.source, target)  # fails rather than overwrite
                except OSError:
                    _copy_new(item.source, target)  # another filesystem, or no hard links
                os.remove(item.source)
            else:
                _copy_new(item.source, target)
            report.done += 1
        except OSError as exc:
            report.failed.append((item.source, exc.strerror or str(exc)))
    return report
