"""Built-in label sets for zero-shot classification.

A preset maps each label to several prompts; their text vectors are averaged,
which makes CLIP's zero-shot guesses steadier than one phrase per label.
"""

from __future__ import annotations

DEFAULT_TEMPLATE = "a photo of {}"

PRESETS: dict[str, dict[str, list[str]]] = {
    "moderation": {
        "safe": [
            "a safe for work photo",
            "an ordinary everyday photo",
            "a family photo",
            "a photo of a landscape, food, animals or objects",
        ],
        "not safe for work": [
            "an explicit nude photo",
            "a pornographic image",
            "a photo with sexual content",
        ],
        "violent": [
            "a violent photo of people fighting",
            "a photo of someone being attacked with a weapon",
            "a photo of a shooting or an assault",
        ],
        "graphic": [
            "a graphic photo of blood and gore",
            "a photo of a gruesome injury",
            "a photo of a dead body",
        ],
        "hateful": [
            "a photo of a hate symbol",
            "an image of extremist propaganda",
        ],
    },
}


def label_prompts(labels: list[str], template: str = DEFAULT_TEMPLATE) -> dict[str, list[str]]:
    """User labels to prompts: each label fills the template ('a photo of {}')."""
    if "{}" not in template:
        template = template + " {}"
    return {label: [template.format(label)] for label in labels}


def parse_labels(text: str) -> list[str]:
    """'cat, dog,, bird' -> ['cat', 'dog', 'bird'] (order kept, duplicates dropped)."""
    seen: dict[str, None] = {}
    for part in text.split(","):
        label = part.strip()
        if label:
            seen.setdefault(label, None)
    return list(seen)
