"""Tools for the reliability tests: odd image files, process runs, library checks."""

from __future__ import annotations

import hashlib
import io
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import apsw
from PIL import Image

COLOUR_MODEL = "clipdesk-test:colours"


# -- running clipdesk ---------------------------------------------------------


def clipdesk_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(data_dir), PYTHONWARNINGS="ignore")
    env.update(extra)
    return env


def clipdesk_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "clipdesk", *args]


def assert_clean_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """A user-caused error: non-zero exit and one `clipdesk: …` line on stderr, no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, f"expected failure, got 0\nstdout: {result.stdout}"
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("clipdesk: "), result.stderr
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])
    return lines[0]


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    peak_rss_mb: float


def run_measured(
    argv: Sequence[str], env: dict[str, str], tmp: Path, timeout: float = 120
) -> Measured:
    """Run a command and report its own peak resident memory.

    Read from the child's VmHWM while it runs: rusage's ru_maxrss survives exec on
    Linux, so it would report the size of the (large) pytest process that forked it.
    """
    out, err = tmp / "measured.out", tmp / "measured.err"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(list(argv), stdout=o, stderr=e, env=env, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    peak_kb = 0
    while True:
        peak_kb = max(peak_kb, _vm_hwm_kb(proc.pid))
        pid, status, _usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            raise AssertionError(f"{argv} did not finish in {timeout} s")
        time.sleep(0.01)
    proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from waiting again
    return Measured(proc.returncode, out.read_text(), err.read_text(), peak_kb / 1024)


def _vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


# -- files ---------------------------------------------------------------------


def snapshot(tree: Path) -> dict[str, tuple[object, ...]]:
    """Every entry below tree with its type, mode, size, mtime and content hash."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            digest = ""
            if os.path.isfile(path) and not os.path.islink(path):
                digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            out[path] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return out


def image_files(root: Path) -> set[str]:
    """Image files below root as the scanner sees them (no links, no hidden files)."""
    from clipdesk._scanner import scan

    return {s.path for s in scan(str(root))}


def write_png_stream(path: Path, width: int, height: int, colour: tuple[int, int, int]) -> None:
    """A solid-colour RGB PNG of any size, written row by row (no full image in memory)."""
    comp = zlib.compressobj(9)
    row = b"\0" + bytes(colour) * width
    parts = [comp.compress(row) for _ in range(height)]
    parts.append(comp.flush())
    _write_png(path, width, height, b"".join(parts))


def write_png_header_only(path: Path, width: int, height: int) -> None:
    """A 'decompression bomb': a tiny PNG that declares huge dimensions."""
    _write_png(path, width, height, zlib.compress(b"\0" * 64))


def write_png16(path: Path, width: int, height: int, value: Sequence[int]) -> None:
    """A solid 16-bit PNG: one sample per channel given (1 = grey, 3 = RGB)."""
    pixel = b"".join(struct.pack(">H", v) for v in value)
    row = b"\0" + pixel * width
    _write_png(
        path,
        width,
        height,
        zlib.compress(row * height),
        depth=16,
        colour_type=0 if len(value) == 1 else 2,
    )


