"""Finding a model: a Hugging Face id (downloaded and cached on first use) or a local folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._encoder import ClipEncoder, Encoder
from ._errors import ModelUnavailable

DEFAULT_MODEL = "openai/clip-vit-base-patch32"

# The models the app offers by name; any other hub id or folder works too.
KNOWN_MODELS: dict[str, str] = {
    "ViT-B/32": "openai/clip-vit-base-patch32",
    "ViT-B/16": "openai/clip-vit-base-patch16",
    "ViT-L/14": "openai/clip-vit-large-patch14",
}

# Deterministic encoders for tests and diagnostics; they need no weights.
TEST_PREFIX = "clipdesk-test:"

_WEIGHT_PATTERNS = ["*.json", "*.txt", "*.safetensors"]


@dataclass(frozen=True)
class ModelSpec:
    """How a model is named by the user, and the id recorded in a library for it."""

    model_id: str
    folder: Path | None  # set for local folders


def looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", ".", "~")) or os.sep in spec.replace("/", "", 1) or (
        os.altsep is not None and os.altsep in spec
    )


def parse(spec: str) -> ModelSpec:
    """A local folder is recorded by its absolute path; anything else is a hub id."""
    spec = KNOWN_MODELS.get(spec, spec)
    if spec.startswith(TEST_PREFIX):
        return ModelSpec(spec, None)
    candidate = Path(spec).expanduser()
    if candidate.exists():
        if not candidate.is_dir():
            raise ModelUnavailable(f"--model {spec} is a file; give the folder that holds the model.")
        return ModelSpec(str(candidate.resolve()), candidate.resolve())
    if looks_like_path(spec):
        raise ModelUnavailable(f"No model folder at {spec}.")
    return ModelSpec(spec, None)


DownloadProgress = Callable[[str, int, int], None]
"""(file name, bytes done, bytes total) while a model downloads."""


def cached(model_id: str, *, allow_pickle: bool = False) -> Path | None:
    """The local folder of a hub model already downloaded, or None; never touches the network."""
    import huggingface_hub
    from huggingface_hub import errors as hub_errors

    patterns = _WEIGHT_PATTERNS + (["*.bin"] if allow_pickle else [])
    try:
        return Path(
            huggingface_hub.snapshot_download(
                model_id, allow_patterns=patterns, local_files_only=True
            )
        )
    except (hub_errors.LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return None
    except hub_errors.HFValidationError:
        raise ModelUnavailable(f"'{model_id}' is neither a model folder nor a Hugging Face model id.") from None


def fetch(model_id: str, *, allow_pickle: bool = False, progress: Any = None) -> Path:
    """The local folder of a hub model, downloading it first if it is not cached.

    `progress` is a tqdm-compatible class for the download bars (the hub's own by default).
    """
    import huggingface_hub
    from huggingface_hub import errors as hub_errors

    patterns = _WEIGHT_PATTERNS + (["*.bin"] if allow_pickle else [])
    found = cached(model_id, allow_pickle=allow_pickle)
    if found is not None:
        return found
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ModelUnavailable(_offline_message(model_id, "HF_HUB_OFFLINE is set"))
    try:
        folder = huggingface_hub.snapshot_download(
            model_id, allow_patterns=patterns, tqdm_class=progress
        )
    except hub_errors.RepositoryNotFoundError:
        raise ModelUnavailable(f"There is no model '{model_id}' on the Hugging Face hub.") from None
    except hub_errors.GatedRepoError:
        raise ModelUnavailable(
            f"The model '{model_id}' needs you to accept its licence on the Hugging Face hub first."
        ) from None
    except hub_errors.HFValidationError:
        raise ModelUnavailable(f"'{model_id}' is neither a model folder nor a Hugging Face model id.") from None
    except Exception as exc:  # the hub raises many network error types; all mean "could not download"
        raise ModelUnavailable(_offline_message(model_id, type(exc).__name__)) from None
    return Path(folder)


def _offline_message(model_id: str, why: str) -> str:
    return (
        f"The model '{model_id}' is not downloaded yet and cannot be fetched ({why}). "
        "Connect to the internet once so clipdesk can download it, or pass "
        "--model /path/to/folder with a CLIP model saved by save_pretrained."
    )


@dataclass(frozen=True)
class EncoderOptions:
    """How to run a model: the one record every caller of load_encoder fills in."""

    device: str = "auto"
    batch_size: int | None = None
    allow_pickle: bool = False
    int8: bool = False  # opt-in faster CPU image encoding (see ClipEncoder.int8)


def load_encoder(
    spec: str | ModelSpec,
    options: EncoderOptions = EncoderOptions(),
    *,
    progress: Any = None,
) -> Encoder:
    """An encoder for a model id or folder; weights load lazily on first encode.

    `progress` is a tqdm-compatible class for download bars. The test encoders are
    imported only when asked for by id, so the product never loads them otherwise.
    """
    parsed = parse(spec) if isinstance(spec, str) else spec
    if parsed.model_id.startswith(TEST_PREFIX):
        from ._testing.colours import test_encoder

        return test_encoder(parsed.model_id)
    folder = parsed.folder or fetch(parsed.model_id, allow_pickle=options.allow_pickle, progress=progress)
    return ClipEncoder(
        folder,
        parsed.model_id,
        device=options.device,
        batch_size=options.batch_size,
        allow_pickle=options.allow_pickle,
        int8=options.int8,
    )
