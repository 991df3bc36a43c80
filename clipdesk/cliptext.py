"""CLIP's text tower in plain torch, read straight from the checkpoint's safetensors.

A text search needs only this tower and the tokenizer. Importing transformers
costs more than a second and a half on a small laptop, most of a cold
`clipdesk search`; the tower itself is a dozen lines of torch, and the
`tokenizers` library reads the checkpoint's own tokenizer.json. The result
matches transformers' CLIPTextModelWithProjection (a test checks it); any
checkpoint that differs from the plain CLIP layout is left to transformers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from .encoder import SafetensorError

MAX_TOKENS = 77
_ACTIVATIONS = ("quick_gelu", "gelu")


class ClipTextTower:
    """Text → L2-normalised CLIP vectors. Create with `load`; not thread-safe (callers lock)."""

    def __init__(self, tokenizer: Any, weights: dict[str, Any], config: dict[str, Any], device: str, dtype: Any) -> None:
        self.tokenizer = tokenizer
        self.w = weights
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-5))
        self.act = config.get("hidden_act", "quick_gelu")
        self.eos = int(config.get("eos_token_id", 2))
        self.device, self.dtype = device, dtype

    @classmethod
    def load(cls, folder: Path, device: str, dtype: Any) -> ClipTextTower | None:
        """The tower of a checkpoint in the plain CLIP layout, or None to use transformers instead."""
        try:
            config = json.loads((folder / "config.json").read_text())
            text = dict(config.get("text_config") or {})
            tokenizer_file = folder / "tokenizer.json"
            weights_file = folder / "model.safetensors"
            if text.get("hidden_act", "quick_gelu") not in _ACTIVATIONS or not tokenizer_file.is_file():
                return None
            if not weights_file.is_file() or "num_hidden_layers" not in text or "num_attention_heads" not in text:
                return None
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(tokenizer_file))
            pad = tokenizer.token_to_id("<|endoftext|>")
            if pad is None:
                return None
            tokenizer.enable_truncation(MAX_TOKENS)
            tokenizer.enable_padding(pad_id=pad, pad_token="<|endoftext|>")
            import torch
            from safetensors import safe_open

            weights: dict[str, Any] = {}
            with safe_open(str(weights_file), framework="pt", device="cpu") as handle:
                for key in handle.keys():  # noqa: SIM118  # a safetensors handle is not a dict: it cannot be iterated
                    if key.startswith("text_model.") or key == "text_projection.weight":
                        weights[key] = handle.get_tensor(key).to(device=device, dtype=dtype)
            layers = int(text["num_hidden_layers"])
            needed = ["text_model.embeddings.token_embedding.weight", "text_projection.weight",
                      f"text_model.encoder.layers.{layers - 1}.mlp.fc2.weight"]
            if any(k not in weights for k in needed):
                return None
            del torch
            return cls(tokenizer, weights, text, device, dtype)
        except (OSError, ValueError, KeyError, RuntimeError, ImportError, SafetensorError):
            # transformers then loads the tower, and reports a damaged file in one line.
            return None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        w = self.w
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long, device=self.device)
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
            # Where the end-of-text token is, as transformers finds it (older configs say eos id 2
            # and mean "the highest token id", which the end-of-text token is).
            eos = ids.argmax(-1) if self.eos == 2 else (ids == self.eos).int().argmax(-1)
            pooled = x[torch.arange(count, device=x.device), eos]
            out = F.linear(pooled, w["text_projection.weight"]).float().cpu().numpy()
        norms = np.linalg.norm(out, axis=-1, keepdims=True)
        return cast(np.ndarray, (out / np.maximum(norms, 1e-12)).astype(np.float32))
