"""Zero-shot classification: how well each image matches each label, as probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._encoder import Encoder, normalise
from ._presets import DEFAULT_TEMPLATE, PRESETS, label_prompts
from ._errors import ClipdeskError


@dataclass(frozen=True)
class LabelSet:
    """Labels and the prompts that describe each one."""

    prompts: dict[str, list[str]]

    @property
    def labels(self) -> list[str]:
        return list(self.prompts)

    @classmethod
    def from_labels(cls, labels: Sequence[str], template: str = DEFAULT_TEMPLATE) -> LabelSet:
        if len(labels) < 2:
            raise ClipdeskError("Give at least two labels to choose between, e.g. --labels 'cat,dog'.")
        return cls(label_prompts(list(labels), template))

    @classmethod
    def preset(cls, name: str) -> LabelSet:
        if name not in PRESETS:
            raise ClipdeskError(f"Unknown preset '{name}'; the presets are: {', '.join(PRESETS)}.")
        return cls(PRESETS[name])


@dataclass(frozen=True)
class Classification:
    probabilities: dict[str, float]

    def best(self) -> str:
        return max(self.probabilities, key=self.probabilities.__getitem__)

    def ranked(self) -> list[tuple[str, float]]:
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])


def label_vectors(encoder: Encoder, labels: LabelSet) -> np.ndarray:
    """One unit vector per label: the mean of its prompts' text vectors."""
    rows = []
    for prompts in labels.prompts.values():
        rows.append(encoder.encode_texts(prompts).mean(axis=0))
    return normalise(np.stack(rows))


def probabilities(encoder: Encoder, image_vectors: np.ndarray, label_vecs: np.ndarray) -> np.ndarray:
    """One row per image, one column per label: softmax over labels of CLIP's scaled cosine similarity."""
    logits = encoder.logit_scale() * (np.asarray(image_vectors) @ label_vecs.T)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return np.asarray(probs)


def classify_vectors(encoder: Encoder, image_vectors: np.ndarray, labels: LabelSet) -> list[Classification]:
    """Probabilities per image, as `probabilities` gives them."""
    if len(image_vectors) == 0:
        return []
    probs = probabilities(encoder, image_vectors, label_vectors(encoder, labels))
    return [
        Classification({label: float(p) for label, p in zip(labels.labels, row)}) for row in probs
    ]
