"""What a photo carries besides its pixels: camera, lens, place, offset and file type.

Read from the file's header at index time (see `imaging`), stored in the library's
`images` table, and filled in for photos indexed before they were kept. Plain data:
no Pillow, no SQL, so the store, the filters and the command line can share it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

# Which clipdesk read a photo's facts (stored with them). When a later one reads
# more, its migration sets the column back to NULL, so those photos are read
# again: from the header only, never re-encoded.
FACTS_VERSION = 1


class Orientation(enum.Enum):
    LANDSCAPE = "landscape"
    PORTRAIT = "portrait"
    SQUARE = "square"


class DateSource(enum.Enum):
    """Where a photo's date comes from: its EXIF, or (without one) its file's modification time."""

    EXIF = "exif"
    FILE = "file"


@dataclass(frozen=True)
class Facts:
    """A photo's header facts; a field is None where the file does not say."""

    taken_offset: str | None = None  # the EXIF offset of the date taken, e.g. "+02:00"
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    file_type: str | None = None  # Pillow's format name in lower case: "jpeg", "png", "heif"…

    @property
    def camera(self) -> str | None:
        """Make and model as one name; a model that already names its make is not doubled."""
        return camera_name(self.camera_make, self.camera_model)

    @property
    def has_gps(self) -> bool:
        return self.latitude is not None and self.longitude is not None


def camera_name(make: str | None, model: str | None) -> str | None:
    """"Canon" and "Canon EOS 5D" make "Canon EOS 5D"; "NIKON CORPORATION" and "D750" make both."""
    if not model:
        return make or None
    if not make or model.lower().startswith(make.split()[0].lower()):
        return model
    return f"{make} {model}"


def orientation(width: int | None, height: int | None) -> Orientation | None:
    if not width or not height:
        return None
    if width == height:
        return Orientation.SQUARE
    return Orientation.LANDSCAPE if width > height else Orientation.PORTRAIT


def date_taken(taken_at: str | None, offset: str | None, mtime_ns: int) -> tuple[str, DateSource]:
    """A photo's date as ISO 8601 (with its offset when the EXIF gives one), and its source.

    Without an EXIF date, the file's modification time in local time, as a camera
    writes its clock; the library's SQL orders and filters by the same rule.
    """
    if taken_at:
        return taken_at + (offset or ""), DateSource.EXIF
    local = datetime.fromtimestamp(mtime_ns // 1_000_000_000)
    return local.isoformat(timespec="seconds"), DateSource.FILE


# File types as users name them, to Pillow's format names (the stored `file_type`).
TYPE_NAMES = {
    "jpeg": "jpeg", "jpg": "jpeg", "png": "png", "webp": "webp", "gif": "gif", "bmp": "bmp",
    "tiff": "tiff", "tif": "tiff", "heic": "heif", "heif": "heif", "avif": "avif",
    "raw": "raw", "dng": "raw",
}
