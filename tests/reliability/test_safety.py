"""The user's photos are never changed, the library is private, and nothing uses the network."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import apsw
from PIL import Image

from clipdesk._paths import make_private_dir

from .helpers import run_clipdesk, COLOUR_MODEL, clipdesk_env, jpeg_bytes, snapshot


_run = run_clipdesk


def test_photos_are_never_written_moved_or_deleted(photos: Path, tmp_path: Path) -> None:
    """Every command leaves the photo tree byte-identical, mtimes and modes included."""
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (40, 30), (200, 0, 0)).save(photos / "rotated.jpg", exif=exif)
    (photos / "notes.txt").write_text("not a photo")
    (photos / ".hidden.jpg").write_bytes(jpeg_bytes((0, 0, 200)))
    os.utime(photos / "red1.jpg", ns=(1_000_000_000, 1_000_000_000))
    before = snapshot(photos)
    env = clipdesk_env(tmp_path / "data")
    image = str(photos / "red1.jpg")
    for args in (
        ["index", str(photos), "--model", COLOUR_MODEL],
        ["index"],
        ["search", "red"],
        ["search", "red", "--like", image, "--not", "blue"],
        ["similar", image],
        ["classify", image, str(photos / "rotated.jpg"), "--labels", "red,blue"],
        ["status"],
        ["forget", str(photos / "trip")],  # inside a library folder: refused, nothing touched
        ["forget", str(photos)],
        ["index", str(photos), "--model", COLOUR_MODEL],
        ["rebuild"],
    ):
        result = _run(env, *args)
        assert "Traceback" not in result.stderr, (args, result.stderr)
    assert snapshot(photos) == before


def test_library_files_are_private_even_with_a_permissive_umask(
    tmp_path: Path, photos: Path
) -> None:
    data = tmp_path / "nested" / "data"
    env = clipdesk_env(data)
    result = _run(
        env, "index", str(photos), "--model", COLOUR_MODEL, preexec_fn=lambda: os.umask(0)
    )
    assert result.returncode == 0, result.stderr
    db = data / "library.db"
    # Hold a connection open so the WAL and shared-memory files stay for inspection.
    keep = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        keep.execute("SELECT count(*) FROM images").fetchall()
        result = _run(env, "index", str(photos), preexec_fn=lambda: os.umask(0))
        assert result.returncode == 0
        photos_extra = photos / "more.jpg"
        photos_extra.write_bytes(jpeg_bytes((10, 200, 10)))
        _run(env, "index", preexec_fn=lambda: os.umask(0))
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.iterdir()}
    finally:
        keep.close()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert modes["library.db"] == 0o600
    assert modes.get("library.db-wal") == 0o600 and modes.get("library.db-shm") == 0o600, modes
    assert all(mode & 0o077 == 0 for mode in modes.values()), modes

    rebuilt = _run(env, "rebuild", preexec_fn=lambda: os.umask(0))
    assert rebuilt.returncode == 0
    for path in data.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_make_private_dir(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        made = make_private_dir(tmp_path / "a" / "b" / "cache")
    finally:
        os.umask(old)
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    assert make_private_dir(made) == made  # already there: fine


# The check runs in a fresh interpreter with an audit hook, so every socket any library
# opens (huggingface_hub, transformers, urllib…) is seen, and refused.
NO_NETWORK = r"""
import os, sys
attempts = []
def hook(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto"):
        attempts.append((event, repr(args)[:200]))
        raise OSError("network use during a no-network test")
sys.addaudithook(hook)
from clipdesk import _cli as cli
codes = [cli.main(args) for args in eval(sys.argv[1])]
print("CODES", codes)
print("ATTEMPTS", attempts)
"""


def _no_network_run(env: dict[str, str], commands: list[list[str]]) -> tuple[list[int], str, str]:
    result = subprocess.run(
        [sys.executable, "-c", NO_NETWORK, repr(commands)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stdout.splitlines()
    codes = eval(next(line for line in lines if line.startswith("CODES "))[6:])
    attempts = next(line for line in lines if line.startswith("ATTEMPTS "))[9:]
    return codes, attempts, result.stderr


def test_no_network_with_a_local_model(tiny_clip: Path, photos: Path, tmp_path: Path) -> None:
    """A local model folder: not one connection, even with the offline switches off."""
    env = clipdesk_env(tmp_path / "data", HF_HOME=str(tmp_path / "hf"))
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("TRANSFORMERS_OFFLINE", None)
    db = str(tmp_path / "data" / "library.db")
    codes, attempts, stderr = _no_network_run(
        env,
        [
            ["--db", db, "--model", str(tiny_clip), "index", str(photos)],
            ["--db", db, "search", "a red photo", "--json"],
            ["--db", db, "similar", str(photos / "red1.jpg")],
            ["--db", db, "classify", str(photos / "red1.jpg"), "--labels", "red,blue"],
        ],
    )
    assert codes == [0, 0, 0, 0], stderr
    assert attempts == "[]"


def test_no_network_when_offline_and_the_hub_model_is_missing(photos: Path, tmp_path: Path) -> None:
    """HF_HUB_OFFLINE=1 and no cached model: a clear message, and no connection attempted."""
    env = clipdesk_env(tmp_path / "data", HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    db = str(tmp_path / "data" / "library.db")
    codes, attempts, stderr = _no_network_run(
        env,
        [
            ["--db", db, "index", str(photos)],  # the default model, never downloaded
            ["--db", db, "--model", "someone/clip", "index", str(photos)],
            [
                "--db",
                db,
                "--model",
                "ViT-B/16",
                "classify",
                str(photos / "red1.jpg"),
                "--labels",
                "a,b",
            ],
        ],
    )
    assert codes == [1, 1, 1]
    assert attempts == "[]"
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 3 and all("not downloaded yet" in line for line in lines), stderr


def test_status_json_never_needs_the_model(photos: Path, tmp_path: Path) -> None:
    """status reads the library only: it works offline for a library of any model."""
    env = clipdesk_env(tmp_path / "data", HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    assert _run(env, "index", str(photos), "--model", COLOUR_MODEL).returncode == 0
    db = tmp_path / "data" / "library.db"
    conn = apsw.Connection(str(db))
    conn.execute("UPDATE meta SET value = 'openai/clip-vit-large-patch14' WHERE key = 'model_id'")
    conn.close()
    status = _run(env, "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["images"] == 8


def test_the_network_check_sees_a_download_attempt(photos: Path, tmp_path: Path) -> None:
    """The detector itself works: online, a missing hub model is looked up (and refused here)."""
    env = clipdesk_env(tmp_path / "data", HF_HOME=str(tmp_path / "hf"))
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("TRANSFORMERS_OFFLINE", None)
    db = str(tmp_path / "data" / "library.db")
    codes, attempts, stderr = _no_network_run(
        env, [["--db", db, "--model", "someone/clip", "index", str(photos)]]
    )
    assert codes == [1] and "socket" in attempts, (attempts, stderr)
    assert stderr.count("\n") == 1 and "cannot be fetched" in stderr
