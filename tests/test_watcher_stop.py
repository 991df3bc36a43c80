"""Stopping a watcher while another thread starts it never fails (the service stops so at close)."""

from __future__ import annotations

import threading

from clipdesk._watcher import Watcher


def test_stop_racing_start_never_raises():
    for _ in range(200):
        watcher = Watcher(lambda changed, gone: None, lambda root, state, message: None, lambda root: None)
        starter = threading.Thread(target=watcher.start)
        starter.start()
        watcher.stop()  # raised "cannot join thread before it is started" when it won the race
        starter.join()
        watcher.stop()


def test_a_stopped_watcher_does_not_start_again():
    watcher = Watcher(lambda changed, gone: None, lambda root, state, message: None, lambda root: None)
    watcher.stop()
    watcher.start()
    assert not any(t.name == "clipdesk-watch" and t.is_alive() for t in threading.enumerate()
                   if t is getattr(watcher, "_thread", None))
