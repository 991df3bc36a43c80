"""kill -9 at random moments, many times in a row, then one normal run: nothing lost or doubled.

CI runs a few rounds; `make kill-test` runs 20 (CLIPDESK_KILL_ROUNDS). Set
CLIPDESK_KILL_SEED to replay a failing run.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from PIL import Image

from .helpers import (
    COLOUR_MODEL,
    check_library_matches,
    clipdesk_argv,
    clipdesk_env,
    kill_loop,
    random_colour,
    read_library,
)

ROUNDS = int(os.environ.get("CLIPDESK_KILL_ROUNDS", "4"))
PHOTOS = 1200


def _seed() -> int:
    return int(os.environ.get("CLIPDESK_KILL_SEED") or time.time_ns() % 1_000_000)


class PhotoTree:
    """A folder of small unique photos that changes between rounds like a real library."""

    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self.counter = 0
        for sub in ("", "a", "b", "a/deep"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def add(self, count: int) -> None:
        for _ in range(count):
            sub = self.rng.choice(["", "a", "b", "a/deep"])
            self.write(self.root / sub / f"img{self.counter:05d}.jpg")
            self.counter += 1

    def write(self, path: Path) -> None:
        Image.new("RGB", (48, 32), random_colour(self.rng)).save(path, quality=90)

    def files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*.jpg"))

    def churn(self) -> None:
        """New photos, deleted ones, moved ones, edited ones, and a renamed folder."""
        files = self.files()
        self.rng.shuffle(files)
        deleted, moved, edited = files[:40], files[40:140], files[140:290]
        for path in deleted:
            path.unlink()
        for path in moved:
            target = self.root / self.rng.choice(["", "a", "b"]) / f"moved-{self.counter}.jpg"
            self.counter += 1
            path.rename(target)
        for path in edited:
            self.write(path)
        self.add(300)
        if self.rng.random() < 0.3:
            name = f"renamed-{self.counter}"
            self.counter += 1
            (self.root / "b").rename(self.root / name)
            (self.root / name).rename(self.root / "b")  # back, with every mtime kept
            shutil.move(
                str(self.root / "a" / "deep"), str(self.root / "b" / f"deep-{self.counter}")
            )
            (self.root / "a" / "deep").mkdir()


def _index_argv(root: Path) -> Callable[[int], Sequence[str]]:
    def argv(round_no: int) -> list[str]:
        return clipdesk_argv(
            "index", str(root), "--model", COLOUR_MODEL, "--batch-size", "4", "--workers", "2"
        )

    return argv


def _watch_argv(root: Path) -> Callable[[int], Sequence[str]]:
    def argv(round_no: int) -> list[str]:
        return clipdesk_argv(
            "watch",
            str(root),
            "--model",
            COLOUR_MODEL,
            "--batch-size",
            "4",
            "--workers",
            "2",
            "--debounce",
            "0.1",
        )

    return argv


# The commands killed: a one-off index run, and the long-running folder watcher.
KILL_CASES = {"index": _index_argv, "watch": _watch_argv}


@pytest.mark.parametrize("command", sorted(KILL_CASES))
def test_kill_9_at_random_moments_loses_nothing(tmp_path: Path, command: str) -> None:
    seed = _seed()
    rng = random.Random(seed)
    root = tmp_path / "photos"
    tree = PhotoTree(root, rng)
    tree.add(PHOTOS)
    data = tmp_path / "data"
    env = clipdesk_env(data)
    db = data / "library.db"
    partial_rounds = 0

    def before_round(n: int) -> None:
        nonlocal partial_rounds
        if n > 0:
            if db.exists() and _in_sync_fraction(db, root) < 1.0:
                partial_rounds += 1
            tree.churn()

    wal = Path(f"{db}-wal")
    wal_before: list[tuple[int, int] | None] = [None]

    def wal_state() -> tuple[int, int] | None:
        try:
            st = wal.stat()
        except FileNotFoundError:
            return None
        return (st.st_size, st.st_mtime_ns)

    def before(n: int) -> None:
        before_round(n)
        wal_before[0] = wal_state()

    def writing() -> bool:
        # The run has begun committing: kill it at a random moment from here on.
        state = wal_state()
        return state is not None and state != wal_before[0]

    stats = kill_loop(
        KILL_CASES[command](root),
        env,
        ROUNDS,
        rng,
        window=(0.0, 0.15),
        before_round=before,
        ready=writing,
    )
    if db.exists() and _in_sync_fraction(db, root) < 1.0:
        partial_rounds += 1

    final = subprocess.run(
        _index_argv(root)(ROUNDS), env=env, capture_output=True, text=True, timeout=300
    )
    assert final.returncode == 0, final.stderr
    contents = check_library_matches(db, root)
    status = json.loads(
        subprocess.run(
            clipdesk_argv("status", "--json"), env=env, capture_output=True, text=True, timeout=60
        ).stdout
    )
    assert status["integrity"] == "ok"
    assert status["images"] == len(tree.files()) == len(contents.rows)
    print(
        f"seed {seed}: {stats.rounds} rounds of kill -9 on `clipdesk {command}`, "
        f"{stats.killed_mid_run} killed while running ({partial_rounds} left the library "
        f"part-updated), {stats.finished_first} finished first; final library "
        f"{len(contents.rows)} images = {len(tree.files())} files, 0 lost, 0 duplicated"
    )
    assert stats.killed_mid_run >= ROUNDS // 2, "the kill window no longer covers the run"


def _in_sync_fraction(db: Path, root: Path) -> float:
    """How much of the tree the library already has right (1.0: fully up to date)."""
    try:
        rows = {path for path, _ in read_library(db).rows}
    except Exception:  # a library still empty of tables, or mid-creation
        return 0.0
    files = {str(p) for p in root.rglob("*.jpg")}
    return len(rows & files) / max(1, len(files | rows))
