"""Loading real CLIP checkpoints: the tiny random model goes through the real path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipdesk._encoder import encode_images
from clipdesk._errors import ModelUnavailable
from clipdesk._models import DEFAULT_MODEL, EncoderOptions, load_encoder, parse


def test_tiny_clip_loads_from_a_folder_and_gives_unit_vectors(tiny_clip: Path) -> None:
    encoder = load_encoder(str(tiny_clip), EncoderOptions(device="cpu"))
    texts = encoder.encode_texts(["a photo of a cat", "a dog on a beach at sunset"])
    images = encode_images(encoder, [Image.new("RGB", (120, 80), "red"), Image.new("L", (30, 90), 128)])
    assert texts.shape == images.shape == (2, encoder.dim) == (2, 16)
    assert texts.dtype == images.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, rtol=1e-5)
    assert encoder.logit_scale() == pytest.approx(np.exp(2.6592), rel=1e-3)


def test_our_preprocessing_and_tower_match_transformers(tiny_clip: Path) -> None:
    import torch
    from transformers import CLIPImageProcessor, CLIPModel

    encoder = load_encoder(str(tiny_clip), EncoderOptions(device="cpu"))
    image = Image.new("RGB", (100, 50), (200, 40, 90))
    reference = CLIPModel.from_pretrained(str(tiny_clip)).eval()
    processor = CLIPImageProcessor.from_pretrained(str(tiny_clip))
    pixels = processor(images=[image], return_tensors="pt")["pixel_values"]
    np.testing.assert_allclose(encoder.preprocess(image), pixels[0].numpy(), atol=1e-5)
    with torch.no_grad():
        out = reference.get_image_features(pixel_values=pixels)
    # transformers 5 returns a model output here; 4.x returned the tensor itself.
    features = out if isinstance(out, torch.Tensor) else out.pooler_output
    expected = torch.nn.functional.normalize(features, dim=-1)[0].numpy()
    np.testing.assert_allclose(encode_images(encoder, [image])[0], expected, atol=1e-5)


def test_unknown_hub_model_offline_is_one_clear_sentence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelUnavailable) as err:
        load_encoder(DEFAULT_MODEL)
    message = str(err.value)
    assert "not downloaded" in message and "--model" in message
    assert "\n" not in message


def test_missing_folder_is_reported() -> None:
    with pytest.raises(ModelUnavailable, match="No model folder"):
        parse("./no/such/model")


def test_folder_without_config_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="no config.json"):
        load_encoder(str(tmp_path))


def test_pickle_weights_are_refused_unless_allowed(tiny_clip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_clip, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ModelUnavailable, match="pickle"):
        load_encoder(str(folder))


def test_known_model_names_map_to_hub_ids() -> None:
    assert parse("ViT-B/32").model_id == DEFAULT_MODEL
    assert parse("openai/clip-vit-large-patch14").folder is None


def test_processor_config_of_transformers_5_is_read_when_preprocessor_config_is_absent(
    tiny_clip: Path, tmp_path: Path
) -> None:
    import json

    folder = tmp_path / "tf5"
    shutil.copytree(tiny_clip, folder)
    settings = json.loads((folder / "preprocessor_config.json").read_text())
    (folder / "preprocessor_config.json").unlink()
    settings.update(image_mean=[0.5, 0.5, 0.5], image_std=[0.25, 0.25, 0.25], crop_size={"height": 24, "width": 24})
    (folder / "processor_config.json").write_text(
        json.dumps({"image_processor": settings, "processor_class": "CLIPProcessor"})
    )
    encoder = load_encoder(str(folder), EncoderOptions(device="cpu"))
    pixels = encoder.preprocess(Image.new("RGB", (40, 30), (128, 128, 128)))
    assert pixels.shape == (3, 24, 24)
    np.testing.assert_allclose(pixels, (128 / 255 - 0.5) / 0.25, atol=1e-5)


def test_the_service_loads_its_model_with_the_same_options_as_the_command_line(
    tiny_clip: Path, tmp_path: Path
) -> None:
    from clipdesk._library import Library, LibraryOptions
    from clipdesk._service import IndexService

    options = LibraryOptions(db_path=tmp_path / "l.db", model=str(tiny_clip), device="cpu", batch_size=3, int8=True)
    with Library(options) as library:
        direct = library.encoder
    service = IndexService(options, start_watching=False)
    service.start()
    try:
        loaded = service.submit(lambda lib: lib.encoder).result(timeout=60)
    finally:
        service.stop()
    for encoder in (direct, loaded):
        assert getattr(encoder, "int8", None) is True
        assert encoder.batch_size == 3
