"""Helpers for the watcher and service tests: bounded waits, a counting encoder, a DB view."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from clipdesk._store import Store
from clipdesk._testing.colours import ColourEncoder


def wait_for(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll until condition() is true; fail after timeout seconds (no fixed sleeps)."""
    end = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class CountingEncoder(ColourEncoder):
    """The colour encoder, counting images it encodes (to prove moves are not re-encoded)."""

    def __init__(self, delay: float = 0.0, batch_size: int = 8) -> None:
        self.count = 0
        self.delay = delay
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        with self._lock:
            self.count += len(pixels)
        if self.delay:
            time.sleep(self.delay)
        return super().encode_pixels(pixels)


class Library:
    """What the library holds, read through its own connection (as another process would)."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.db)
        return self._store

    def paths(self) -> dict[str, int]:
        """Indexed path -> image id."""
        return {
            str(row[1]): int(row[0]) for row in self.store.conn.execute("SELECT id, path FROM images")
        }

    def vectors(self) -> int:
        return int(self.store.conn.execute("SELECT count(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def tiny_image(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (8, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path)
    return path
