"""The watcher's parts: settling touched files, file-system types, event filtering."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from watchdog.events import (
    DirMovedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)

from clipdesk._watcher import ChangeBuffer, _Handler, _unc_path, filesystem_type, polling_reason


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def buffer(clock: Clock) -> ChangeBuffer:
    return ChangeBuffer(debounce=1.0, clock=clock)


def test_a_growing_file_is_handed_over_once_stable(buffer: ChangeBuffer, clock: Clock, tmp_path: Path) -> None:
    f = tmp_path / "a.jpg"
    f.write_bytes(b"x" * 10)
    buffer.touch(str(f))
    for _ in range(5):  # still being written: size changes at every look
        clock.now += 0.6
        with open(f, "ab") as out:
            out.write(b"more")
        buffer.touch(str(f))
        assert buffer.take_settled() == ([], [])
    clock.now += 0.6
    assert buffer.take_settled() == ([], [])  # unchanged, but not yet for a whole second
    clock.now += 0.6
    assert buffer.take_settled() == ([str(f)], [])
    assert buffer.take_settled() == ([], []) and buffer.pending() == 0


def test_many_events_of_one_copy_make_one_change(buffer: ChangeBuffer, clock: Clock, tmp_path: Path) -> None:
    f = tmp_path / "b.png"
    f.write_bytes(b"data")
    for _ in range(20):
        buffer.touch(str(f))
    clock.now += 1.1
    assert buffer.take_settled() == ([str(f)], [])
    clock.now += 1.1
    assert buffer.take_settled() == ([], [])


def test_a_move_is_handed_over_as_one_batch(buffer: ChangeBuffer, clock: Clock, tmp_path: Path) -> None:
    new = tmp_path / "new.jpg"
    new.write_bytes(b"photo")
    buffer.gone(str(tmp_path / "old.jpg"), partner=str(new))
    clock.now += 0.5
    buffer.touch(str(new))  # the new side is seen later: the old side waits for it
    clock.now += 0.6
    assert buffer.take_settled() == ([], [])
    clock.now += 0.6
    assert buffer.take_settled() == ([str(new)], [str(tmp_path / "old.jpg")])


def test_deleting_a_touched_file_drops_it(buffer: ChangeBuffer, clock: Clock, tmp_path: Path) -> None:
    f = tmp_path / "c.jpg"
    f.write_bytes(b"x")
    buffer.touch(str(f))
    f.unlink()
    buffer.gone(str(f))
    clock.now += 1.1
    assert buffer.take_settled() == ([], [str(f)])


def test_a_folder_that_appears_is_scanned_once_settled(buffer: ChangeBuffer, clock: Clock, tmp_path: Path) -> None:
    d = tmp_path / "album"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "x.jpg").write_bytes(b"x")
    (d / ".hidden.jpg").write_bytes(b"x")
    (d / "notes.txt").write_text("x")
    buffer.folder_appeared(str(d))
    clock.now += 1.1
    assert buffer.take_settled() == ([], [])  # found now, settles next
    clock.now += 1.1
    assert buffer.take_settled() == ([str(d / "sub" / "x.jpg")], [])


MOUNTS = """\
sysfs /sys sysfs rw 0 0
/dev/sda1 / ext4 rw,relatime 0 0
server:/export /mnt/nfs nfs4 rw 0 0
//nas/photos /mnt/nas cifs rw 0 0
me@host:/pics /home/me/remote\\040pics fuse.sshfs rw 0 0
/dev/sdb1 /mnt/nas/local ext4 rw 0 0
"""


@pytest.fixture
def mounts(tmp_path: Path) -> str:
    path = tmp_path / "mounts"
    path.write_text(MOUNTS)
    return str(path)


@pytest.mark.parametrize(
    ("folder", "fs_type", "polled"),
    [
        ("/home/me/Pictures", "ext4", False),
        ("/mnt/nfs/2024", "nfs4", True),
        ("/mnt/nas", "cifs", True),
        ("/home/me/remote pics/a", "fuse.sshfs", True),
        ("/mnt/nas/local/x", "ext4", False),  # the deepest mount point wins
        ("/mnt/nfsother", "ext4", False),  # a name prefix is not a mount prefix
    ],
)
def test_network_file_systems_are_polled(mounts: str, folder: str, fs_type: str, polled: bool) -> None:
    assert filesystem_type(folder, mounts) == fs_type
    reason = polling_reason(folder, mounts)
    assert (reason is not None) == polled
    if polled:
        assert fs_type in reason and "polling" in reason


def fake_partitions(monkeypatch: pytest.MonkeyPatch, parts: list[tuple[str, str, str]]) -> None:
    """psutil reports these (mount point, type, options), as on macOS or Windows."""
    import psutil

    def disk_partitions(all: bool = False) -> list[SimpleNamespace]:
        return [SimpleNamespace(device="d", mountpoint=m, fstype=t, opts=o) for m, t, o in parts]

    monkeypatch.setattr(psutil, "disk_partitions", disk_partitions)


def test_unknown_file_system_is_not_polled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Neither a mounts file nor the platform's list: native events are tried.
    def broken(all: bool = False) -> list[object]:
        raise OSError("no list")

    import psutil

    monkeypatch.setattr(psutil, "disk_partitions", broken)
    assert filesystem_type("/x", str(tmp_path / "no-such-file")) is None
    assert polling_reason("/x", str(tmp_path / "no-such-file")) is None


@pytest.mark.parametrize(
    ("folder", "polled"),
    [
        ("/Volumes/Photos/2024", True),  # macOS: an SMB share
        ("/Volumes/Old", True),  # macOS: AFP
        ("/Volumes/Photosx", False),  # a name prefix is not a mount prefix
        ("/Users/me/Pictures", False),
        ("/mnt/z/trip", True),  # Windows: a mapped network drive (its own type says NTFS)
        ("/mnt/c/Users", False),
    ],
)
def test_shares_are_found_without_a_mounts_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str, polled: bool
) -> None:
    fake_partitions(monkeypatch, [
        ("/", "apfs", "local,rw"),
        ("/Volumes/Photos", "smbfs", "nodev,nosuid"),
        ("/Volumes/Old", "afpfs", "nodev"),
        ("/mnt/c", "NTFS", "rw,fixed"),
        ("/mnt/z", "NTFS", "rw,remote"),
    ])
    reason = polling_reason(folder, str(tmp_path / "no-such-file"))
    assert (reason is not None) == polled
    if polled:
        assert "polling" in reason


def test_platform_list_agrees_with_proc_mounts(tmp_path: Path) -> None:
    # The fallback for real, on Linux: psutil's list gives the same type as /proc/mounts.
    if not Path("/proc/mounts").exists():
        pytest.skip("no /proc/mounts to compare with")
    for folder in (str(tmp_path), "/proc", "/"):
        assert filesystem_type(folder, str(tmp_path / "no-such-file")) == filesystem_type(folder)


@pytest.mark.parametrize(
    ("path", "unc"),
    [
        ("\\\\nas\\photos\\2024", True),
        ("//nas/photos", True),
        ("\\\\?\\UNC\\nas\\photos", True),
        ("\\\\?\\C:\\Photos", False),  # a long local path
        ("\\\\.\\PhysicalDrive0", False),
        ("C:\\Photos", False),
    ],
)
def test_windows_network_paths(path: str, unc: bool) -> None:
    assert _unc_path(path) is unc


def test_handler_ignores_what_the_scanner_skips(tmp_path: Path, clock: Clock) -> None:
    root = tmp_path / "root"
    (root / ".cache").mkdir(parents=True)
    for name in ("a.jpg", "b.txt", ".hidden.png", ".cache/c.jpg", "d.JPG"):
        (root / name).write_bytes(b"x")
    buffer = ChangeBuffer(debounce=0.0, clock=clock)
    handler = _Handler(str(root), buffer)
    for name in ("a.jpg", "b.txt", ".hidden.png", ".cache/c.jpg", "d.JPG"):
        handler.dispatch(FileCreatedEvent(str(root / name)))
        handler.dispatch(FileModifiedEvent(str(root / name)))
    # Our own reads of a photo must not look like changes.
    handler.dispatch(FileOpenedEvent(str(root / "e.jpg")))
    handler.dispatch(FileClosedNoWriteEvent(str(root / "e.jpg")))
    changed, gone = buffer.take_settled()
    assert sorted(changed) == [str(root / "a.jpg"), str(root / "d.JPG")] and gone == []


def test_handler_turns_moves_into_gone_and_touched(tmp_path: Path, clock: Clock) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "photo.jpg").write_bytes(b"x")
    buffer = ChangeBuffer(debounce=0.0, clock=clock)
    handler = _Handler(str(root), buffer)
    # An editor's safe save: a hidden temp file renamed over the photo.
    handler.dispatch(FileMovedEvent(str(root / ".photo.jpg.tmp"), str(root / "photo.jpg")))
    # A photo renamed to a name we do not index: only its old path is gone.
    handler.dispatch(FileMovedEvent(str(root / "x.jpg"), str(root / "x.jpg.bak")))
    handler.dispatch(DirMovedEvent(str(root / "old"), str(tmp_path / "elsewhere")))
    handler.dispatch(FileDeletedEvent(str(root)))  # the folder itself: never "all deleted"
    changed, gone = buffer.take_settled()
    assert changed == [str(root / "photo.jpg")]
    assert sorted(gone) == [str(root / "old"), str(root / "x.jpg")]
