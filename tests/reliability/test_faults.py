"""Faults in the environment: a full disk, a locked or damaged library, broken models,
and two processes at once. Each ends in one clear message or in correct results."""

from __future__ import annotations

import json
import random
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from clipdesk import _cli as cli
from clipdesk._testing.colours import PALETTE

from .helpers import (
    run_clipdesk,
    COLOUR_MODEL,
    assert_clean_error,
    check_library_matches,
    clipdesk_argv,
    clipdesk_env,
    random_colour,
    read_library,
)


def _photos(root: Path, count: int, rng: random.Random, prefix: str = "p") -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        path = root / f"{prefix}{i:05d}.jpg"
        Image.new("RGB", (48, 32), random_colour(rng)).save(path)
        out.append(path)
    return out


_run = run_clipdesk


# -- a full disk ------------------------------------------------------------------------


def _limit_file_size(limit: int) -> None:
    # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG instead of
    # killing the process, as it does when the disk fills up.
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_disk_full_gives_a_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(4)
    root = tmp_path / "photos"
    _photos(root, 150, rng, "a")
    env = clipdesk_env(tmp_path / "data")
    db = tmp_path / "data" / "library.db"
    assert _run(env, "index", str(root), "--model", COLOUR_MODEL).returncode == 0
    before = dict(read_library(db).rows)
    _photos(root, 1500, rng, "b")

    result = _run(
        env,
        "index",
        str(root),
        "--batch-size",
        "4",
        preexec_fn=lambda: _limit_file_size(db.stat().st_size + 96 * 1024),
    )
    assert result.returncode != -25, "killed by SIGXFSZ instead of a failed write"
    assert_clean_error(result, "library", "full")

    # The library still opens, everything committed before is there, and it is consistent.
    status = _run(env, "status", "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["integrity"] == "ok" and data["images"] >= len(before)
    after = dict(read_library(db).rows)
    assert all(after.get(path) == digest for path, digest in before.items())
    # Space again: a normal run finishes the job.
    assert _run(env, "index").returncode == 0
    check_library_matches(db, root)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 384 KiB tmpfs: a real 'no space left on device' (needs the right to mount)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=384k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here; the RLIMIT_FSIZE test covers a full disk")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_no_space_left_on_device(tmp_path: Path, tiny_disk: Path) -> None:
    root = tmp_path / "photos"
    _photos(root, 1500, random.Random(5))
    env = clipdesk_env(tiny_disk / "data")
    result = _run(env, "index", str(root), "--model", COLOUR_MODEL, "--batch-size", "4")
    assert_clean_error(result, "full")
    status = _run(env, "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["integrity"] == "ok"
    saved = json.loads(status.stdout)["images"]
    assert saved > 0
    # Move the library somewhere roomy (as a user would): nothing is lost, the rest follows.
    roomy = tmp_path / "roomy"
    shutil.copytree(tiny_disk / "data", roomy)
    env = clipdesk_env(roomy)
    assert _run(env, "index").returncode == 0
    check_library_matches(roomy / "library.db", root)


# -- a locked library ---------------------------------------------------------------------

HOLDER = """
import apsw, sys, time
conn = apsw.Connection(sys.argv[1])
if sys.argv[3] == "exclusive":
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT OR REPLACE INTO meta VALUES ('lock-holder', 'x')")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
conn.close()
"""


class LockHolder:
    """Another process holding the library's write lock for `seconds`."""

    def __init__(self, db: Path, seconds: float, mode: str = "write") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(db), str(seconds), mode],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "locked"

    def __enter__(self) -> LockHolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def small_library(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    root = tmp_path / "photos"
    _photos(root, 20, random.Random(6))
    env = clipdesk_env(tmp_path / "data")
    assert _run(env, "index", str(root), "--model", COLOUR_MODEL).returncode == 0
    return root, tmp_path / "data" / "library.db", env


def test_locked_library_waits_for_the_other_writer(
    small_library: tuple[Path, Path, dict[str, str]],
) -> None:
    root, db, env = small_library
    _photos(root, 10, random.Random(7), "new")
    with LockHolder(db, 1.5):
        start = time.monotonic()
        result = _run(env, "index")
        waited = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert waited > 1.0  # it waited for the lock rather than failing
    check_library_matches(db, root)


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_locked_too_long_gives_a_clear_message(
    small_library: tuple[Path, Path, dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Writers give up after the busy timeout with one line; readers are never blocked."""
    import clipdesk._store

    monkeypatch.setattr(clipdesk._store, "BUSY_TIMEOUT_MS", 300)
    root, db, _ = small_library
    _photos(root, 5, random.Random(8), "new")
    with LockHolder(db, 60):
        for args in (["index"], ["forget", str(root)], ["index", str(root)]):
            code, out, err = _main(capsys, "--db", str(db), *args)
            assert code == 1 and err.count("\n") == 1, err
            assert (
                err.startswith("clipdesk: ") and "busy" in err and "database is locked" not in err
            )
        # Readers see the last committed state while the writer holds the lock.
        code, out, _ = _main(capsys, "--db", str(db), "status", "--json")
        assert code == 0 and json.loads(out)["images"] == 20
        code, out, _ = _main(capsys, "--db", str(db), "search", "red", "--json")
        assert code == 0 and len(json.loads(out)) > 0
    with LockHolder(db, 60, "exclusive"):
        for args in (["status"], ["search", "red"], ["index"]):
            code, out, err = _main(capsys, "--db", str(db), *args)
            assert code == 1 and err.count("\n") == 1 and "busy" in err, err
    assert _main(capsys, "--db", str(db), "index")[0] == 0
    check_library_matches(db, root)


# -- a damaged or foreign library --------------------------------------------------------


def _damage(kind: str, db: Path) -> None:
    good = db.read_bytes()
    if kind == "random bytes":
        db.write_bytes(random.Random(1).randbytes(len(good)))
    elif kind == "truncated":
        db.write_bytes(good[: len(good) // 2])
    elif kind == "damaged pages":
        data = bytearray(good)
        for offset in range(4096 * 3, len(good) - 4096, 4096 * 2):
            data[offset : offset + 4096] = random.Random(offset).randbytes(4096)
        db.write_bytes(bytes(data))
    else:  # another program's SQLite database
        import apsw

        db.unlink()
        conn = apsw.Connection(str(db))
        version = {"foreign": 0, "foreign, user_version 1": 1, "foreign, user_version 9": 9}[kind]
        conn.execute(
            f"CREATE TABLE notes(x); INSERT INTO notes VALUES (1); PRAGMA user_version = {version}"
        )
        if version == 1:
            conn.execute("CREATE TABLE meta(key, value); INSERT INTO meta VALUES ('app', 'other')")
        conn.close()


@pytest.mark.parametrize(
    "kind",
    [
        "random bytes",
        "truncated",
        "damaged pages",
        "foreign",
        "foreign, user_version 1",
        "foreign, user_version 9",
    ],
)
def test_damaged_or_foreign_library(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "photos"
    _photos(root, 400, random.Random(9))
    env = clipdesk_env(tmp_path / "data")
    db = tmp_path / "data" / "library.db"
    assert _run(env, "index", str(root), "--model", COLOUR_MODEL).returncode == 0
    assert _run(env, "status").returncode == 0  # checkpointed: everything is in the main file
    _damage(kind, db)
    damaged = db.read_bytes()
    for args in (
        ["status"],
        ["search", "red"],
        ["similar", str(root / "p00001.jpg")],
        ["index"],
        ["forget", str(root)],
        ["classify", str(root / "p00001.jpg"), "--labels", "red,blue"],
    ):
        result = _run(env, *args)
        if args == ["status"] and result.returncode == 1 and not result.stderr:
            assert "Integrity: ok" not in result.stdout  # status reports the damage itself
            continue
        line = assert_clean_error(result)
        assert "library" in line.lower() or "not a clipdesk" in line.lower(), line
        assert "internal error" not in line.lower(), line  # the file is at fault, not clipdesk

    rebuilt = _run(env, "rebuild")
    if kind == "random bytes":
        # No longer a database at all: it might be anything, so clipdesk moves nothing aside.
        assert "leaves it alone" in assert_clean_error(rebuilt)
        assert db.read_bytes() == damaged
        return
    assert rebuilt.returncode == 0, rebuilt.stderr
    backups = [p for p in db.parent.iterdir() if p.name.startswith("library.db.backup-")]
    assert len(backups) == 1 and backups[0].read_bytes() == damaged
    assert oct(backups[0].stat().st_mode & 0o777) == "0o600"
    assert _run(env, "index", str(root), "--model", COLOUR_MODEL).returncode == 0
    check_library_matches(db, root)


# -- broken models ---------------------------------------------------------------------------


def _broken_model(tiny_clip: Path, tmp_path: Path, kind: str) -> Path:
    import safetensors.torch
    import torch

    folder = tmp_path / kind.replace(" ", "-")
    shutil.copytree(tiny_clip, folder)
    weights = folder / "model.safetensors"
    if kind == "no config":
        (folder / "config.json").unlink()
    elif kind == "bad config":
        (folder / "config.json").write_text("{not json")
    elif kind == "not clip":
        (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    elif kind == "no weights":
        weights.unlink()
    elif kind == "corrupt weights":
        weights.write_bytes(random.Random(1).randbytes(5000))
    elif kind == "truncated weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif kind == "pickle weights":
        torch.save(safetensors.torch.load_file(str(weights)), folder / "pytorch_model.bin")
        weights.unlink()
    elif kind == "corrupt weights beside pickle":
        torch.save(safetensors.torch.load_file(str(weights)), folder / "pytorch_model.bin")
        weights.write_bytes(b"\x00" * 100)
    elif kind == "no tokenizer":
        for name in ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json"):
            (folder / name).unlink(missing_ok=True)
    return folder


MODEL_FAULTS = {
    "missing folder": "no model folder",
    "no config": "no config.json",
    "bad config": "unreadable",
    "not clip": "not clip",
    "no weights": "no weights",
    "corrupt weights": "cannot load the model",
    "truncated weights": "cannot load the model",
    "pickle weights": "--allow-pickle",
    "corrupt weights beside pickle": "cannot load the model",
    "no tokenizer": "no tokenizer",
    "hub model not downloaded": "not downloaded yet",
}


@pytest.fixture
def no_pickle_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything unpickles weights."""
    import torch

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load was called without --allow-pickle")

    monkeypatch.setattr(torch, "load", refuse)


@pytest.mark.parametrize("kind", sorted(MODEL_FAULTS))
def test_missing_or_broken_model_gives_a_clear_message(
    kind: str,
    tiny_clip: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_pickle_loading: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # an empty hub cache
    if kind == "missing folder":
        model = str(tmp_path / "no-such-model")
    elif kind == "hub model not downloaded":
        model = "someone/some-clip-model"
    else:
        model = str(_broken_model(tiny_clip, tmp_path, kind))
    root = tmp_path / "photos"
    _photos(root, 3, random.Random(10))
    db = str(tmp_path / "data" / "library.db")
    image = str(root / "p00000.jpg")
    commands = [["index", str(root)], ["classify", image, "--labels", "red,blue"]]
    if kind == "no tokenizer":  # images encode fine; words cannot
        commands = [["search", "red"], ["classify", image, "--labels", "red,blue"]]
        assert _main(capsys, "--db", db, "--model", model, "index", str(root))[0] == 0
    for args in commands:
        code, out, err = _main(capsys, "--db", db, "--model", model, *args)
        assert code == 1 and err.count("\n") == 1 and err.startswith("clipdesk: "), err
        assert MODEL_FAULTS[kind].lower() in err.lower(), err
    if kind != "no tokenizer":
        # The failed model left nothing behind: a good one needs no --reindex.
        code, _, err = _main(capsys, "--db", db, "--model", str(tiny_clip), "index", str(root))
        assert code == 0, err


def test_pickle_weights_load_only_when_allowed(
    tiny_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(_broken_model(tiny_clip, tmp_path, "pickle weights"))
    root = tmp_path / "photos"
    _photos(root, 3, random.Random(11))
    db = str(tmp_path / "data" / "library.db")
    code, _, err = _main(capsys, "--db", db, "--model", model, "--allow-pickle", "index", str(root))
    assert code == 0, err
    code, out, _ = _main(capsys, "--db", db, "--allow-pickle", "search", "red", "--json")
    assert code == 0 and len(json.loads(out)) == 3


# -- two processes at once ----------------------------------------------------------------------


WRITERS = {
    # A one-off index run, and the folder watcher (which keeps running: stopped when done).
    "index": ["index", "{root}", "--batch-size", "1", "--workers", "1"],
    "watch": ["watch", "{root}", "--batch-size", "1", "--workers", "1", "--debounce", "0.1"],
}


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_indexing_in_one_process_while_others_search_and_read_status(
    tmp_path: Path, command: str
) -> None:
    """Readers in other processes get correct answers, and no errors, throughout indexing."""
    from clipdesk._library import Library, LibraryOptions
    from clipdesk._search import Query

    root = tmp_path / "photos"
    root.mkdir()
    names = list(PALETTE)
    colour_of: dict[str, str] = {}
    for i in range(3000):
        name = names[i % len(names)]
        # Solid palette colours, slightly varied; many files share content, as copies do.
        rgb = tuple(min(255, c + (i // len(names)) % 3) for c in PALETTE[name])
        path = root / f"{i % 7}" / f"{name}-{i:05d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (16, 16), rgb).save(path)  # type: ignore[arg-type]
        colour_of[str(path)] = name
    env = clipdesk_env(tmp_path / "data")
    db = tmp_path / "data" / "library.db"
    assert _run(env, "index", str(root / "0"), "--model", COLOUR_MODEL).returncode == 0

    log = tmp_path / "writer.log"
    with open(log, "w") as handle:
        writer = subprocess.Popen(
            clipdesk_argv(*(a.replace("{root}", str(root)) for a in WRITERS[command])),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=handle,
            stdin=subprocess.DEVNULL,
        )
    counts: list[int] = []
    errors: list[BaseException] = []
    finished = threading.Event()

    def read_in_this_process() -> None:
        # A reader with its own connection, like the GUI's search lane.
        try:
            while not finished.is_set():
                with Library(LibraryOptions(db_path=db), create=False) as library:
                    hits = library.search(Query(texts=("red",), limit=4096, min_score=0.9))
                    assert hits and all(colour_of[h.path] == "red" for h in hits)
                    counts.append(library.store.count_images())
                    assert library.store.integrity() == "ok"
                if counts[-1] == len(colour_of) and (
                    command == "watch" or writer.poll() is not None
                ):
                    finished.set()
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)
            finished.set()

    reader = threading.Thread(target=read_in_this_process)
    reader.start()
    cli_runs = 0
    deadline = time.monotonic() + 120
    try:
        while not finished.is_set() and time.monotonic() < deadline:
            if writer.poll() is not None and command == "index":
                finished.wait(5)
                break
            cli_runs += 1
            status = _run(env, "status", "--json")
            assert status.returncode == 0 and not status.stderr, status.stderr
            assert json.loads(status.stdout)["integrity"] == "ok"
            found = _run(env, "search", "blue", "-n", "50", "--json")
            assert found.returncode == 0 and not found.stderr, found.stderr
            assert all(colour_of[h["path"]] == "blue" for h in json.loads(found.stdout))
    finally:
        finished.set()
        reader.join()
        if command == "watch" and writer.poll() is None:
            writer.send_signal(signal.SIGTERM)
        try:
            writer.wait(timeout=60)
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
    if errors:
        raise errors[0]
    err = log.read_text()
    assert writer.returncode == 0 and "Traceback" not in err, err
    assert counts == sorted(counts), "a reader saw the library shrink"
    print(f"{command}: {len(counts)} in-process and {cli_runs} CLI reader rounds while indexing")
    assert len(counts) >= 3 and cli_runs >= 1
    final = read_library(db)
    assert sorted(p for p, _ in final.rows) == sorted(colour_of)
