"""The search syntax of the app's search box and of `clipdesk search`: words to find,
`-word` or `not:word` to push down, `label:name` to keep only photos carrying a label.

    red car -night            find "red car", push down night photos
    beach -"people swimming"  quotes keep a phrase together
    dog not:grass             `not:` works like `-`
    label:beach sunset        sunsets among the photos labelled "beach"
    label:"sandy beach"       quotes keep a label of several words together

One parser for both, so the same words rank photos alike in the window and the terminal.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

_NOT_PREFIXES = ("-", "not:")
LABEL_PREFIX = "label:"


@dataclass(frozen=True)
class ParsedQuery:
    text: str  # what to find, as one description ("" when only negatives were typed)
    negatives: tuple[str, ...]
    labels: tuple[str, ...] = ()  # keep photos carrying any of these labels


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an unmatched quote while the user is still typing
        return re.findall(r"\S+", text.replace('"', " ").replace("'", " "))


def parse_query(text: str) -> ParsedQuery:
    """Split typed text into the description to find, the terms to avoid and the labels to keep."""
    wanted: list[str] = []
    negatives: list[str] = []
    labels: list[str] = []
    for token in _split(text):
        lowered = token.lower()
        if lowered.startswith(LABEL_PREFIX):
            label = token[len(LABEL_PREFIX):].strip()
            if label and label.lower() not in (x.lower() for x in labels):
                labels.append(label)
            continue
        for prefix in _NOT_PREFIXES:
            if lowered.startswith(prefix) and len(token) > len(prefix):
                term = token[len(prefix):].strip()
                if term and term not in negatives:
                    negatives.append(term)
                break
        else:
            if token not in ("-", "not:"):
                wanted.append(token)
    return ParsedQuery(" ".join(wanted), tuple(negatives), tuple(labels))


def from_words(words: list[str]) -> str:
    """The search-box text for a command line's words (the shell has already removed quotes).

    A word with spaces in it was a quoted phrase: it is quoted again, after any `-` or `not:`,
    so `clipdesk search beach -"people swimming"` means what it means in the search box.
    """
    parts = []
    for word in words:
        if any(c.isspace() for c in word) and not any(q in word for q in "\"'"):
            prefix = next((p for p in _NOT_PREFIXES if word.lower().startswith(p)), "")
            word = f'{word[:len(prefix)]}"{word[len(prefix):]}"'
        parts.append(word)
    return " ".join(parts)
