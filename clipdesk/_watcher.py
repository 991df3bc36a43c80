"""Watching library folders for changes, and handing them over once files are settled.

One watchdog observer per library folder: native events (inotify, FSEvents,
ReadDirectoryChangesW) where they work, else polling (network shares, where
another machine's writes raise no local events, and Linux's inotify watch
limit). Events only mark paths as touched; a single thread waits until each
touched file's size and mtime have been stable for `debounce` seconds, so the
many events of one copy make one job and no half-written file is decoded.
The same thread checks that every observer is alive and every folder is
still there (an unmounted share, an unplugged drive) and says so.
No SQL here: changes go to a callback, which the service turns into work.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from ._errors import ClipdeskError
from ._imaging import supported_suffixes
from ._paths import is_within
from ._scanner import is_candidate, scan, stat_file

log = logging.getLogger(__name__)

# File systems on which inotify does not see changes made by other machines
# (or by the host, for VM shares): these folders are polled.
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "ceph", "lustre", "gpfs",
        "glusterfs", "davfs", "vboxsf", "virtiofs", "drvfs", "fuse.sshfs", "sshfs",
        "fuse.rclone", "fuse.s3fs", "fuse.davfs2", "fuse.glusterfs", "fuse.ceph",
        "fuse.gvfsd-fuse", "fuse.smbnetfs", "fuse.vmhgfs-fuse", "fuse.gcsfuse",
        "afpfs", "webdav",  # macOS
        "remote",  # Windows network drives and UNC paths (see REMOTE)
    }
)
# The type given to Windows network drives and paths, whose own type says nothing.
REMOTE = "remote"

# Only these events matter; leaving out opened/closed-without-write/attrib
# keeps our own reads of the photos from waking the watcher.
_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileMovedEvent, FileDeletedEvent,
    DirCreatedEvent, DirMovedEvent, DirDeletedEvent,
]


def check_poll_interval(seconds: float) -> float:
    """The seconds between looks at a polled folder, refused unless above zero: a zero
    (or negative) interval would look again at once, forever, keeping a core busy."""
    if not (math.isfinite(seconds) and seconds > 0):
        raise ClipdeskError(
            f"The poll interval must be a number of seconds above 0, e.g. 5 (got {seconds:g})."
        )
    return seconds


HEALTH_INTERVAL = 2.0  # seconds between checks that folders and observers are alive
MAX_RESTARTS = 5  # observer restarts per folder before it is reported as an error

ChangesCallback = Callable[[list[str], list[str]], None]
"""(changed files, gone files or folders), called from the watcher's thread."""
StateCallback = Callable[[str, str, "str | None"], None]
"""(folder, state, message): state is "watching", "polling", "error" or "missing"."""
RootCallback = Callable[[str], None]
"""(folder) that needs a full reconcile (it came back, or its observer was restarted)."""


# -- file-system types ---------------------------------------------------------


