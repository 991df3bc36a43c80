"""Turning images and texts into CLIP vectors.

`Encoder` is the interface the indexer and search use; `ClipEncoder` runs a
transformers CLIP checkpoint. torch and transformers are imported only when a
tower is first needed, so commands that need no model start instantly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
from PIL import Image

from ._errors import ModelUnavailable

_log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import torch

    from ._cliptext import ClipTextTower, NumpyTextTower

# OpenAI CLIP's preprocessing, used when a checkpoint has no processor config.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# Resized images larger than this many crops (extreme aspect ratios only) are
# resized through a crop box instead, so their memory use stays bounded.
_MAX_RESIZE_AREA = 16


class Encoder(Protocol):
    """What the indexer and search need from a model; all vectors are L2-normalised float32."""

    model_id: str
    dim: int
    image_size: int

    @property
    def batch_size(self) -> int:
        """Images per model call. Read-only here: ClipEncoder derives it from the device."""
        ...

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """An upright RGB image to the model's input array. Thread-safe; runs on decode workers."""
        ...

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """A stack of preprocessed images (N, ...) to vectors (N, dim)."""
        ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts to vectors (N, dim)."""
        ...

    def logit_scale(self) -> float:
        """CLIP's learned temperature: similarity × scale, then softmax, gives probabilities."""
        ...


def encode_images(encoder: Encoder, images: Sequence[Image.Image]) -> np.ndarray:
    """Convenience: decoded images straight to vectors."""
    if not images:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    return encoder.encode_pixels(np.stack([encoder.preprocess(im) for im in images]))


class NonFiniteVector(ValueError):
    """The model gave a vector with NaN or infinite values (e.g. fp16 overflow on a GPU)."""


def encode_checked(encoder: Encoder, pixels: np.ndarray) -> np.ndarray:
    """encode_pixels, refusing a batch with any unusable vector so the caller can isolate the image."""
    vectors = encoder.encode_pixels(pixels)
    if not np.isfinite(vectors).all():
        raise NonFiniteVector("its vector is not a number (NaN or infinity); it was not stored")
    return vectors


def model_fingerprint(encoder: Encoder) -> str | None:
    """What identifies an encoder's weights beyond its id (None for encoders without weights files)."""
    value = getattr(encoder, "fingerprint", None)
    return value if isinstance(value, str) else None


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return cast(np.ndarray, vectors / np.maximum(norms, 1e-12))


