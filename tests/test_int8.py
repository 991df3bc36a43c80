"""The opt-in 8-bit CPU mode: off by default, and its vectors stay close to fp32."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from clipdesk._encoder import ClipEncoder


def test_int8_vectors_agree_with_fp32(tiny_clip: Path) -> None:
    pixels = np.random.default_rng(0).standard_normal((6, 3, 32, 32)).astype(np.float32)
    fp32 = ClipEncoder(tiny_clip, "m", device="cpu")
    int8 = ClipEncoder(tiny_clip, "m", device="cpu", int8=True)
    assert not fp32.int8
    cos = (fp32.encode_pixels(pixels) * int8.encode_pixels(pixels)).sum(axis=1)
    assert cos.min() > 0.98


def test_index_int8_from_the_command_line(tiny_clip: Path, photos: Path, cli) -> None:  # type: ignore[no-untyped-def]
    report = json.loads(cli("--model", str(tiny_clip), "index", str(photos), "--int8", "--json").stdout)
    assert report["indexed"] == 8 and not report["failed"]
