"""Classification results and stored labels as CSV files that any spreadsheet opens safely."""

from __future__ import annotations

import contextlib
import csv
import os
import secrets
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from ._paths import display

if TYPE_CHECKING:
    from ._labels import LabelRow
    from ._library import ClassifiedImage

# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(text: str) -> str:
    """Text as a CSV cell: undecodable bytes escaped, and never read as a formula."""
    text = display(text)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def write_classification_csv(target: str, items: Sequence[ClassifiedImage]) -> None:
    """Write one row per image (path, best label, each label's probability); all or nothing."""
    labels = list(dict.fromkeys(name for i in items if i.result is not None for name in i.result.probabilities))

    def rows() -> Iterator[list[str]]:
        for item in items:
            if item.result is None:
                yield [cell(item.path), "", *([""] * len(labels))]
                continue
            probs = item.result.probabilities
            yield [cell(item.path), cell(item.result.best()), *(f"{probs.get(name, 0.0):.4f}" for name in labels)]

    _write_csv(target, ["path", "best", *(cell(name) for name in labels)], rows())


def write_labels_csv(target: str, rows: Iterable[LabelRow]) -> int:
    """Write one row per photo and label it carries (path, set, label, probability); all or nothing.

    Returns how many rows were written.
    """
    count = 0

    def cells() -> Iterator[list[str]]:
        nonlocal count
        for row in rows:
            count += 1
            yield [cell(row.path), cell(row.set_name), cell(row.label), f"{row.probability:.4f}"]

    _write_csv(target, ["path", "set", "label", "probability"], cells())
    return count


def _write_csv(target: str, header: list[str], rows: Iterable[list[str]]) -> None:
    """Write a CSV file all or nothing.

    The file is written next to the target and renamed over it only when
    complete, so a failure (disk full, a bad name) never leaves half a CSV.
    """
    # Created like any new file (the user's umask), under a name no one else uses.
    temp = os.path.join(os.path.dirname(os.path.abspath(target)), f".clipdesk-{secrets.token_hex(6)}.csv.part")
    done = False
    try:
        with open(temp, "x", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for row in rows:
                writer.writerow(row)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
        done = True
    finally:
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(temp)