@dataclass(frozen=True)
class Preprocessing:
    """Resize the short side, centre-crop, scale to the model's mean and std."""

    shortest_edge: int
    crop: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_folder(cls, folder: Path, image_size: int) -> Preprocessing:
        """The folder's image processor settings, checked; CLIP's defaults where it has none."""
        name, config = _read_processor_config(folder)
        where = f"The model's {name} in {folder}"
        size = config.get("size", {})
        if isinstance(size, dict):
            edge = _positive_int(size.get("shortest_edge", size.get("height", image_size)), where, "size")
        else:
            edge = _positive_int(size, where, "size")
        crop = config.get("crop_size", {"height": image_size, "width": image_size})
        if isinstance(crop, dict):
            crop_hw = (
                _positive_int(crop.get("height"), where, "crop_size"),
                _positive_int(crop.get("width"), where, "crop_size"),
            )
        else:
            side = _positive_int(crop, where, "crop_size")
            crop_hw = (side, side)
        mean = _three_numbers(config.get("image_mean", CLIP_MEAN), where, "image_mean")
        std = _three_numbers(config.get("image_std", CLIP_STD), where, "image_std")
        if min(std) <= 0:
            raise ModelUnavailable(f"{where} is invalid: image_std must be positive.")
        return cls(shortest_edge=edge, crop=crop_hw, mean=mean, std=std)

    def __call__(self, image: Image.Image) -> np.ndarray:
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        scale = self.shortest_edge / min(width, height)
        new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        crop_h, crop_w = self.crop
        box = None
        if new_size[0] * new_size[1] > _MAX_RESIZE_AREA * crop_h * crop_w:
            # A very long, thin image (1×60000) would be scaled up to gigabytes before
            # the crop: resize only the part of it the centre crop keeps.
            box_w, box_h = min(width, crop_w / scale), min(height, crop_h / scale)
            left, top = (width - box_w) / 2, (height - box_h) / 2
            box = (left, top, left + box_w, top + box_h)
            new_size = (min(crop_w, new_size[0]), min(crop_h, new_size[1]))
        # reducing_gap lets Pillow shrink big images in cheap integer steps first.
        image = image.resize(new_size, Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)
        left = max(0, (new_size[0] - crop_w) // 2)
        top = max(0, (new_size[1] - crop_h) // 2)
        image = image.crop((left, top, left + crop_w, top + crop_h))
        arr = np.asarray(image, dtype=np.float32)
        scale_v = 1.0 / (255.0 * np.asarray(self.std, dtype=np.float32))
        offset = np.asarray(self.mean, dtype=np.float32) / np.asarray(self.std, dtype=np.float32)
        return np.ascontiguousarray((arr * scale_v - offset).transpose(2, 0, 1))


def pick_device(requested: str = "auto") -> str:
    """'auto' means CUDA, then Apple's MPS, then the CPU."""
    import torch

    if requested != "auto":
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise ModelUnavailable("--device cuda was asked for, but no CUDA GPU is available.")
        if requested == "mps" and not torch.backends.mps.is_available():
            raise ModelUnavailable("--device mps was asked for, but Apple MPS is not available.")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class ClipEncoder:
    """A CLIP checkpoint in a local folder (as saved by save_pretrained), towers loaded on demand."""

    def __init__(
        self,
        folder: Path,
        model_id: str,
        *,
        device: str = "auto",
        batch_size: int | None = None,
        allow_pickle: bool = False,
        int8: bool = False,
    ) -> None:
        self.folder = folder
        # Opt-in: 8-bit weights for the image tower's linear layers on the CPU (several
        # times faster where the CPU has VNNI; vectors differ slightly from fp32).
        self.int8 = int8
        self.model_id = model_id
        self._device_request = device
        self._allow_pickle = allow_pickle
        config = _read_config(folder)
        where = f"The model's config.json in {folder}"
        self.dim = _positive_int(config.get("projection_dim", 512), where, "projection_dim")
        self.image_size = _positive_int(config["vision_config"].get("image_size", 224), where, "image_size")
        init_scale = config.get("logit_scale_init_value", math.log(100.0))
        if isinstance(init_scale, bool) or not isinstance(init_scale, (int, float)) or not math.isfinite(init_scale):
            raise ModelUnavailable(f"{where} is invalid: logit_scale_init_value must be a number.")
        self._init_logit_scale = float(init_scale)
        self.preprocess = Preprocessing.from_folder(folder, self.image_size)
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._vision: Any = None
        self._text: Any = None
        self._tokenizer: Any = None
        self._fast_text: NumpyTextTower | ClipTextTower | None = None
        self._fast_text_tried = False
        self._device: str | None = None
        self._logit_scale: float | None = None
        # Names the weights themselves, so a library notices when they are replaced.
        self.fingerprint = _check_weights(folder, allow_pickle)

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = pick_device(self._device_request)
        return self._device

    @property
    def batch_size(self) -> int:
        if self._batch_size:
            return self._batch_size
        return 32 if self.device == "cpu" else 128

    def _dtype(self) -> torch.dtype:
        import torch

        return torch.float16 if self.device in ("cuda", "mps") or self.device.startswith("cuda:") else torch.float32

    def _load(self, tower: str) -> Any:
        """Load one tower ('text' or 'vision') of the checkpoint, without the other's weights."""
        import transformers

        _quiet_transformers()
        cls = getattr(
            transformers,
            "CLIPTextModelWithProjection" if tower == "text" else "CLIPVisionModelWithProjection",
        )
        try:
            full = transformers.CLIPConfig.from_pretrained(str(self.folder))
            config = cast(
                "transformers.PretrainedConfig", full.text_config if tower == "text" else full.vision_config
            )
            # Older checkpoints keep projection_dim only at the top level.
            config.projection_dim = full.projection_dim
            model = cls.from_pretrained(
                str(self.folder),
                config=config,
                use_safetensors=not self._allow_pickle,
                dtype=self._dtype(),
            )
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
            raise ModelUnavailable(
                f"Cannot load the model in {self.folder}: {_first_line(exc)}"
            ) from None
        return model.to(self.device).eval()

    def vision(self) -> Any:
        with self._lock:
            if self._vision is None:
                model = self._load("vision")
                if self.int8 and self.device == "cpu":
                    model = _quantize_int8(model)
                self._vision = model
            return self._vision

    def text(self) -> tuple[Any, Any]:
        with self._lock:
            if self._text is None:
                from transformers import AutoTokenizer

                if not any((self.folder / f).is_file() for f in _TOKENIZER_FILES):
                    # transformers would quietly build an empty vocabulary and every
                    # search would match nothing in particular.
                    raise ModelUnavailable(
                        f"The model folder {self.folder} has no tokenizer (tokenizer.json or "
                        "vocab.json); save the model's tokenizer there too."
                    )
                try:
                    self._tokenizer = AutoTokenizer.from_pretrained(str(self.folder))
                except (OSError, ValueError) as exc:
                    raise ModelUnavailable(
                        f"Cannot load the tokenizer in {self.folder}: {_first_line(exc)}"
                    ) from None
                self._text = self._load("text")
            return self._text, self._tokenizer

    def fast_text(self) -> NumpyTextTower | ClipTextTower | None:
        """The text tower without transformers, or None for unusual checkpoints: in numpy on
        the CPU (a search then imports no torch; a query is too small to gain from a GPU),
        else in plain torch. CLIPDESK_TEXT_TOWER=torch or =transformers picks one (tests)."""
        with self._lock:
            if not self._fast_text_tried:
                self._fast_text_tried = True
                choice = os.environ.get("CLIPDESK_TEXT_TOWER", "")
                if choice != "transformers":
                    from ._cliptext import ClipTextTower, NotPlainClip, NumpyTextTower

                    if choice != "torch":
                        try:
                            self._fast_text = NumpyTextTower.load(self.folder)
                        except NotPlainClip as exc:
                            _log.info("text tower in torch for %s: %s", self.folder, exc)
                    if self._fast_text is None:
                        self._fast_text = ClipTextTower.load(self.folder, self.device, self._dtype())
            return self._fast_text

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        model = self.vision()
        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))
            if self.device.startswith("cuda"):
                # Page-locked memory lets the copy to the GPU run at full bus speed.
                batch = batch.pin_memory().to(self.device, dtype=self._dtype(), non_blocking=True)
            else:
                batch = batch.to(self.device, dtype=self._dtype())
            out = model(pixel_values=batch).image_embeds
            return normalise(out.float().cpu().numpy())

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        from ._cliptext import NumpyTextTower

        fast = self.fast_text()
        if fast is not None:
            vectors = fast.encode(texts)
        else:
            import torch

            model, tokenizer = self.text()
            with torch.inference_mode():
                tokens = tokenizer(
                    list(texts), padding=True, truncation=True, max_length=77, return_tensors="pt"
                )
                tokens = {k: v.to(self.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
                vectors = normalise(model(**tokens).text_embeds.float().cpu().numpy())
        if not np.isfinite(vectors).all():
            # Nothing could match it; fp16 overflow on a GPU is the likely cause.
            raise ModelUnavailable(
                f"The model in {self.folder} gave a vector that is not a number for the text "
                f"'{texts[int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0])]}'"
                # The numpy tower already runs in float32 on the CPU.
                + ("; try --device cpu." if not isinstance(fast, NumpyTextTower) and self.device != "cpu" else ".")
            )
        return vectors

    def logit_scale(self) -> float:
        if self._logit_scale is None:
            log_scale = _read_logit_scale(self.folder)
            self._logit_scale = clamp_logit_scale(
                self._init_logit_scale if log_scale is None else log_scale, self.folder
            )
        return self._logit_scale


_TOKENIZER_FILES = ("tokenizer.json", "vocab.json")

try:  # what safetensors raises for a damaged file (it is not an OSError)
    from safetensors import SafetensorError as SafetensorError
except ImportError:  # pragma: no cover - older safetensors
    SafetensorError = OSError  # type: ignore[misc,assignment]


def _quantize_int8(model: Any) -> Any:
    """Dynamic 8-bit quantisation of the linear layers (weights int8, activations per batch)."""
    import warnings

    import torch

    try:
        with warnings.catch_warnings():
            # torch marks its quantised tensors deprecated; they still work, and this is opt-in.
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)  # type: ignore[no-untyped-call]
    except (AttributeError, RuntimeError) as exc:
        raise ModelUnavailable(f"--int8 is not available with this build of torch: {_first_line(exc)}") from None


def _quiet_transformers() -> None:
    # transformers prints a per-weight report and progress bars on every load;
    # ours are expected partial loads (one tower of a two-tower checkpoint).
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]  # untyped in transformers
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelUnavailable(f"{folder} is not a model folder: it has no config.json.") from None
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"The model's config.json in {folder} is unreadable: {exc}") from None
    if not isinstance(config, dict):
        raise ModelUnavailable(f"The model's config.json in {folder} is invalid: it is not a JSON object.")
    if config.get("model_type") != "clip":
        raise ModelUnavailable(
            f"The model in {folder} is a '{config.get('model_type')}' model, not CLIP."
        )
    where = f"The model's config.json in {folder}"
    for tower in ("text_config", "vision_config"):
        section = config.setdefault(tower, {})
        if not isinstance(section, dict):
            raise ModelUnavailable(f"{where} is invalid: {tower} is not a JSON object.")
        # transformers and our text tower trust these; a string or a negative
        # number would fail deep inside them with a traceback.
        for key in _SIZE_KEYS:
            if key in section:
                _positive_int(section[key], where, f"{tower}.{key}")
    return dict(config)