def _unescape_mount(field: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash as octal escapes.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def _mount_table(mounts: str) -> list[tuple[str, str]] | None:
    """(mount point, file-system type) of every mount, or None where nothing tells.

    Linux's mounts file where there is one; elsewhere (macOS, Windows, the BSDs) the
    platform's own list, through psutil.
    """
    try:
        with open(mounts, encoding="utf-8", errors="surrogateescape") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return _platform_mounts()
    return [(_unescape_mount(p[1]), p[2]) for p in map(str.split, lines) if len(p) >= 3]


def _platform_mounts() -> list[tuple[str, str]] | None:
    try:
        import psutil

        partitions = psutil.disk_partitions(all=True)
    except Exception:  # noqa: BLE001 - not knowing only means native events are tried first
        log.info("could not list the mounted file systems", exc_info=True)
        return None
    # Windows names a mapped network drive's type after the server's disk ("NTFS"); its
    # options say "remote".
    return [
        (part.mountpoint, REMOTE if "remote" in part.opts.split(",") else part.fstype)
        for part in partitions
    ]


def _unc_path(path: str) -> bool:
    """True for a Windows network path: \\\\server\\share\\… or \\\\?\\UNC\\server\\share\\…"""
    path = path.replace("/", "\\")
    if path[:8].upper() == "\\\\?\\UNC\\":
        return True
    return path.startswith("\\\\") and not path.startswith(("\\\\?\\", "\\\\.\\"))


def filesystem_type(path: str, mounts: str = "/proc/mounts") -> str | None:
    """The type of the file system holding path, or None where unknown."""
    path = os.path.realpath(path)
    if os.name == "nt" and _unc_path(path):
        return REMOTE
    table = _mount_table(mounts)
    if table is None:
        return None
    best, best_type = "", None
    for point, fs_type in table:
        if is_within(path, point) and len(point) >= len(best):
            best, best_type = point, fs_type
    return best_type


def polling_reason(path: str, mounts: str = "/proc/mounts") -> str | None:
    """Why this folder cannot rely on native events, or None if it can."""
    fs_type = filesystem_type(path, mounts)
    if fs_type is not None and (fs_type in NETWORK_FILESYSTEMS or fs_type.startswith("fuse.sshfs")):
        return (
            f"{path} is on a network file system ({fs_type}), where change events from other "
            "machines are not delivered; checking it for changes by polling instead"
        )
    return None


def native_observer() -> BaseObserver:
    """The platform's event-based observer (a seam for tests)."""
    from watchdog.observers import Observer

    return Observer()


# -- debouncing ----------------------------------------------------------------


@dataclass
class _Touched:
    key: tuple[int, int] | None  # (size, mtime_ns) at the last look
    stable_since: float
    last_event: float


@dataclass
class _Gone:
    since: float
    partner: str | None = None  # where it moved to: wait until that side is settled too


@dataclass
class ChangeBuffer:
    """Touched and gone paths until they settle; thread-safe."""

    debounce: float
    clock: Callable[[], float] = time.monotonic
    _touched: dict[str, _Touched] = field(default_factory=dict)
    _dirs: dict[str, float] = field(default_factory=dict)
    _gone: dict[str, _Gone] = field(default_factory=dict)
    # Recently handed-over files, so scanning a folder that just arrived does not hand them over twice.
    _released: dict[str, tuple[tuple[int, int] | None, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    wake: threading.Event = field(default_factory=threading.Event)

    def touch(self, path: str) -> None:
        """A file was created or written to."""
        now = self.clock()
        stat = stat_file(path)
        key = (stat.size, stat.mtime_ns) if stat else None
        with self._lock:
            entry = self._touched.get(path)
            if entry is None:
                self._touched[path] = _Touched(key, now, now)
            else:
                entry.last_event = now
                if entry.key != key:
                    entry.key, entry.stable_since = key, now
        self.wake.set()

    def folder_appeared(self, path: str) -> None:
        """A folder was created or moved in: its files are scanned when it settles."""
        with self._lock:
            self._dirs[path] = self.clock()
        self.wake.set()

    def gone(self, path: str, partner: str | None = None) -> None:
        """A file or folder was deleted or moved away (to partner, if inside a library folder)."""
        with self._lock:
            for touched in [p for p in self._touched if is_within(p, path)]:
                del self._touched[touched]
            self._gone[path] = _Gone(self.clock(), partner)
        self.wake.set()

    def drop_under(self, root: str) -> None:
        """Forget everything pending below root (a folder no longer watched, or missing)."""
        def below(path: str) -> bool:
            return is_within(path, root)

        with self._lock:
            self._touched = {p: e for p, e in self._touched.items() if not below(p)}
            self._dirs = {p: t for p, t in self._dirs.items() if not below(p)}
            self._gone = {p: g for p, g in self._gone.items() if not below(p)}

    def pending(self) -> int:
        with self._lock:
            return len(self._touched) + len(self._dirs) + len(self._gone)

    def take_settled(self) -> tuple[list[str], list[str]]:
        """Files stable for `debounce` seconds, and gone paths whose new place (if any) is settled."""
        now = self.clock()
        with self._lock:
            dirs = [d for d, since in self._dirs.items() if now - since >= self.debounce]
            for d in dirs:
                del self._dirs[d]
        for d in dirs:
            # Files in a folder that arrived whole raise no events of their own.
            for stat in scan(d):
                key = (stat.size, stat.mtime_ns)
                with self._lock:
                    released = self._released.get(stat.path)
                    if stat.path not in self._touched and (released is None or released[0] != key):
                        self._touched[stat.path] = _Touched(key, now, now)
        with self._lock:
            items = list(self._touched.items())
        looks = {path: stat_file(path) for path, _ in items}
        changed: list[str] = []
        gone: list[str] = []
        with self._lock:
            for path, entry in items:
                if self._touched.get(path) is not entry:
                    continue  # replaced meanwhile
                look = looks[path]
                now_key = (look.size, look.mtime_ns) if look else None
                if now_key != entry.key:
                    entry.key, entry.stable_since = now_key, now
                elif now - entry.stable_since >= self.debounce and now - entry.last_event >= self.debounce:
                    del self._touched[path]
                    self._released[path] = (now_key, now)
                    # A file that vanished again is handed over too: the indexer drops it.
                    changed.append(path)
            horizon = now - 10 * max(self.debounce, 1.0)
            self._released = {p: r for p, r in self._released.items() if r[1] >= horizon}
            for path, left in list(self._gone.items()):
                if now - left.since < self.debounce or self._waits_for(left.partner):
                    continue
                del self._gone[path]
                gone.append(path)
        return changed, gone

    def _waits_for(self, partner: str | None) -> bool:
        if partner is None:
            return False
        return any(is_within(p, partner) for table in (self._touched, self._dirs) for p in table)


class _Handler(FileSystemEventHandler):
    """Turns watchdog events for one library folder into ChangeBuffer calls."""

    def __init__(self, root: str, buffer: ChangeBuffer) -> None:
        self.root = root
        self.buffer = buffer
        self.suffixes = supported_suffixes()

    def _visible(self, path: str) -> bool:
        # The scanner skips hidden files and folders; so do we.
        if not is_within(path, self.root):
            return False
        rel = os.path.relpath(path, self.root)
        return rel == "." or not any(part.startswith(".") for part in rel.split(os.sep))

    def _image(self, path: str) -> bool:
        return self._visible(path) and is_candidate(os.path.basename(path), self.suffixes)

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            self._dispatch(event)
        except Exception:  # a surprise in one event must not kill the observer
            log.exception("error handling %r", event)

    def _dispatch(self, event: FileSystemEvent) -> None:
        src = os.fsdecode(event.src_path)
        kind = event.event_type
        if kind == "moved":
            dest = os.fsdecode(event.dest_path)
            wanted = self._visible(dest) and (event.is_directory or self._image(dest))
            if self._visible(src) and src != self.root:
                self.buffer.gone(src, dest if wanted else None)
            if wanted:
                if event.is_directory:
                    self.buffer.folder_appeared(dest)
                else:
                    self.buffer.touch(dest)
        elif kind == "deleted":
            if self._visible(src) and src != self.root:
                self.buffer.gone(src)
        elif event.is_directory:
            if kind == "created" and self._visible(src):
                self.buffer.folder_appeared(src)
        elif kind in ("created", "modified", "closed") and self._image(src):
            self.buffer.touch(src)


# -- one folder ----------------------------------------------------------------


@dataclass
class _Folder:
    root: str
    observer: BaseObserver | None = None
    state: str = ""  # none reported yet
    message: str | None = None
    polling: str | None = None  # why this folder is polled, once decided
    device: int | None = None  # st_dev when watching began: a change means unmounted
    fs_type: str | None = None
    restarts: int = 0


class Watcher:
    """Watches library folders and reports settled changes. Methods are thread-safe."""

    def __init__(
        self,
        on_changes: ChangesCallback,
        on_state: StateCallback,
        on_reconcile: RootCallback,
        *,
        debounce: float = 1.0,
        force_polling: bool = False,
        poll_interval: float = 5.0,
        health_interval: float | None = None,
        mounts: str = "/proc/mounts",
    ) -> None:
        self.on_changes = on_changes
        self.on_state = on_state
        self.on_reconcile = on_reconcile
        self.buffer = ChangeBuffer(debounce)
        self.force_polling = force_polling
        self.poll_interval = check_poll_interval(poll_interval)
        self.health_interval = HEALTH_INTERVAL if health_interval is None else health_interval
        self.mounts = mounts
        self._folders: dict[str, _Folder] = {}
        self._lock = threading.RLock()
        # Callbacks found under the lock, made after it is released (the
        # service calls us while holding its own lock, so never the reverse).
        self._notes: list[tuple[str, str, str | None]] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- public -------------------------------------------------------------

    def start(self) -> None:
        # Under the lock, so a stop() from another thread never sees a thread not yet started.
        with self._lock:
            if self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(target=self._loop, name="clipdesk-watch", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Stop every observer and the settling thread, and wait for them."""
        self._stopping.set()
        self.buffer.wake.set()
        with self._lock:
            folders = list(self._folders.values())
            self._folders.clear()
        for folder in folders:
            self._stop_observer(folder)
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def roots(self) -> list[str]:
        with self._lock:
            return list(self._folders)

    def watch(self, root: str) -> None:
        """Begin watching a library folder (no-op if already watched)."""
        with self._lock:
            if root in self._folders or self._stopping.is_set():
                return
            folder = _Folder(root)
            self._folders[root] = folder
            self._begin(folder)
        self._flush_notes()

    def unwatch(self, root: str) -> None:
        with self._lock:
            folder = self._folders.pop(root, None)
        if folder is not None:
            self._stop_observer(folder)
            self.buffer.drop_under(root)

    # -- observers ----------------------------------------------------------

    def _set_state(self, folder: _Folder, state: str, message: str | None) -> None:
        if (folder.state, folder.message) == (state, message):
            return
        folder.state, folder.message = state, message
        with self._lock:
            self._notes.append((folder.root, state, message))

    def _flush_notes(self) -> None:
        with self._lock:
            notes, self._notes = self._notes, []
        for root, state, message in notes:
            if state == "reconcile":
                self.on_reconcile(root)
            else:
                self.on_state(root, state, message)

    def _begin(self, folder: _Folder) -> bool:
        """Start an observer for the folder, falling back to polling if native events fail."""
        try:
            st = os.stat(folder.root)
        except OSError:
            self._set_state(folder, "missing", _missing_message(folder.root))
            return False
        folder.device = st.st_dev
        folder.fs_type = filesystem_type(folder.root, self.mounts)
        if folder.polling is None:
            if self.force_polling:
                folder.polling = "polling for changes (forced)"
            else:
                folder.polling = polling_reason(folder.root, self.mounts)
        if folder.polling is None:
            try:
                folder.observer = self._start_observer(folder, polling=False)
                self._set_state(folder, "watching", None)
                return True
            except OSError as exc:
                folder.polling = _native_failure(folder.root, exc)
                if folder.polling is None:
                    self._set_state(folder, "error", f"cannot watch {folder.root}: {exc}")
                    return False
        try:
            folder.observer = self._start_observer(folder, polling=True)
        except OSError as exc:
            self._set_state(folder, "error", f"cannot watch {folder.root}: {exc.strerror or exc}")
            return False
        self._set_state(folder, "polling", folder.polling)
        return True

    def _start_observer(self, folder: _Folder, *, polling: bool) -> BaseObserver:
        observer = PollingObserver(timeout=self.poll_interval) if polling else native_observer()
        observer.daemon = True
        observer.schedule(_Handler(folder.root, self.buffer), folder.root, recursive=True, event_filter=_EVENTS)
        try:
            observer.start()
        except BaseException:
            _quiet_stop(observer)
            raise
        return observer

    def _stop_observer(self, folder: _Folder) -> None:
        observer, folder.observer = folder.observer, None
        if observer is not None:
            _quiet_stop(observer)

    # -- the settling and health thread ---------------------------------------

    def _loop(self) -> None:
        tick = max(0.02, min(0.25, self.buffer.debounce / 4))
        next_health = time.monotonic() + self.health_interval
        while not self._stopping.is_set():
            if self.buffer.pending():
                self._stopping.wait(tick)
            else:
                # Nothing settling: sleep until an event or the next health check.
                self.buffer.wake.wait(max(0.0, next_health - time.monotonic()))
            self.buffer.wake.clear()
            if self._stopping.is_set():
                return
            try:
                if time.monotonic() >= next_health:
                    next_health = time.monotonic() + self.health_interval
                    self.check_health()
                self._hand_over()
            except Exception:  # the watcher thread must survive a callback's bug
                log.exception("watcher error")

    def _hand_over(self) -> None:
        changed, gone = self.buffer.take_settled()
        if not changed and not gone:
            return
        # Never report deletions under a folder that is not there: an unmounted
        # share looks like an empty folder, and its photos must be kept. Look
        # now, not at the last health check: the share may have gone since.
        with self._lock:
            present = [
                f.root for f in self._folders.values()
                if f.state in ("watching", "polling") and self._present(f)
            ]
        gone = [p for p in gone if any(is_within(p, r) for r in present)]
        changed = [p for p in changed if any(is_within(p, r) for r in present)]
        if changed or gone:
            self.on_changes(changed, gone)

    def check_health(self) -> None:
        """Notice folders that vanished or came back, and observers that died."""
        with self._lock:
            folders = list(self._folders.values())
        for folder in folders:
            with self._lock:
                if self._folders.get(folder.root) is not folder or self._stopping.is_set():
                    continue
                self._check(folder)
            self._flush_notes()

    def _check(self, folder: _Folder) -> None:
        present = self._present(folder)
        if not present:
            if folder.state != "missing":
                self._stop_observer(folder)
                self.buffer.drop_under(folder.root)
                self._set_state(folder, "missing", _missing_message(folder.root))
            return
        observer = folder.observer
        alive = observer is not None and observer.is_alive() and all(
            e.is_alive() for e in observer.emitters
        )
        if alive and folder.state in ("watching", "polling"):
            return
        came_back = folder.state == "missing"
        if folder.state == "error" and folder.restarts > MAX_RESTARTS:
            return
        self._stop_observer(folder)
        if not came_back:
            folder.restarts += 1
            log.info("restarting the observer of %s", folder.root)
        if folder.restarts > MAX_RESTARTS:
            self._set_state(
                folder, "error",
                f"watching {folder.root} keeps failing; changes are found only by the periodic check",
            )
            return
        if self._begin(folder):
            # Changes made while nobody was looking are found by a full reconcile.
            self._notes.append((folder.root, "reconcile", None))

    def _present(self, folder: _Folder) -> bool:
        try:
            st = os.stat(folder.root)
        except OSError:
            return False
        if not os.path.isdir(folder.root):
            return False
        if folder.device is not None and st.st_dev != folder.device:
            # Another device under the same path: an unmounted share leaves its
            # (empty) mount point; a remounted one has the same kind of file system.
            fs_type = filesystem_type(folder.root, self.mounts)
            if fs_type != folder.fs_type:
                return False
            folder.device = st.st_dev
        return True


def _missing_message(root: str) -> str:
    return f"{root} is not there (an unplugged drive or unmounted share?); its photos are kept"


def _native_failure(root: str, exc: OSError) -> str | None:
    """The fallback message for a native observer that could not start, or None to give up."""
    if exc.errno == errno.ENOSPC:
        return (
            f"the system's limit of inotify watches is reached, so {root} is checked by polling; "
            "raise fs.inotify.max_user_watches (sysctl) for instant updates"
        )
    if exc.errno == errno.EMFILE:
        return (
            f"the system's limit of inotify instances is reached, so {root} is checked by polling; "
            "raise fs.inotify.max_user_instances (sysctl) for instant updates"
        )
    if exc.errno in (errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
        return f"native change events are not available for {root}; checking it by polling"
    return None


def _quiet_stop(observer: Any) -> None:
    try:
        observer.stop()
        if observer.is_alive():
            observer.join(timeout=10)
    except Exception:  # stopping a half-started observer may fail; it is gone either way
        log.debug("error stopping observer", exc_info=True)


__all__ = [
    "NETWORK_FILESYSTEMS",
    "ChangeBuffer",
    "Watcher",
    "filesystem_type",
    "native_observer",
    "polling_reason",
]
