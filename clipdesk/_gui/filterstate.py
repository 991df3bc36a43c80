"""What the filter row holds, as the user set it: plain data the settings keep between runs.

It becomes the core's `Filter` (the one home of every filter rule) through
`to_filter`, which words any problem for the window rather than the command line.
Qt-free, so it is tested without a window.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date

from .._errors import UsageError
from .._facts import TYPE_NAMES, Orientation
from .._filters import DATE_FORMS, Filter, parse_date


class FilterProblem(Exception):
    """Something typed in the filter row that cannot be a filter; the message is for the user."""


@dataclass(frozen=True)
class FilterInputs:
    """The filter row's values: dates as typed ("2019", "2019-07", "2019-07-14"), "" or () for none."""

    after: str = ""
    before: str = ""
    folders: tuple[str, ...] = ()  # as the library stores them
    types: tuple[str, ...] = ()  # as the library stores them ("jpeg", "heif"…)
    camera: str = ""
    orientation: str = ""  # an Orientation value

    def is_empty(self) -> bool:
        return self == FilterInputs()

    def to_filter(self) -> Filter:
        """The filter these values ask for; FilterProblem, in the app's words, if they cannot."""
        after = _date(self.after, end=False)
        before = _date(self.before, end=True)
        try:
            return Filter(
                after=after,
                before=before,
                folders=self.folders,
                types=self.types,
                camera=self.camera or None,
                orientation=Orientation(self.orientation) if self.orientation else None,
            )
        except UsageError:  # the one way these values can be refused: the dates cross
            raise FilterProblem(
                f"“From {self.after.strip()}” is later than “to {self.before.strip()}”: no photo can match."
            ) from None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> FilterInputs:
        """Values saved by `to_json`; anything missing or garbled is left out."""
        try:
            raw = json.loads(text)
        except ValueError:
            return cls()
        if not isinstance(raw, dict):
            return cls()

        def text_of(key: str) -> str:
            value = raw.get(key, "")
            return value if isinstance(value, str) else ""

        def texts_of(key: str) -> tuple[str, ...]:
            value = raw.get(key, [])
            return tuple(v for v in value if isinstance(v, str) and v) if isinstance(value, list) else ()

        shapes = {o.value for o in Orientation}
        inputs = cls(
            after=text_of("after"),
            before=text_of("before"),
            folders=texts_of("folders"),
            types=tuple(t for t in texts_of("types") if t in TYPE_NAMES.values()),
            camera=text_of("camera"),
            orientation=text_of("orientation") if text_of("orientation") in shapes else "",
        )
        try:
            inputs.to_filter()
        except FilterProblem:
            return cls(folders=inputs.folders, types=inputs.types, camera=inputs.camera,
                       orientation=inputs.orientation)
        return inputs


def _date(text: str, *, end: bool) -> date | None:
    if not text.strip():
        return None
    try:
        return parse_date(text, end=end)
    except UsageError:
        raise FilterProblem(f"“{text.strip()}” is not a date: type {DATE_FORMS}.") from None
