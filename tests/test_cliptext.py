"""The plain-torch text tower gives the same vectors as transformers' CLIP text model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from clipdesk._encoder import ClipEncoder

# The machine's shared folder (the real CLIP tokenizer), beside the repository unless
# CLIPDESK_SHARED names it, as for the benchmarks.
SHARED = Path(os.environ.get("CLIPDESK_SHARED") or Path(__file__).resolve().parents[2] / "shared")

TEXTS = ["A photo of a DOG!!", "café  naïve   🐶", "", "x " * 100, "red", "a birthday cake with candles"]


@pytest.fixture(scope="module")
def clip_with_tokenizer_json(tiny_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CLIP, plus the tokenizer.json that real checkpoints ship."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny-clip-fast")
    for item in tiny_clip.iterdir():
        shutil.copy(item, folder / item.name)
    AutoTokenizer.from_pretrained(str(tiny_clip)).save_pretrained(str(folder))
    assert (folder / "tokenizer.json").is_file()
    return folder


def both(folder: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ClipEncoder, ClipEncoder]:
    fast = ClipEncoder(folder, "m", device="cpu")
    monkeypatch.setenv("CLIPDESK_TEXT_TOWER", "transformers")
    slow = ClipEncoder(folder, "m", device="cpu")
    assert slow.fast_text() is None
    monkeypatch.delenv("CLIPDESK_TEXT_TOWER")
    assert fast.fast_text() is not None
    return fast, slow


def test_same_vectors_as_transformers(clip_with_tokenizer_json: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = both(clip_with_tokenizer_json, monkeypatch)
    a, b = fast.encode_texts(TEXTS), slow.encode_texts(TEXTS)
    np.testing.assert_allclose(a, b, atol=1e-5)
    # One at a time (no padding) too.
    for i, text in enumerate(TEXTS):
        np.testing.assert_allclose(fast.encode_texts([text])[0], b[i], atol=1e-5)


def test_real_vocabulary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = SHARED / "clip-tokenizer"
    if not (shared / "tokenizer.json").is_file():
        pytest.skip(f"needs {shared} (the real CLIP vocabulary; set CLIPDESK_SHARED)")
    import json

    from clipdesk._testing.tiny_clip import build_tiny_clip

    # The tiny model's sizes with the real 49,408-token vocabulary and tokenizer.
    folder = build_tiny_clip(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["vocab_size"] = 49408
    config["text_config"]["eos_token_id"] = 2
    from transformers import CLIPConfig, CLIPModel

    model = CLIPModel(CLIPConfig.from_dict(config))
    model.save_pretrained(str(folder), safe_serialization=True)
    for name in ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (shared / name).exists():
            shutil.copy(shared / name, folder / name)
    fast, slow = both(folder, monkeypatch)
    np.testing.assert_allclose(fast.encode_texts(TEXTS), slow.encode_texts(TEXTS), atol=1e-5)


def test_without_tokenizer_json_transformers_is_used(tiny_clip: Path, tmp_path: Path) -> None:
    for item in tiny_clip.iterdir():
        if item.name != "tokenizer.json":
            shutil.copy(item, tmp_path / item.name)
    encoder = ClipEncoder(tmp_path, "m", device="cpu")
    assert encoder.fast_text() is None
    assert encoder.encode_texts(["red"]).shape == (1, encoder.dim)