_SIZE_KEYS = (
    "hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers",
    "image_size", "patch_size", "vocab_size", "max_position_embeddings", "projection_dim",
    "num_channels",
)

# CLIP clamps its learned temperature to 100 (log 4.6052) in training; so do we.
MAX_LOGIT_SCALE = 100.0


def clamp_logit_scale(log_scale: float, folder: Path) -> float:
    """CLIP's temperature from its logarithm: finite, and at most CLIP's own cap of 100."""
    if not math.isfinite(log_scale):
        raise ModelUnavailable(
            f"The model in {folder} is damaged: its logit_scale is {log_scale}, not a number."
        )
    return math.exp(min(log_scale, math.log(MAX_LOGIT_SCALE)))


def _positive_int(value: Any, where: str, key: str) -> int:
    """A size from a config file, which must be a whole number above zero."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value != int(value)
        or value < 1
    ):
        raise ModelUnavailable(f"{where} is invalid: {key} is {value!r}, not a positive whole number.")
    return int(value)


def _three_numbers(value: Any, where: str, key: str) -> tuple[float, float, float]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 3
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ):
        raise ModelUnavailable(f"{where} is invalid: {key} must be three numbers, one per colour.")
    return (float(value[0]), float(value[1]), float(value[2]))


def _read_processor_config(folder: Path) -> tuple[str, dict[str, Any]]:
    """preprocessor_config.json, or the image part of processor_config.json (transformers 5)."""
    for name, section in (("preprocessor_config.json", None), ("processor_config.json", "image_processor")):
        path = folder / name
        if not path.is_file():
            continue
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelUnavailable(f"The model's {name} in {folder} is unreadable: {_first_line(exc)}") from None
        if section is not None and isinstance(config, dict):
            config = config.get(section, {})
        if not isinstance(config, dict):
            raise ModelUnavailable(f"The model's {name} in {folder} is invalid: it is not a JSON object.")
        return name, config
    return "preprocessor_config.json", {}


def _check_weights(folder: Path, allow_pickle: bool) -> str:
    """Refuse missing, pickled or damaged weights; return a fingerprint of the weights."""
    files = sorted(folder.glob("*.safetensors"))
    if files:
        digest = hashlib.sha256()
        for file in files:
            digest.update(file.name.encode() + b"\0" + _safetensors_fingerprint(file))
        return digest.hexdigest()[:32]
    if any(folder.glob("*.bin")):
        if allow_pickle:
            return "pickle:" + ",".join(f"{f.name}:{f.stat().st_size}" for f in sorted(folder.glob("*.bin")))
        raise ModelUnavailable(
            f"The model in {folder} has only pickle (.bin) weights, which can run code when "
            "loaded. Convert it to safetensors, or pass --allow-pickle if you trust it."
        )
    raise ModelUnavailable(f"The model folder {folder} has no weights (*.safetensors).")


# How much of each end of a weights file the fingerprint reads: enough to see
# replaced weights (the header and the first and last tensors), cheap for 1 GB.
_FINGERPRINT_BYTES = 1 << 20
_MAX_HEADER = 100 << 20  # safetensors' own limit on its JSON header


def _safetensors_fingerprint(file: Path) -> bytes:
    """Check a safetensors file's header against its size; hash its size, header and ends."""

    def damaged(why: str) -> ModelUnavailable:
        return ModelUnavailable(
            f"Cannot load the model in {file.parent}: its weights file {file.name} is damaged ({why}); "
            "download or save it again."
        )

    try:
        with open(file, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise damaged("it is too short to hold any weights")
            header_len = int.from_bytes(prefix, "little")
            if header_len > min(_MAX_HEADER, size - 8):
                raise damaged("it is cut short inside its header")
            header = handle.read(header_len)
            try:
                tensors = json.loads(header)
            except ValueError:
                raise damaged("its header is not valid") from None
            if not isinstance(tensors, dict):
                raise damaged("its header is not valid")
            data_len = size - 8 - header_len
            end = 0
            for name, entry in tensors.items():
                if name == "__metadata__":
                    continue
                offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
                if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
                    raise damaged("its header is not valid")
                end = max(end, offsets[1])
            if end == 0:
                raise damaged("it holds no weights")
            if end > data_len:
                raise damaged(f"it is cut short: {data_len} of {end} bytes of weights are there")
            head = handle.read(_FINGERPRINT_BYTES)
            handle.seek(max(8 + header_len, size - _FINGERPRINT_BYTES))
            tail = handle.read(_FINGERPRINT_BYTES)
    except OSError as exc:
        raise ModelUnavailable(f"Cannot read the model's weights file {file}: {exc.strerror or exc}") from None
    return hashlib.sha256(b"%d\0" % size + header + head + tail).digest()


def _read_logit_scale(folder: Path) -> float | None:
    """The trained log-temperature, read straight from the weights without loading the model."""
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shard = json.loads(index.read_text())["weight_map"].get("logit_scale")
            files = [folder / shard] if shard else files
        except (OSError, ValueError, KeyError):
            pass
    for file in files:
        try:
            with safe_open(str(file), framework="np") as handle:
                if "logit_scale" in handle.keys():  # noqa: SIM118 (safe_open has no __contains__)
                    return float(np.asarray(handle.get_tensor("logit_scale")).reshape(-1)[0])
        except (OSError, ValueError, RuntimeError, SafetensorError):
            continue
    return None
