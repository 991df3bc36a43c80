"""What the indexing service reports: folder states and one small record per event kind.

Each event is a frozen dataclass whose fields mean one thing; `ServiceEvent` is
their union, so a listener can `match` on the classes and mypy checks the
names. docs/service.md says when each one comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TypeAlias


class FolderState(str, Enum):
    """What the service is doing with one library folder (the value is the CLI's word)."""

    WATCHING = "watching"  # change events from the operating system
    POLLING = "polling"  # checked every few seconds (network shares, no inotify watches left)
    INDEXING = "indexing"
    ERROR = "error"  # cannot watch it, or no model to index with; see the message
    MISSING = "missing"  # gone (unmounted?); its photos are kept and it is watched for again
    UNWATCHED = "unwatched"  # known, but not watched this session


@dataclass(frozen=True)
class FolderStatus:
    """One library folder as the service sees it now."""

    path: str
    images: int
    state: FolderState
    message: str | None = None


# -- the service itself ----------------------------------------------------------


@dataclass(frozen=True)
class Started:
    """`start()` was called; the threads are starting."""


@dataclass(frozen=True)
class Stopped:
    """`stop()` finished: nothing more comes."""


@dataclass(frozen=True)
class Idle:
    """Nothing left to do for now; `images` is the library's total."""

    images: int


@dataclass(frozen=True)
class ServiceError:
    """Something failed that the user should see (a folder, the library, a bug)."""

    message: str
    folder: str | None = None
    fatal: bool = False  # the service stopped indexing and must be restarted


# -- the model -----------------------------------------------------------------------


@dataclass(frozen=True)
class ModelLoading:
    """The model is being loaded (or checked against the library)."""


@dataclass(frozen=True)
class ModelDownloading:
    """A model file is downloading: `done` of `total` bytes."""

    done: int
    total: int
    description: str | None = None


@dataclass(frozen=True)
class ModelReady:
    model_id: str


@dataclass(frozen=True)
class ModelFailed:
    """No model to index or search with; browsing and folders still work."""

    message: str


# -- folders -----------------------------------------------------------------------


@dataclass(frozen=True)
class FolderChanged:
    """A folder's state or message changed."""

    status: FolderStatus


@dataclass(frozen=True)
class FolderRemoved:
    """A folder left the library (`forgotten` photos dropped) or is no longer watched (0)."""

    folder: str
    forgotten: int
    images: int
    message: str


# -- indexing ----------------------------------------------------------------------


@dataclass(frozen=True)
class ChangesQueued:
    """The watcher saw `count` paths change; `folder`/`path` are set when there is just one."""

    count: int
    folder: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class Progress:
    """Indexing is under way: `done` of `total` files, `rate` images encoded per second."""

    done: int
    total: int
    encoded: int
    failed: int
    rate: float
    folder: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class FileSkipped:
    """One file could not be indexed (the batch goes on)."""

    path: str
    message: str
    folder: str | None = None


@dataclass(frozen=True)
class Indexed:
    """A piece of work added or updated `count` photos (`encoded` of them by the model)."""

    count: int
    encoded: int
    failed: int
    images: int
    folder: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class Moved:
    """`count` photos were moved or renamed; their vectors were kept."""

    count: int
    images: int
    folder: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class PhotosRemoved:
    """`count` photos were deleted from disk, so they left the library."""

    count: int
    images: int
    folder: str | None = None
    path: str | None = None


ServiceEvent: TypeAlias = (
    Started | Stopped | Idle | ServiceError
    | ModelLoading | ModelDownloading | ModelReady | ModelFailed
    | FolderChanged | FolderRemoved
    | ChangesQueued | Progress | FileSkipped | Indexed | Moved | PhotosRemoved
)

__all__ = [
    "ChangesQueued", "FileSkipped", "FolderChanged", "FolderRemoved", "FolderState", "FolderStatus",
    "Idle", "Indexed", "ModelDownloading", "ModelFailed", "ModelLoading", "ModelReady", "Moved",
    "PhotosRemoved", "Progress", "ServiceError", "ServiceEvent", "Started", "Stopped",
]
