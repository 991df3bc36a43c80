"""CLIP's text tower without transformers: in numpy on the CPU, or in plain torch.

A text search needs only this tower and the tokenizer. Importing transformers
costs more than a second and a half on a small laptop, and importing torch
most of a second: together most of a cold `clipdesk search`. The tower is a
dozen matrix products, and the `tokenizers` library reads the checkpoint's own
tokenizer.json. `NumpyTextTower` reads the weights straight from the mapped
safetensors file, so a one-shot search imports neither torch nor transformers;
`ClipTextTower` is the same tower in torch, used when the numpy one cannot read
a checkpoint (weights in a type numpy lacks). Both match transformers'
CLIPTextModelWithProjection (tests check it); any checkpoint that differs from
the plain CLIP layout is left to transformers.
"""

from __future__ import annotations

import json
import logging
import math
import mmap
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from ._encoder import SafetensorError

MAX_TOKENS = 77
_ACTIVATIONS = ("quick_gelu", "gelu")
_WEIGHTS = "model.safetensors"

log = logging.getLogger(__name__)


class NotPlainClip(Exception):
    """This checkpoint is not in the plain CLIP layout (or cannot be read): the reason, in words."""


@dataclass(frozen=True)
class TextSpec:
    """What both towers need from a checkpoint's folder: its tokenizer and text config."""

    tokenizer: Any
    config: dict[str, Any]
    weights_file: Path

    @property
    def layers(self) -> int:
        return int(self.config["num_hidden_layers"])

    def needed(self) -> list[str]:
        """Tensors whose absence means a different layout."""
        return ["text_model.embeddings.token_embedding.weight", "text_projection.weight",
                f"text_model.encoder.layers.{self.layers - 1}.mlp.fc2.weight"]

    def tokenize(self, texts: Sequence[str]) -> np.ndarray:
        """Token ids, padded with end-of-text to the longest text, at most 77 each."""
        return np.array([e.ids for e in self.tokenizer.encode_batch(list(texts))], dtype=np.int64)

    def eos_positions(self, ids: np.ndarray) -> np.ndarray:
        """Where the end-of-text token is, as transformers finds it (older configs say eos id 2
        and mean "the highest token id", which the end-of-text token is)."""
        eos = int(self.config.get("eos_token_id", 2))
        return cast(np.ndarray, ids.argmax(-1) if eos == 2 else (ids == eos).argmax(-1))


def read_spec(folder: Path) -> TextSpec:
    """The tokenizer and text config of a plain CLIP checkpoint; NotPlainClip otherwise."""
    try:
        config = json.loads((folder / "config.json").read_text())
        text = dict(config.get("text_config") or {})
    except (OSError, ValueError, AttributeError) as exc:
        raise NotPlainClip(f"its config.json cannot be read ({exc})") from None
    tokenizer_file = folder / "tokenizer.json"
    weights_file = folder / _WEIGHTS
    if text.get("hidden_act", "quick_gelu") not in _ACTIVATIONS:
        raise NotPlainClip(f"its activation {text.get('hidden_act')!r} is not CLIP's")
    if not tokenizer_file.is_file():
        raise NotPlainClip("it has no tokenizer.json")
    if not weights_file.is_file():
        raise NotPlainClip(f"it has no single {_WEIGHTS}")
    if "num_hidden_layers" not in text or "num_attention_heads" not in text:
        raise NotPlainClip("its text config does not give the tower's size")
    try:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tokenizer_file))
    except Exception as exc:  # tokenizers raises plain Exception for a damaged file
        raise NotPlainClip(f"its tokenizer.json cannot be read ({exc})") from None
    pad = tokenizer.token_to_id("<|endoftext|>")
    if pad is None:
        raise NotPlainClip("its tokenizer has no <|endoftext|> token")
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=pad, pad_token="<|endoftext|>")
    return TextSpec(tokenizer, text, weights_file)


# -- numpy --------------------------------------------------------------------

_NUMPY_TYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "BF16": np.uint16}