def _write_png(
    path: Path, width: int, height: int, idat: bytes, *, depth: int = 8, colour_type: int = 2
) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def jpeg_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def jpeg_folder(root: Path, count: int) -> Path:
    """root/p0.jpg … p{count-1}.jpg: small JPEGs of different reds, each its own content."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (root / f"p{i}.jpg").write_bytes(jpeg_bytes((min(255, 240 * i // max(1, count - 1)), 0, 0)))
    return root


def random_colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


# -- the library, read directly ---------------------------------------------------


@dataclass
class LibraryContents:
    rows: list[tuple[str, str]]  # (path, hash) per images row
    vectors: dict[str, bytes]  # path -> vector blob
    image_ids: int
    vector_ids: int
    orphan_vectors: int
    images_without_vector: int
    integrity: str


def read_library(db: Path) -> LibraryContents:
    """Everything the checks need, read with a plain connection (no clipdesk code)."""
    import sqlite_vec

    from clipdesk._paths import from_db

    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        conn.enable_load_extension(True)
        conn.load_extension(sqlite_vec.loadable_path())
        integrity = "; ".join(r[0] for r in conn.execute("PRAGMA integrity_check"))
        rows = [(from_db(p), h) for p, h in conn.execute("SELECT path, hash FROM images")]
        has_vectors = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'vectors'"
        ).fetchone()[0]
        vectors: dict[str, bytes] = {}
        orphans = missing = vector_ids = 0
        if has_vectors:
            vectors = {
                from_db(p): bytes(v)
                for p, v in conn.execute(
                    "SELECT i.path, v.embedding FROM images i JOIN vectors v ON v.image_id = i.id"
                )
            }
            vector_ids = conn.execute("SELECT count(*) FROM vectors").fetchone()[0]
            orphans = conn.execute(
                "SELECT count(*) FROM vectors WHERE image_id NOT IN (SELECT id FROM images)"
            ).fetchone()[0]
            missing = conn.execute(
                "SELECT count(*) FROM images WHERE id NOT IN (SELECT image_id FROM vectors)"
            ).fetchone()[0]
        image_ids = conn.execute("SELECT count(DISTINCT id) FROM images").fetchone()[0]
    finally:
        conn.close()
    return LibraryContents(rows, vectors, image_ids, vector_ids, orphans, missing, integrity)


def file_digest(path: str) -> str:
    from clipdesk._indexer import hash_path

    return hash_path(path)


def check_library_matches(db: Path, root: Path) -> LibraryContents:
    """Every image under root is in the library exactly once, current, with the right vector."""
    import numpy as np

    from clipdesk._imaging import open_image
    from clipdesk._testing.colours import ColourEncoder

    contents = read_library(db)
    on_disk = image_files(root)
    paths = [p for p, _ in contents.rows]
    duplicated = len(paths) - len(set(paths))
    assert duplicated == 0, f"{duplicated} paths stored twice"
    assert set(paths) == on_disk, (
        f"missing {len(on_disk - set(paths))}, extra {len(set(paths) - on_disk)}"
    )
    assert contents.integrity == "ok", contents.integrity
    assert contents.orphan_vectors == 0 and contents.images_without_vector == 0
    assert contents.vector_ids == contents.image_ids == len(paths)
    encoder = ColourEncoder()
    for path, digest in contents.rows:
        assert digest == file_digest(path), f"stale hash for {path}"
        image, _ = open_image(path, min_side=encoder.image_size)
        expected = encoder.encode_pixels(encoder.preprocess(image)[None])[0]
        stored = np.frombuffer(contents.vectors[path], dtype=np.float32)
        assert np.allclose(stored, expected, atol=1e-5), f"wrong vector for {path}"
    return contents


# -- kill -9 at random moments ---------------------------------------------------------


@dataclass
class KillStats:
    rounds: int = 0
    killed_mid_run: int = 0  # the process was still running when SIGKILL landed
    finished_first: int = 0  # it completed before the kill time came
    delays: list[float] = field(default_factory=list)


def kill_loop(
    argv: Callable[[int], Sequence[str]],
    env: dict[str, str],
    rounds: int,
    rng: random.Random,
    *,
    window: tuple[float, float],
    before_round: Callable[[int], None] | None = None,
    ready: Callable[[], bool] | None = None,
) -> KillStats:
    """Start argv(round), SIGKILL it after a random delay in window, `rounds` times.

    before_round may change the photos between rounds; ready (polled) delays the
    clock start until the process is doing real work (e.g. a long-running service).
    """
    stats = KillStats()
    for n in range(rounds):
        if before_round is not None:
            before_round(n)
        # stderr to a file: a chatty process (`watch` logs every event) must never
        # block on a full pipe while we wait to kill it.
        log = tempfile.TemporaryFile()  # noqa: SIM115  # closed in the finally below
        proc = subprocess.Popen(
            list(argv(n)),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            if ready is not None:
                deadline = time.monotonic() + 30
                while not ready() and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.01)
            delay = rng.uniform(*window)
            stats.delays.append(delay)
            try:
                proc.wait(timeout=delay)
                stats.finished_first += 1
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                stats.killed_mid_run += 1
            log.seek(0)
            stderr = log.read().decode(errors="replace")
            assert "Traceback" not in stderr, stderr
            if proc.returncode not in (0, -signal.SIGKILL):
                raise AssertionError(f"round {n}: exit {proc.returncode}: {stderr}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
        stats.rounds += 1
    return stats


def run_clipdesk(env: dict[str, str], *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    """`clipdesk ARGS...` in a new process with this environment; output captured as text."""
    return subprocess.run(
        clipdesk_argv(*args),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        **kw,  # type: ignore[call-overload]
    )
