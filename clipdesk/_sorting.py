"""Sorting classified photos into one folder per label, never overwriting anything.

Copies by default. A copy is written under a temporary name, flushed to disk and
only then given its real name, so a full disk or a crash never leaves a cut-off
file that looks like a photo; a move removes the original only after that.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import secrets
import shutil
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import ImageUnreadable
from ._safefile import open_regular

# The longest file or folder name most file systems take (ext4, btrfs, APFS: 255
# bytes; NTFS: 255 UTF-16 units, which 255 UTF-8 bytes never exceed).
NAME_MAX = 255

# Characters Windows, macOS or Linux refuse in a name, and control characters.
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f-\x9f]')
# Names Windows keeps for devices, with or without an extension ("con.txt" too).
_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"]
    + [f"{kind}{n}" for kind in ("com", "lpt") for n in [*"0123456789", "¹", "²", "³"]]
)


@dataclass(frozen=True)
class Placement:
    source: str
    target: str


@dataclass
class SortReport:
    done: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def _truncate(text: str, limit: int) -> str:
    """The longest start of `text` that is at most `limit` bytes, never cutting a character."""
    if _utf8_len(text) <= limit:
        return text
    size = 0
    for i, char in enumerate(text):
        size += _utf8_len(char)
        if size > limit:
            return text[:i]
    return text


def folder_name(label: str) -> str:
    """A label as a folder name valid everywhere: 'a/b?' -> 'a_b_', 'con' -> 'con_', at most 255 bytes."""
    # Windows drops trailing dots and spaces, and a leading dot hides a folder elsewhere.
    name = _truncate(_UNSAFE.sub("_", label).strip(" ."), NAME_MAX).strip(" .")
    if name.split(".", 1)[0].rstrip(" ").casefold() in _RESERVED:
        stem, dot, rest = name.partition(".")
        name = f"{stem}_{dot}{rest}"
    return name or "unnamed"


def folder_names(labels: Iterable[str]) -> dict[str, str]:
    """Each label's folder: valid everywhere, and never shared by two labels ('a/b', 'a_b' -> 'a_b (2)').

    Names differing only in case or Unicode normalisation count as the same (they are on Windows and macOS).
    A label that is already a valid name keeps it; the others are numbered.
    """
    unique = list(dict.fromkeys(labels))
    wanted = {label: folder_name(label) for label in unique}
    names: dict[str, str] = {}
    taken: set[str] = set()
    for label in sorted(unique, key=lambda lb: wanted[lb] != lb):  # stable: order kept otherwise
        name = wanted[label]
        for n in itertools.count(2):
            if _key(name) not in taken:
                break
            name = _numbered(wanted[label], n)
        taken.add(_key(name))
        names[label] = name
    return {label: names[label] for label in unique}


def _key(name: str) -> str:
    """What a case-insensitive, normalising file system (Windows, macOS) compares."""
    return unicodedata.normalize("NFC", name).casefold()


def _numbered(name: str, n: int, suffix: str = "") -> str:
    """'name (n)suffix', with the name shortened so the whole stays within NAME_MAX bytes."""
    tail = f" ({n}){suffix}"
    return _truncate(name, NAME_MAX - _utf8_len(tail)) + tail


def _file_name(path: str) -> tuple[str, str]:
    """A source file's name as (stem, extension), the stem shortened if the name is too long here."""
    stem, ext = os.path.splitext(os.path.basename(path))
    if _utf8_len(ext) > 32:  # not really an extension: keep it in the stem
        stem, ext = stem + ext, ""
    return _truncate(stem, NAME_MAX - _utf8_len(ext)), ext


def _candidates(folder: Path, stem: str, ext: str) -> Iterable[Path]:
    """folder/stem.ext, then 'stem (2).ext', 'stem (3).ext'…, each name within NAME_MAX bytes."""
    yield folder / f"{stem}{ext}"
    for n in itertools.count(2):
        yield folder / _numbered(stem, n, ext)


def _exists(path: Path) -> bool:
    try:
        return os.path.lexists(path)
    except (OSError, ValueError):
        return False  # cannot tell: the copy itself will say what is wrong


def plan_sort(items: Iterable[tuple[str, str]], destination: str | Path) -> list[Placement]:
    """Where each (path, label) goes: destination/folder/name, with new names for clashes."""
    pairs = list(items)
    dest = Path(destination)
    folders = folder_names(label for _, label in pairs)
    taken: set[str] = set()
    plan: list[Placement] = []
    for path, label in pairs:
        stem, ext = _file_name(path)
        for target in _candidates(dest / folders[label], stem, ext):
            if _key(str(target)) not in taken and not _exists(target):
                break
        taken.add(_key(str(target)))
        plan.append(Placement(path, str(target)))
    return plan


def _sync_folder(folder: Path) -> None:
    """Make a new name in `folder` durable (best effort: not every system can)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _place(file: str, target: Path) -> Path:
    """Give `file` the name `target`, or the next free numbered name; never overwrites.

    `file` must be on the same device as `target`; it no longer exists under its old name after.
    """
    stem, ext = os.path.splitext(target.name)
    for candidate in _candidates(target.parent, stem, ext):
        try:
            os.link(file, candidate)  # fails, rather than overwrite, if the name is taken
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                raise
            # No hard links on this file system: rename after a check. Only
            # another program creating this very name in between could lose.
            if _exists(candidate):
                continue
            os.rename(file, candidate)
        else:
            os.unlink(file)
        return candidate
    raise AssertionError("unreachable")  # _candidates never ends


def _copy(source: str, target: Path) -> Path:
    """Copy to a free name from `target` on: written to a temporary name, flushed, then renamed."""
    temp = target.parent / f".clipdesk-{secrets.token_hex(6)}.part"  # short: fits any folder
    try:
        # A FIFO or device put where a photo was must not hang the sort.
        with open_regular(source) as src, open(temp, "xb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
            dst.flush()
            shutil.copystat(source, temp)
            os.fsync(dst.fileno())
        return _place(str(temp), target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _move(source: str, target: Path) -> Path:
    """Move to a free name from `target` on; across devices, the original goes only once the copy is on disk."""
    try:
        # Same device: a new name for the same data, which never moves; the file
        # system's journal keeps the new name if it keeps the removal of the old.
        return _place(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    placed = _copy(source, target)
    _sync_folder(placed.parent)  # the new name too must survive a power cut before the original goes
    os.remove(source)
    return placed


def apply_sort(plan: Sequence[Placement], *, move: bool = False) -> SortReport:
    """Carry out a plan; a file that fails is reported and the rest go on."""
    report = SortReport()
    for item in plan:
        target = Path(item.target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if move:
                _move(item.source, target)
            else:
                _copy(item.source, target)
            report.done += 1
        except OSError as exc:
            report.failed.append((item.source, exc.strerror or str(exc)))
        except ImageUnreadable as exc:
            report.failed.append((item.source, str(exc)))
    return report
