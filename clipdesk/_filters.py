"""Narrowing a search or a listing by what photos carry: date, folder, type, camera, shape, place, label.

A `Filter` is plain data parsed from what a user typed, and compiles to one SQL
condition over the library's `images` table: the only home of each rule. Search
finds the matching photos in SQL first and ranks only those (see `search`).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from ._errors import UsageError
from ._facts import TYPE_NAMES, Orientation
from ._labels import check_threshold, label_sql, unsafe_sql
from ._paths import is_within
from ._store import TAKEN_SQL, under_sql

_DATE = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")
DATE_FORMS = "2019, 2019-07 or 2019-07-14"


def parse_date(text: str, *, end: bool, option: str = "date") -> date:
    """The first day of `2019`, `2019-07` or `2019-07-14`, or with end=True its last day."""
    found = _DATE.fullmatch(text.strip())
    if found is None:
        raise UsageError(f"{option} {text!r} is not a date: give {DATE_FORMS}.")
    year = int(found[1])
    month = int(found[2]) if found[2] else None
    day = int(found[3]) if found[3] else None
    try:
        if month is None:
            return date(year, 12, 31) if end else date(year, 1, 1)
        if day is None:
            return date(year, month, calendar.monthrange(year, month)[1] if end else 1)
        return date(year, month, day)
    except (ValueError, calendar.IllegalMonthError):
        raise UsageError(f"{option} {text} is not a date that exists (give {DATE_FORMS}).") from None


def parse_types(texts: Sequence[str]) -> tuple[str, ...]:
    """File types from `--type jpeg,png` (repeatable), as the library stores them."""
    out: list[str] = []
    for text in texts:
        for name in (t.strip().lower().lstrip(".") for t in text.split(",")):
            if not name:
                continue
            if name not in TYPE_NAMES:
                known = ", ".join(sorted(TYPE_NAMES))
                raise UsageError(f"--type {name!r} is not a photo type clipdesk knows ({known}).")
            out.append(TYPE_NAMES[name])
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class Filter:
    """Which photos to consider; empty keeps all. Dates are whole days, both ends inclusive."""

    after: date | None = None
    before: date | None = None
    folders: tuple[str, ...] = ()  # absolute, symlink-free (see `within_library`)
    types: tuple[str, ...] = ()
    camera: str | None = None
    orientation: Orientation | None = None
    min_pixels: int | None = None
    has_gps: bool = False
    labels: tuple[str, ...] = ()  # photos carrying any of these labels (see labels.py)
    # Safe search: hide photos the moderation preset judges unsafe at this threshold.
    hide_unsafe_above: float | None = None

    def __post_init__(self) -> None:
        if self.after is not None and self.before is not None and self.after > self.before:
            raise UsageError(
                f"--after {self.after.isoformat()} is later than --before {self.before.isoformat()}: "
                "nothing can match."
            )
        if self.min_pixels is not None and self.min_pixels < 1:
            raise UsageError("--min-pixels must be 1 or more.")
        if self.hide_unsafe_above is not None:
            check_threshold(self.hide_unsafe_above)

    def is_empty(self) -> bool:
        return self == Filter()

    def needs_facts(self) -> bool:
        """True if this filter reads facts that photos indexed by an older clipdesk lack until described."""
        return bool(self.types or self.camera or self.has_gps)

    def within_library(self, roots: Sequence[str]) -> Filter:
        """This filter, refused if a folder lies outside every folder of the library."""
        for folder in self.folders:
            if not any(is_within(folder, root) for root in roots):
                known = ", ".join(roots) or "none yet"
                raise UsageError(f"--in {folder} is not inside the library (its folders: {known}).")
        return self

    def with_folders(self, folders: Sequence[str]) -> Filter:
        return replace(self, folders=tuple(dict.fromkeys(folders)))

    def sql(self) -> tuple[str, list[Any]]:
        """One SQL condition over `images` keeping exactly the photos this filter keeps."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.after is not None:
            clauses.append(f"{TAKEN_SQL} >= ?")
            params.append(self.after.isoformat())
        if self.before is not None:
            # Dates are stored with their time: everything before the next day.
            clauses.append(f"{TAKEN_SQL} < ?")
            params.append((self.before + timedelta(days=1)).isoformat())
        if self.folders:
            parts = [under_sql(folder) for folder in self.folders]
            clauses.append("(" + " OR ".join(clause for clause, _ in parts) + ")")
            params += [p for _, folder_params in parts for p in folder_params]
        if self.types:
            clauses.append(f"file_type IN ({','.join('?' * len(self.types))})")
            params += self.types
        if self.camera:
            # Case-insensitive (ASCII, as SQLite's lower()) substring of make and model together.
            clauses.append(
                "instr(lower(coalesce(camera_make, '') || ' ' || coalesce(camera_model, '')), ?) > 0"
            )
            params.append(self.camera.lower())
        if self.orientation is Orientation.LANDSCAPE:
            clauses.append("width > height")
        elif self.orientation is Orientation.PORTRAIT:
            clauses.append("height > width")
        elif self.orientation is Orientation.SQUARE:
            clauses.append("width = height")
        if self.min_pixels is not None:
            clauses.append("width * height >= ?")
            params.append(self.min_pixels)
        if self.has_gps:
            clauses.append("gps_lat IS NOT NULL AND gps_lon IS NOT NULL")
        if self.labels:
            clause, more = label_sql(self.labels)
            clauses.append(clause)
            params += more
        if self.hide_unsafe_above is not None:
            clause, more = unsafe_sql(self.hide_unsafe_above)
            clauses.append(clause)
            params += more
        return " AND ".join(clauses) or "1", params
