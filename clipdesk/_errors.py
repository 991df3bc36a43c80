"""Errors a user or their environment can cause; each carries one clear sentence.

Anything else that escapes is a bug and is allowed to show a traceback.
"""

from __future__ import annotations


class ClipdeskError(Exception):
    """An expected failure with a message fit to show a user as it is."""


class ModelUnavailable(ClipdeskError):
    """The model could not be found, downloaded or loaded."""


class LibraryError(ClipdeskError):
    """The library database could not be opened, read or written."""


class ModelMismatch(LibraryError):
    """The library was built with a different model than the one asked for."""


class LibraryBusy(LibraryError):
    """Another process held the library's write lock for too long."""


class LibraryCorrupt(LibraryError):
    """The database file is damaged or is not a clipdesk library."""


class ImageUnreadable(ClipdeskError):
    """A file could not be decoded as an image."""


class InternalError(ClipdeskError):
    """A bug in clipdesk, not the user's doing; the message points to the log."""


class UsageError(ClipdeskError):
    """The command was given something that cannot work (an impossible date, a folder
    outside the library); the command line exits with status 2, as for a bad option."""
