"""Built-in label sets for zero-shot classification.

A preset maps each label to several prompts; their text vectors are averaged,
which makes CLIP's zero-shot guesses steadier than one phrase per label.
"""

from __future__ import annotations

import string

from ._errors import ClipdeskError

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
    """User labels to prompts: each label fills the template ('a photo of {}').

    Raises ClipdeskError for a template with other braces than {} or {label}.
    """
    parts = _template_parts(template)
    if len(parts) == 1:
        parts = [parts[0] + " ", ""]  # no place for the label given: it goes at the end
    return {label: [label.join(parts)] for label in labels}


def _template_parts(template: str) -> list[str]:
    """The template's text around each {} or {label}; {{ and }} stand for braces."""
    example = f"e.g. --template {DEFAULT_TEMPLATE!r}"
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        raise ClipdeskError(
            f"The template {template!r} has an unmatched brace; use {{}} where the label goes ({example}), "
            "or {{ and }} for a brace in the text."
        ) from None
    parts = [""]
    for text, name, spec, conversion in fields:
        parts[-1] += text
        if name is None:
            continue
        if name not in ("", "label") or spec or conversion:
            field = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ClipdeskError(
                f"The template {template!r} has {field}; only {{}} or {{label}} can stand for the label ({example})."
            )
        parts.append("")
    return parts


def parse_labels(text: str) -> list[str]:
    """'cat, dog,, bird' -> ['cat', 'dog', 'bird'] (order kept, duplicates dropped)."""
    seen: dict[str, None] = {}
    for part in text.split(","):
        label = part.strip()
        if label:
            seen.setdefault(label, None)
    return list(seen)
