"""Label templates: {} or {label} is where the label goes; anything else in braces is a clear error."""

from __future__ import annotations

import pytest

from clipdesk._errors import ClipdeskError
from clipdesk._presets import label_prompts


@pytest.mark.parametrize(
    ("template", "prompt"),
    [
        ("a photo of {}", "a photo of cat"),
        ("a {label}, a {}", "a cat, a cat"),
        ("{{not}} a {}", "{not} a cat"),
        ("a blurry photo of", "a blurry photo of cat"),  # no place given: at the end
    ],
)
def test_templates_put_the_label_in_place(template: str, prompt: str) -> None:
    assert label_prompts(["cat"], template) == {"cat": [prompt]}


@pytest.mark.parametrize("template", ["a {photo}", "{0}", "a {", "a }", "{label:>9}", "{!r}"])
def test_other_braces_are_one_clear_error(template: str) -> None:
    with pytest.raises(ClipdeskError, match="template"):
        label_prompts(["cat"], template)
