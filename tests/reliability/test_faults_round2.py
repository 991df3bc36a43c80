"""Reliability, round two: folders that cannot be read, edits that keep size and mtime,
files that always fail, and two writers at once. Each ends in a correct library."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import clipdesk.scanner as scanner_mod
from clipdesk.indexer import Indexer
from clipdesk.store import Store
from clipdesk.testing.colours import ColourEncoder

from .helpers import COLOUR_MODEL, clipdesk_argv, clipdesk_env, read_library, run_clipdesk


def _photo(path: Path, colour: tuple[int, int, int], fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (48, 32), colour).save(path, fmt)
    return path


def _album(root: Path) -> list[Path]:
    """Two photos at the top and three in a subfolder `locked`."""
    return [
        _photo(root / "a.jpg", (200, 10, 10)),
        _photo(root / "b.jpg", (10, 200, 10)),
        *(_photo(root / "locked" / f"l{i}.jpg", (10, 10, 60 * i + 50)) for i in range(3)),
    ]


# -- 1. a folder that cannot be listed -------------------------------------------------


class _LockedOs:
    """The os module as the scanner sees it, with some folders refusing to be listed."""

    def __init__(self, locked: set[str]) -> None:
        self.locked = locked

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def scandir(self, path: Any) -> Any:
        if os.fspath(path) in self.locked:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return os.scandir(path)


@pytest.fixture
def locked(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Folders (add to the set) that the scanner cannot list, as without read permission."""
    folders: set[str] = set()
    monkeypatch.setattr(scanner_mod, "os", _LockedOs(folders))
    return folders


@pytest.mark.parametrize("which", ["subfolder", "root"])
def test_unreadable_folder_keeps_its_photos(tmp_path: Path, locked: set[str], which: str) -> None:
    root = tmp_path / "photos"
    _album(root)
    with Store(tmp_path / "lib.db") as store:
        indexer = Indexer(store, ColourEncoder(), workers=2)
        assert indexer.index([str(root)]).indexed == 5
        before = {p: (s.id, s.hash) for p, s in store.image_states(1).items()}

        unreadable = str(root / "locked") if which == "subfolder" else str(root)
        locked.add(unreadable)
        report = indexer.index([str(root)])
        assert report.removed == 0
        assert {p: (s.id, s.hash) for p, s in store.image_states(1).items()} == before
        kept = 3 if which == "subfolder" else 5
        assert [(f.path, f.error) for f in report.failed] == [
            (unreadable, f"cannot read folder: Permission denied; its {kept} photos were kept")
        ]

        # Readable again: nothing to redo.
        locked.clear()
        report = indexer.index([str(root)])
        assert (report.indexed, report.encoded, report.unchanged, report.failed) == (0, 0, 5, [])


def test_reconcile_keeps_the_photos_of_an_unreadable_folder(tmp_path: Path, locked: set[str]) -> None:
    from clipdesk.library import LibraryOptions
    from clipdesk.service import IndexService, ServiceEvent

    root = tmp_path / "photos"
    _album(root)
    db = tmp_path / "lib.db"
    with Store(db) as store:
        Indexer(store, ColourEncoder(), workers=2).index([str(root)])
    locked.add(str(root / "locked"))
    events: list[ServiceEvent] = []
    service = IndexService(
        LibraryOptions(db_path=db), on_event=events.append, encoder=ColourEncoder(), debounce=0.1
    )
    service.start()  # reconciles every folder at start
    try:
        _wait(lambda: any(e.kind == "failed" for e in events) and any(e.kind == "idle" for e in events))
    finally:
        service.stop()
    assert not [e for e in events if e.kind == "removed"]
    failed = [e for e in events if e.kind == "failed"]
    assert [(e.path, e.message) for e in failed] == [
        (str(root / "locked"), "cannot read folder: Permission denied; its 3 photos were kept")
    ]
    assert len(read_library(db).rows) == 5


def _wait(condition: Any, timeout: float = 20.0) -> None:
    from watchutil import wait_for

    wait_for(condition, timeout=timeout)


def _unprivileged() -> list[str]:
    """A command prefix under which file permissions apply (root bypasses them)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a folder unreadable")
    prefix = [setpriv, "--inh-caps=-dac_override,-dac_read_search",
              "--bounding-set=-dac_override,-dac_read_search"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"setpriv cannot drop capabilities here: {probe.stderr.decode(errors='replace')}")
    return prefix


@pytest.fixture
def chmod_back() -> Iterator[list[Path]]:
    """Folders to make readable again after the test (so tmp_path can be removed)."""
    folders: list[Path] = []
    yield folders
    for folder in folders:
        folder.chmod(0o755)


@pytest.mark.parametrize("which", ["subfolder", "root"])
def test_unreadable_folder_without_root_privileges(
    tmp_path: Path, chmod_back: list[Path], which: str
) -> None:
    prefix = _unprivileged()
    root = tmp_path / "photos"
    _album(root)
    env = clipdesk_env(tmp_path / "data")
    db = tmp_path / "data" / "library.db"
    first = run_clipdesk(env, "index", str(root), "--model", COLOUR_MODEL)
    assert first.returncode == 0, first.stderr
    before = sorted(read_library(db).rows)

    folder = root / "locked" if which == "subfolder" else root
    folder.chmod(0)
    chmod_back.append(folder)
    result = subprocess.run(
        [*prefix, *clipdesk_argv("index", "--json")], env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["removed"] == 0
    assert [f["path"] for f in report["failed"]] == [str(folder)]
    assert "Permission denied" in report["failed"][0]["error"]
    assert sorted(read_library(db).rows) == before

    folder.chmod(0o755)
    again = subprocess.run(
        [*prefix, *clipdesk_argv("index", "--json")], env=env, capture_output=True, text=True,
        timeout=120,
    )
    report = json.loads(again.stdout)
    assert (report["encoded"], report["unchanged"], report["failed"]) == (0, 5, [])
