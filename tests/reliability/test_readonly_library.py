"""A library that cannot be written (a read-only disk, a backup copy, a locked-down folder) still searches."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import (
    COLOUR_MODEL,
    assert_clean_error,
    clipdesk_argv,
    clipdesk_env,
    jpeg_bytes,
)

# Root ignores file permissions; without these capabilities it obeys them like any user.
SETPRIV = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]


def _run_unprivileged(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    prefix = SETPRIV if os.geteuid() == 0 else []
    return subprocess.run(
        [*prefix, *clipdesk_argv(*args)], env=env, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=120,
    )


@pytest.fixture
def locked_library(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to drop root's permission override")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, colour in (("red.jpg", (220, 20, 20)), ("blue.jpg", (20, 20, 220))):
        (photos / name).write_bytes(jpeg_bytes(colour))
    data = tmp_path / "data"
    env = clipdesk_env(data)
    assert subprocess.run(clipdesk_argv("index", str(photos), "--model", COLOUR_MODEL), env=env,
                          capture_output=True, stdin=subprocess.DEVNULL).returncode == 0
    # The folder holds no -wal or -shm now (clean close); nothing can create them either.
    (data / "library.db").chmod(0o444)
    data.chmod(0o555)
    try:
        yield data / "library.db", env
    finally:
        data.chmod(0o755)
        (data / "library.db").chmod(0o644)


def test_a_library_that_cannot_be_written_is_still_searched(locked_library: tuple[Path, dict[str, str]]) -> None:
    db, env = locked_library
    before = db.read_bytes()
    result = _run_unprivileged(env, "search", "red", "-n", "1", "--json")
    assert result.returncode == 0, result.stderr
    assert '"red.jpg"' in result.stdout or "red.jpg" in result.stdout
    status = _run_unprivileged(env, "status")
    assert status.returncode == 0, status.stderr
    assert db.read_bytes() == before
    assert stat.S_IMODE(db.stat().st_mode) == 0o444


def test_changing_a_read_only_library_is_one_clear_line(locked_library: tuple[Path, dict[str, str]]) -> None:
    db, env = locked_library
    assert_clean_error(_run_unprivileged(env, "forget", str(db.parent.parent / "photos")), "read-only")
    line = assert_clean_error(_run_unprivileged(env, "rebuild"))
    assert "writable" in line or "read-only" in line
