"""Shared fixtures: photo folders made on the fly, a tiny real CLIP, a colour encoder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from clipdesk._testing.colours import PALETTE, ColourEncoder

# Tests never touch the network or the user's real data folders.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

COLOUR_MODEL = ColourEncoder.model_id


def make_photo(path: Path, colour: str | tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> Path:
    """A solid-colour image; the format follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = PALETTE[colour] if isinstance(colour, str) else colour
    Image.new("RGB", size, rgb).save(path)
    return path


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A folder of solid-colour photos: 3 red, 2 green, 2 blue, 1 yellow, in two levels."""
    root = tmp_path / "photos"
    for name, colour in [
        ("red1.jpg", "red"),
        ("red2.png", "red"),
        ("trip/red3.jpg", "red"),
        ("green1.jpg", "green"),
        ("trip/green2.webp", "green"),
        ("blue1.jpg", "blue"),
        ("blue2.bmp", "blue"),
        ("yellow1.gif", "yellow"),
    ]:
        make_photo(root / name, colour)
    return root


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private data folder, so nothing reads or writes the user's real library."""
    d = tmp_path / "data"
    monkeypatch.setenv("CLIPDESK_DATA_DIR", str(d))
    monkeypatch.setenv("CLIPDESK_CACHE_DIR", str(tmp_path / "cache"))
    return d


@pytest.fixture
def db_path(data_dir: Path) -> Path:
    return data_dir / "library.db"


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random CLIP saved with save_pretrained (built once per test run)."""
    from clipdesk._testing.tiny_clip import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(data_dir: Path) -> Iterator[CliRunner]:
    """Run `clipdesk ARGS...` as a user would, in a separate process, with a temp data dir."""

    def run(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, CLIPDESK_DATA_DIR=str(data_dir), PYTHONWARNINGS="ignore")
        result = subprocess.run(
            [sys.executable, "-m", "clipdesk", *args],
            capture_output=True,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"clipdesk {' '.join(args)} exited {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    yield run


def run_json(cli: CliRunner, *args: str) -> object:
    return json.loads(cli(*args, "--json").stdout)
