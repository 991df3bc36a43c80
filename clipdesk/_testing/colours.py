"""A deterministic encoder in which colour words match solid-colour images.

Selected with `--model clipdesk-test:colours`. It lets the whole pipeline be
tested for ranking ("red" must find the red photos first) without real weights.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import cast

import numpy as np
from PIL import Image

from .._encoder import normalise
from .._errors import ModelUnavailable

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 180, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 40),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
    "orange": (245, 140, 20),
    "purple": (130, 40, 170),
}
_NAMES = list(PALETTE)
_COLOURS = np.asarray([PALETTE[n] for n in _NAMES], dtype=np.float32)
# The last dimension is "not a colour", so texts without colour words still embed.
DIM = len(_NAMES) + 1


class ColourEncoder:
    """Images embed as their closeness to each palette colour; texts as the colours they name."""

    model_id = "clipdesk-test:colours"
    dim = DIM
    image_size = 32
    batch_size = 8

    def preprocess(self, image: Image.Image) -> np.ndarray:
        small = image.convert("RGB").resize((8, 8), Image.Resampling.BOX)
        return cast(np.ndarray, np.asarray(small, dtype=np.float32).reshape(-1, 3).mean(axis=0))

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        means = np.asarray(pixels, dtype=np.float32).reshape(len(pixels), 3)
        dist2 = ((means[:, None, :] - _COLOURS[None, :, :]) ** 2).sum(axis=-1)
        closeness = np.exp(-dist2 / (2 * 60.0**2))
        other = np.full((len(means), 1), 0.05, dtype=np.float32)
        return normalise(np.concatenate([closeness, other], axis=1))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            words = set(re.findall(r"[a-z]+", text.lower()))
            hits = [i for i, name in enumerate(_NAMES) if name in words]
            for i in hits:
                out[row, i] = 1.0
            out[row, -1] = 0.05 if hits else 1.0
        return normalise(out)

    def logit_scale(self) -> float:
        return 100.0


def test_encoder(model_id: str) -> ColourEncoder:
    if model_id == ColourEncoder.model_id:
        return ColourEncoder()
    raise ModelUnavailable(f"Unknown test model '{model_id}'; the only one is {ColourEncoder.model_id}.")


test_encoder.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