def _mapped_tensors(file: Path, wanted: str) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file whose names start with `wanted`, as read-only views
    of the mapped file (pages are read when first used, so a search touches only what it needs)."""
    with open(file, "rb") as handle:
        try:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError) as exc:  # an empty file cannot be mapped
            raise NotPlainClip(f"its {file.name} cannot be mapped ({exc})") from None
    data = np.frombuffer(mapped, dtype=np.uint8)
    if data.size < 8:
        raise NotPlainClip(f"its {file.name} is too short")
    header_len = int(data[:8].view("<u8")[0])
    if header_len > data.size - 8:
        raise NotPlainClip(f"its {file.name} is cut short inside its header")
    try:
        header = json.loads(bytes(data[8 : 8 + header_len]))
    except ValueError:
        raise NotPlainClip(f"its {file.name} has a damaged header") from None
    if not isinstance(header, dict):
        raise NotPlainClip(f"its {file.name} has a damaged header")
    start = 8 + header_len
    out: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        if not (name.startswith(wanted) or name == "text_projection.weight"):
            continue
        try:
            kind = _NUMPY_TYPES[entry["dtype"]]
            begin, end = (int(o) for o in entry["data_offsets"])
            shape = tuple(int(s) for s in entry["shape"])
        except (KeyError, TypeError, ValueError):
            raise NotPlainClip(f"its {file.name} holds {name} in a form numpy cannot read") from None
        count = math.prod(shape)
        if not 0 <= begin <= end <= data.size - start or end - begin != count * np.dtype(kind).itemsize:
            raise NotPlainClip(f"its {file.name} is damaged or cut short (at {name})")
        tensor = data[start + begin : start + end].view(np.dtype(kind).newbyteorder("<")).reshape(shape)
        if entry["dtype"] == "BF16":  # bfloat16 is the top half of a float32
            tensor = (tensor.astype(np.uint32) << 16).view(np.float32)
        out[name] = tensor
    return out


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (error below 1.5e-7): numpy has no erf, and GELU needs one.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return cast(np.ndarray, sign * (1.0 - poly * np.exp(-a * a)))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(-1, keepdims=True)
    return cast(np.ndarray, centred / np.sqrt(var + eps) * weight + bias)


def _one_blas_thread() -> AbstractContextManager[object]:
    """BLAS on one thread while a text is encoded: its matrices are a few dozen rows, and
    BLAS threads that spin for a core another process holds made a query ten times slower
    on a busy two-core machine. Without threadpoolctl, BLAS keeps its own setting."""
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return nullcontext()
    return cast(AbstractContextManager[object], threadpool_limits(1, user_api="blas"))


class NumpyTextTower:
    """Text → L2-normalised CLIP vectors in float32 numpy on the CPU; imports no torch.

    Create with `load`; any thread may encode (one at a time).
    """

    def __init__(self, spec: TextSpec, weights: dict[str, np.ndarray]) -> None:
        self.spec = spec
        self.heads = int(spec.config["num_attention_heads"])
        self.eps = float(spec.config.get("layer_norm_eps", 1e-5))
        self.act = spec.config.get("hidden_act", "quick_gelu")
        self._mapped = weights
        self._ready: dict[str, np.ndarray] = {}
        # One encode at a time: BLAS's thread count is per process, and two overlapping
        # limits could restore it in the wrong order.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, folder: Path) -> NumpyTextTower:
        """The tower of a plain CLIP checkpoint; NotPlainClip with the reason otherwise."""
        spec = read_spec(folder)
        try:
            weights = _mapped_tensors(spec.weights_file, "text_model.")
        except OSError as exc:
            raise NotPlainClip(f"its {_WEIGHTS} cannot be read ({exc.strerror or exc})") from None
        missing = [k for k in spec.needed() if k not in weights]
        if missing:
            raise NotPlainClip(f"its weights have no {missing[0]}")
        return cls(spec, weights)

    def _w(self, name: str) -> np.ndarray:
        # float32 copies made once, on first use (the mapped file may hold float16).
        tensor = self._ready.get(name)
        if tensor is None:
            tensor = self._ready[name] = np.ascontiguousarray(self._mapped[name], dtype=np.float32)
        return tensor

    def _linear(self, x: np.ndarray, name: str, bias: bool = True) -> np.ndarray:
        out: np.ndarray = x @ self._w(name + ".weight").T
        return out + self._w(name + ".bias") if bias else out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock, _one_blas_thread():
            return self._encode(texts)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        ids = self.spec.tokenize(texts)
        count, length = ids.shape
        # Only the rows of the tokens used: the table is most of the tower's weights.
        table = self._mapped["text_model.embeddings.token_embedding.weight"]
        x = table[ids].astype(np.float32) + self._w("text_model.embeddings.position_embedding.weight")[:length]
        width = x.shape[-1]
        head = width // self.heads
        # Causal attention: padding sits after each text's last token, so no text sees it.
        future = np.triu(np.ones((length, length), dtype=bool), 1)
        for i in range(self.spec.layers):
            p = f"text_model.encoder.layers.{i}."
            h = _layer_norm(x, self._w(p + "layer_norm1.weight"), self._w(p + "layer_norm1.bias"), self.eps)
            q, k, v = (
                self._linear(h, f"{p}self_attn.{n}_proj").reshape(count, length, self.heads, head).transpose(0, 2, 1, 3)
                for n in ("q", "k", "v")
            )
            scores = (q @ k.transpose(0, 1, 3, 2)) / np.float32(math.sqrt(head))
            scores[..., future] = -np.inf
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            a = (scores @ v).transpose(0, 2, 1, 3).reshape(count, length, width)
            x = x + self._linear(a, p + "self_attn.out_proj")
            h = _layer_norm(x, self._w(p + "layer_norm2.weight"), self._w(p + "layer_norm2.bias"), self.eps)
            h = self._linear(h, p + "mlp.fc1")
            if self.act == "quick_gelu":
                h = h / (1.0 + np.exp(-1.702 * h))
            else:
                h = 0.5 * h * (1.0 + _erf(h / np.float32(math.sqrt(2.0))))
            x = x + self._linear(h.astype(np.float32), p + "mlp.fc2")
        x = _layer_norm(x, self._w("text_model.final_layer_norm.weight"),
                        self._w("text_model.final_layer_norm.bias"), self.eps)
        pooled = x[np.arange(count), self.spec.eos_positions(ids)]
        out = self._linear(pooled, "text_projection", bias=False).astype(np.float32)
        norms = np.linalg.norm(out, axis=-1, keepdims=True)
        return cast(np.ndarray, (out / np.maximum(norms, 1e-12)).astype(np.float32))


# -- torch --------------------------------------------------------------------


class ClipTextTower:
    """Text → L2-normalised CLIP vectors in torch. Create with `load`; not thread-safe (callers lock)."""

    def __init__(self, spec: TextSpec, weights: dict[str, Any], device: str, dtype: Any) -> None:
        self.spec = spec
        self.tokenizer = spec.tokenizer
        self.w = weights
        self.layers = spec.layers
        self.heads = int(spec.config["num_attention_heads"])
        self.eps = float(spec.config.get("layer_norm_eps", 1e-5))
        self.act = spec.config.get("hidden_act", "quick_gelu")
        self.device, self.dtype = device, dtype

    @classmethod
    def load(cls, folder: Path, device: str, dtype: Any) -> ClipTextTower | None:
        """The tower of a checkpoint in the plain CLIP layout, or None to use transformers instead."""
        try:
            spec = read_spec(folder)
            import torch
            from safetensors import safe_open

            weights: dict[str, Any] = {}
            with safe_open(str(spec.weights_file), framework="pt", device="cpu") as handle:
                for key in handle.keys():  # noqa: SIM118  # a safetensors handle is not a dict: it cannot be iterated
                    if key.startswith("text_model.") or key == "text_projection.weight":
                        weights[key] = handle.get_tensor(key).to(device=device, dtype=dtype)
            if any(k not in weights for k in spec.needed()):
                return None
            del torch
            return cls(spec, weights, device, dtype)
        except (NotPlainClip, OSError, ValueError, KeyError, RuntimeError, ImportError, SafetensorError):
            # transformers then loads the tower, and reports a damaged file in one line.
            return None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        w = self.w
        ids = torch.from_numpy(self.spec.tokenize(texts)).to(self.device)
        with torch.inference_mode():
            count, length = ids.shape
            x = w["text_model.embeddings.token_embedding.weight"][ids]
            x = x + w["text_model.embeddings.position_embedding.weight"][:length]
            width = x.shape[-1]
            head = width // self.heads
            for i in range(self.layers):
                p = f"text_model.encoder.layers.{i}."
                h = F.layer_norm(x, (width,), w[p + "layer_norm1.weight"], w[p + "layer_norm1.bias"], self.eps)
                q, k, v = (
                    F.linear(h, w[f"{p}self_attn.{n}_proj.weight"], w[f"{p}self_attn.{n}_proj.bias"])
                    .view(count, length, self.heads, head)
                    .transpose(1, 2)
                    for n in ("q", "k", "v")
                )
                # Causal attention: padding sits after each text's last token, so no text sees it.
                a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                a = a.transpose(1, 2).reshape(count, length, width)
                x = x + F.linear(a, w[p + "self_attn.out_proj.weight"], w[p + "self_attn.out_proj.bias"])
                h = F.layer_norm(x, (width,), w[p + "layer_norm2.weight"], w[p + "layer_norm2.bias"], self.eps)
                h = F.linear(h, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"])
                h = h * torch.sigmoid(1.702 * h) if self.act == "quick_gelu" else F.gelu(h)
                x = x + F.linear(h, w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"])
            x = F.layer_norm(
                x, (width,), w["text_model.final_layer_norm.weight"], w["text_model.final_layer_norm.bias"], self.eps
            )
            eos = torch.from_numpy(self.spec.eos_positions(ids.cpu().numpy())).to(x.device)
            pooled = x[torch.arange(count, device=x.device), eos]
            out = F.linear(pooled, w["text_projection.weight"]).float().cpu().numpy()
        norms = np.linalg.norm(out, axis=-1, keepdims=True)
        return cast(np.ndarray, (out / np.maximum(norms, 1e-12)).astype(np.float32))
