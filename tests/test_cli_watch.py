"""`clipdesk watch` as a user runs it: a foreground process, searched from another, stopped by a signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import COLOUR_MODEL, CliRunner, make_photo
from watchutil import wait_for


class WatchProcess:
    """`clipdesk watch` in the background, its stderr collected line by line."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        env = dict(os.environ, CLIPDESK_DATA_DIR=str(data_dir), PYTHONWARNINGS="ignore")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "clipdesk", "watch", "--model", COLOUR_MODEL, "--debounce", "0.2", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=env,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_watch_indexes_copies_and_stops_cleanly(
    cli: CliRunner, data_dir: Path, photos: Path, sig: int
) -> None:
    watch = WatchProcess(data_dir, str(photos))
    try:
        wait_for(lambda: watch.saw("up to date: 8 images"), timeout=60, what=f"first index: {watch.lines}")
        make_photo(photos / "new" / "purple.png", "purple")
        wait_for(
            lambda: "purple.png" in cli("search", "purple", "-n", "1").stdout,
            timeout=30, what="the copy to become searchable from another process",
        )
        status = json.loads(cli("status", "--json").stdout)  # while watch runs
        assert status["images"] == 9 and status["integrity"] == "ok"
        (photos / "new" / "purple.png").rename(photos / "purple-moved.png")
        wait_for(lambda: "purple-moved.png" in cli("search", "purple", "-n", "1").stdout,
                 timeout=30, what="the moved photo's new path")
        assert watch.saw("moved 1 image")
        code = watch.stop(sig)
    finally:
        watch.kill()
    assert code == 0, watch.lines
    assert watch.saw("stopped")
    assert not any("Traceback" in line for line in watch.lines), watch.lines
    status = json.loads(cli("status", "--json").stdout)
    assert status["images"] == 9 and status["integrity"] == "ok"
    # A clean stop folds the write-ahead log back into the database.
    wal = data_dir / "library.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0


def test_watch_without_folders_says_what_to_do(cli: CliRunner) -> None:
    result = cli("watch", check=False)
    assert result.returncode == 1
    assert "No folders to watch" in result.stderr and "Traceback" not in result.stderr


def test_watch_refuses_a_missing_folder(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("watch", str(tmp_path / "nope"), check=False)
    assert result.returncode == 1 and "No folder at" in result.stderr


def test_rebuild_refuses_while_watch_runs(cli: CliRunner, data_dir: Path, photos: Path) -> None:
    watch = WatchProcess(data_dir, str(photos))
    try:
        wait_for(lambda: watch.saw("up to date: 8 images"), timeout=60, what=f"first index: {watch.lines}")
        result = cli("rebuild", check=False)
        assert result.returncode == 1
        assert "close it first" in result.stderr and "Traceback" not in result.stderr
        assert not list(data_dir.glob("*.backup-*"))
        # The watcher still indexes into the library everyone else sees.
        make_photo(photos / "after-rebuild.png", "purple")
        wait_for(lambda: "after-rebuild.png" in cli("search", "purple", "-n", "1").stdout,
                 timeout=30, what="the new photo in the library at the path")
        assert watch.stop(signal.SIGTERM) == 0, watch.lines
    finally:
        watch.kill()
    assert "Moved the old library" in cli("rebuild").stdout  # free once watch stopped
    assert json.loads(cli("status", "--json").stdout)["images"] == 0
