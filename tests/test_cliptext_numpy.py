"""The numpy text tower: the torch tower's vectors, and a text search that imports no torch."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clipdesk._cliptext import NotPlainClip, NumpyTextTower
from clipdesk._encoder import ClipEncoder
from clipdesk._library import Library, LibraryOptions

# Long texts are cut at 77 tokens; accents and emoji are several byte tokens each.
TEXTS = ["A photo of a DOG!!", "café  naïve   🐶", "", "x " * 100, "一只猫在沙发上", "a birthday cake with candles",
         "Ünïcödé — “quotes” and tabs\tand\nnewlines " * 5]


def with_tokenizer_json(source: Path, into: Path, *, activation: str | None = None, half: str | None = None) -> Path:
    """A copy of the tiny CLIP with the tokenizer.json real checkpoints ship; optionally GELU,
    or its weights saved as float16 or bfloat16."""
    from transformers import AutoTokenizer, CLIPModel

    into.mkdir(parents=True)
    for item in source.iterdir():
        shutil.copy(item, into / item.name)
    AutoTokenizer.from_pretrained(str(source)).save_pretrained(str(into))
    if activation or half:
        config = json.loads((into / "config.json").read_text())
        if activation:
            config["text_config"]["hidden_act"] = activation
        (into / "config.json").write_text(json.dumps(config))
        if half:
            import torch

            model = CLIPModel.from_pretrained(str(into)).to(getattr(torch, half))
            model.save_pretrained(str(into), safe_serialization=True)
    return into


@pytest.fixture(scope="module")
def clip_folder(tiny_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return with_tokenizer_json(tiny_clip, tmp_path_factory.mktemp("m") / "clip")


def encoders(folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, ClipEncoder]:
    out = {}
    for choice in ("", "torch", "transformers"):
        monkeypatch.setenv("CLIPDESK_TEXT_TOWER", choice)
        encoder = ClipEncoder(folder, "m", device="cpu")
        encoder.fast_text()  # chosen now, while the variable says so
        out[choice or "numpy"] = encoder
    monkeypatch.delenv("CLIPDESK_TEXT_TOWER")
    assert isinstance(out["numpy"].fast_text(), NumpyTextTower)
    assert out["transformers"].fast_text() is None
    return out


def assert_same_direction(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    cosines = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    assert cosines.min() >= 0.9999, cosines


@pytest.mark.parametrize("variant", ["quick_gelu", "gelu", "float16", "bfloat16"])
def test_same_vectors_as_torch_and_transformers(
    variant: str, tiny_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = with_tokenizer_json(
        tiny_clip, tmp_path / "clip", activation="gelu" if variant == "gelu" else None,
        half=variant if "float" in variant else None,
    )
    towers = encoders(folder, monkeypatch)
    vectors = {name: encoder.encode_texts(TEXTS) for name, encoder in towers.items()}
    assert vectors["numpy"].dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors["numpy"], axis=-1), 1.0, atol=1e-5)
    assert_same_direction(vectors["numpy"], vectors["torch"])
    assert_same_direction(vectors["numpy"], vectors["transformers"])
    # One at a time (no padding) gives the same vectors as in a batch.
    for i, text in enumerate(TEXTS):
        assert_same_direction(towers["numpy"].encode_texts([text]), vectors["numpy"][i : i + 1])


def test_unusual_checkpoint_falls_back_with_a_logged_reason(
    clip_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Without tokenizer.json (older checkpoints ship only vocab.json), transformers encodes,
    # and the log says why the numpy tower stepped aside.
    folder = tmp_path / "older"
    shutil.copytree(clip_folder, folder)
    (folder / "tokenizer.json").unlink()
    encoder = ClipEncoder(folder, "m", device="cpu")
    with caplog.at_level(logging.INFO, logger="clipdesk"):
        vectors = encoder.encode_texts(["a red car"])
    assert encoder.fast_text() is None
    assert "no tokenizer.json" in caplog.text
    assert vectors.shape == (1, encoder.dim) and np.isfinite(vectors).all()


def test_damaged_weights_are_refused_with_a_reason(clip_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "damaged"
    shutil.copytree(clip_folder, folder)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(NotPlainClip, match="damaged or cut short"):
        NumpyTextTower.load(folder)
    weights.write_bytes(b"")
    with pytest.raises(NotPlainClip, match="cannot be mapped"):
        NumpyTextTower.load(folder)
    weights.write_bytes(data[:8] + b"{not json" + data[17:])
    with pytest.raises(NotPlainClip, match="damaged header"):
        NumpyTextTower.load(folder)


PROBE = """
import sys
from clipdesk._cli import main
code = main(sys.argv[1:])
print("IMPORTED", "torch" in sys.modules, "transformers" in sys.modules, code, file=sys.stderr)
"""


def test_a_cold_search_imports_neither_torch_nor_transformers(
    clip_folder: Path, photos: Path, data_dir: Path, tmp_path: Path
) -> None:
    db = data_dir / "library.db"
    with Library(LibraryOptions(db, model=str(clip_folder), device="cpu")) as library:
        library.index([str(photos)])
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(data_dir), PYTHONWARNINGS="ignore")
    env.pop("CLIPDESK_TEXT_TOWER", None)
    result = subprocess.run(
        [sys.executable, str(probe), "--db", str(db), "search", "a red photo", "-n", "3", "--json"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert "IMPORTED False False 0" in result.stderr, result.stderr
    hits = json.loads(result.stdout)
    assert len(hits) == 3
    # The same ranking as the torch tower gives.
    with Library(LibraryOptions(db, device="cpu", memory_index=False)) as library:
        os.environ["CLIPDESK_TEXT_TOWER"] = "torch"
        try:
            from clipdesk._search import Query

            expected = library.search(Query(texts=("a red photo",), limit=3))
        finally:
            del os.environ["CLIPDESK_TEXT_TOWER"]
    assert [h["path"] for h in hits] == [h.path for h in expected]


def test_without_threadpoolctl_the_tower_still_encodes(clip_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tower = NumpyTextTower.load(clip_folder)
    expected = tower.encode(TEXTS)
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # `import threadpoolctl` now fails
    np.testing.assert_allclose(tower.encode(TEXTS), expected, atol=1e-6)
