"""Photos carrying the EXIF a camera writes, for the filter tests of the command line and the app."""

from __future__ import annotations

import os
import time
from pathlib import Path

from PIL import Image

from clipdesk._testing.colours import PALETTE

EXIF_IFD, GPS_IFD = 0x8769, 0x8825


def make_exif_photo(
    path: Path,
    colour: str,
    size: tuple[int, int] = (64, 48),
    *,
    taken: str | None = None,
    offset: str | None = None,
    make: str | None = None,
    model: str | None = None,
    lens: str | None = None,
    gps: tuple[float, float] | None = None,
) -> Path:
    """A solid-colour photo carrying the EXIF a camera writes (the format follows the suffix)."""
    exif = Image.Exif()
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    sub = exif.get_ifd(EXIF_IFD)
    if taken:
        sub[0x9003] = taken
    if offset:
        sub[0x9011] = offset
    if lens:
        sub[0xA434] = lens
    if gps:
        where = exif.get_ifd(GPS_IFD)
        lat, lon = gps
        where[1], where[2] = ("N" if lat >= 0 else "S"), _dms(abs(lat))
        where[3], where[4] = ("E" if lon >= 0 else "W"), _dms(abs(lon))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, PALETTE[colour]).save(path, exif=exif)
    return path


def _dms(degrees: float) -> tuple[float, float, float]:
    whole = int(degrees)
    minutes = int((degrees - whole) * 60)
    return float(whole), float(minutes), round((degrees - whole - minutes / 60) * 3600, 4)


def make_camera_roll(root: Path) -> Path:
    """Five photos of 2018 to 2020 from two cameras, in three folders, of four types and three shapes."""
    make_exif_photo(root / "2019" / "beach.jpg", "blue", (80, 40), taken="2019:07:14 10:00:00",
                    offset="+02:00", make="Canon", model="Canon EOS 5D", lens="EF 50mm", gps=(43.5, -1.25))
    make_exif_photo(root / "2019" / "sunset.jpg", "red", (40, 80), taken="2019:07:31 21:00:00",
                    make="Apple", model="iPhone 12")
    make_exif_photo(root / "2019" / "trip" / "poppies.png", "red", (50, 50), taken="2019:08:01 09:00:00",
                    make="Canon", model="Canon EOS 5D")
    make_exif_photo(root / "2020" / "forest.webp", "green", (1000, 600), taken="2020:05:01 12:00:00")
    undated = make_exif_photo(root / "scan.bmp", "red", (30, 20))
    stamp = time.mktime((2018, 3, 1, 12, 0, 0, 0, 0, -1))
    os.utime(undated, (stamp, stamp))
    return root


# The combined test: the words "blue", "-purple" pushing purple down, and four filters.
COMBINED_TEXT, COMBINED_NOT = "blue", "purple"
COMBINED_AFTER = COMBINED_BEFORE = "2019-07"
COMBINED_FOLDER, COMBINED_TYPE, COMBINED_CAMERA = "2019", "jpeg", "Canon EOS 5D"
# What they keep, best first; without "-purple" the purple photo would come second.
COMBINED_EXPECTED = ["beach.jpg", "red-canon.jpg", "purple-canon.jpg"]


def add_combined_photos(roll: Path) -> None:
    """Add to a camera roll two July Canon JPEGs in 2019/, and blue ones (that the words would
    rank first) each left out by one filter only."""
    canon = {"make": "Canon", "model": "Canon EOS 5D"}
    make_exif_photo(roll / "2019" / "red-canon.jpg", "red", taken="2019:07:20 10:00:00", **canon)
    make_exif_photo(roll / "2019" / "purple-canon.jpg", "purple", taken="2019:07:22 10:00:00", **canon)
    make_exif_photo(roll / "2019" / "june.jpg", "blue", taken="2019:06:30 10:00:00", **canon)  # the date
    make_exif_photo(roll / "loose.jpg", "blue", taken="2019:07:25 10:00:00", **canon)  # the folder
    make_exif_photo(roll / "2019" / "blue-canon.png", "blue", taken="2019:07:21 10:00:00", **canon)  # the type
    make_exif_photo(roll / "2019" / "blue-phone.jpg", "blue", taken="2019:07:23 10:00:00",
                    make="Apple", model="iPhone 12")  # the camera
