"""The app's preferences, kept with QSettings (the platform's native store).

`AppSettings` is plain data; `load`/`save` are the only code that knows the keys.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TypeVar

from PySide6.QtCore import QSettings

from .._library import PHOTO_ORDERS, PhotoOrder
from .filterstate import FilterInputs
from .thumbnails import DEFAULT_CACHE_MB

ORGANISATION = "clipdesk"
APPLICATION = "clipdesk"
DEVICES = ("auto", "cpu", "cuda", "mps")
T = TypeVar("T")


@dataclass
class AppSettings:
    model: str = ""  # "" = the library's own model, else the default
    device: str = "auto"
    batch_size: int = 0  # 0 = the model's default
    thumbnail_cache_mb: int = DEFAULT_CACHE_MB
    start_watching: bool = True
    thumbnail_size: int = 160
    relevance: int = 0  # percent; 0 shows every match
    photo_order: PhotoOrder = "name"  # the unsearched grid: by name, newest or oldest first
    label_sets: dict[str, list[str]] = field(default_factory=dict)
    labels: str = "cat, dog, bird"
    filters: FilterInputs = field(default_factory=FilterInputs)  # the filter row, as the user left it


def open_settings() -> QSettings:
    return QSettings(ORGANISATION, APPLICATION)


def _int(value: object, default: int) -> int:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return default


def _bool(value: object, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return default


def _choice(value: object, choices: tuple[T, ...], default: T) -> T:
    """The stored value if it is one of the choices, else the default."""
    return next((c for c in choices if c == value), default)


def load(store: QSettings) -> AppSettings:
    """Read settings; anything missing or garbled falls back to its default."""
    d = AppSettings()
    try:
        sets = json.loads(str(store.value("classify/label_sets", "{}")))
        label_sets = {str(k): [str(x) for x in v] for k, v in sets.items() if isinstance(v, list)}
    except (ValueError, AttributeError):
        label_sets = {}
    return AppSettings(
        model=str(store.value("model/id", d.model) or ""),
        device=_choice(store.value("model/device", d.device), DEVICES, d.device),
        batch_size=max(0, _int(store.value("model/batch_size", d.batch_size), d.batch_size)),
        thumbnail_cache_mb=max(16, _int(store.value("cache/thumbnail_mb", d.thumbnail_cache_mb), d.thumbnail_cache_mb)),
        start_watching=_bool(store.value("folders/start_watching", d.start_watching), d.start_watching),
        thumbnail_size=min(512, max(64, _int(store.value("view/thumbnail_size", d.thumbnail_size), d.thumbnail_size))),
        relevance=min(100, max(0, _int(store.value("view/relevance", d.relevance), d.relevance))),
        photo_order=_choice(store.value("view/order", d.photo_order), PHOTO_ORDERS, d.photo_order),
        label_sets=label_sets,
        labels=str(store.value("classify/labels", d.labels)),
        filters=FilterInputs.from_json(str(store.value("view/filters", "{}"))),
    )


def save(store: QSettings, settings: AppSettings) -> None:
    values = asdict(settings)
    store.setValue("model/id", values["model"])
    store.setValue("model/device", values["device"])
    store.setValue("model/batch_size", values["batch_size"])
    store.setValue("cache/thumbnail_mb", values["thumbnail_cache_mb"])
    store.setValue("folders/start_watching", values["start_watching"])
    store.setValue("view/thumbnail_size", values["thumbnail_size"])
    store.setValue("view/relevance", values["relevance"])
    store.setValue("view/order", values["photo_order"])
    store.setValue("classify/label_sets", json.dumps(values["label_sets"]))
    store.setValue("classify/labels", values["labels"])
    store.setValue("view/filters", settings.filters.to_json())
    store.sync()
