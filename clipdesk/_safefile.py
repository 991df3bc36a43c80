"""Opening a user's file for reading, safely: never block, never read what is not a photo.

A path found on disk may name a FIFO (an open would wait forever for a writer), a
device, a folder, or a sparse file of many gigabytes. Every path clipdesk reads a
photo from goes through `open_regular`.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from ._errors import ClipdeskError, ImageUnreadable
from ._paths import display

# No photo comes near this: a 200-megapixel, 16-bit RGB TIFF stored without
# compression is 1.2 GB. Anything bigger is refused before a byte of it is read.
MAX_FILE_BYTES = 2_000_000_000


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a regular file of at most MAX_FILE_BYTES for binary reading.

    Symbolic links are followed (a photo named directly may be one); what they lead
    to is checked. Raises ImageUnreadable for anything else (a FIFO, a device, a
    folder, an oversized file) and OSError when the file cannot be opened at all.
    """
    # O_NONBLOCK: opening a FIFO or a terminal returns at once instead of waiting.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        reason = refusal(info)
        if reason is not None:
            raise ImageUnreadable(reason)
        # Regular files ignore O_NONBLOCK; clear it anyway so reads behave as usual.
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def refusal(info: os.stat_result) -> str | None:
    """Why a file with this stat is not read as a photo, or None when it may be."""
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        return "a folder, not a photo"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO), not a photo"
    if stat.S_ISSOCK(mode):
        return "a socket, not a photo"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a photo"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    if info.st_size > MAX_FILE_BYTES:
        return (
            f"file too large ({info.st_size / 1e9:.1f} GB; no photo is larger than "
            f"{MAX_FILE_BYTES // 1_000_000_000} GB)"
        )
    return None


def require_photo_path(path: str) -> None:
    """Refuse, in one clear line, a path a user gave that cannot be a photo (missing, a folder, a FIFO…).

    Only stats the path, so a FIFO is named rather than waited on; reading goes through open_regular.
    """
    shown = display(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ClipdeskError(f"No image at {shown}.") from None
    except OSError as exc:
        raise ClipdeskError(f"Cannot read {shown}: {exc.strerror or exc}.") from None
    if stat.S_ISDIR(info.st_mode):
        raise ClipdeskError(f"{shown} is a folder; give an image file.")
    reason = refusal(info)
    if reason is not None:
        raise ClipdeskError(f"{shown} is {reason}.")
