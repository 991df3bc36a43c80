"""A smoke test of the real CLIP code path through the window (a tiny random CLIP)."""

from __future__ import annotations

from .guihelpers import wait_idle


def test_tiny_clip_indexes_searches_and_classifies(qtbot, make_window, photos, tiny_clip):
    window = make_window(model=str(tiny_clip))
    window.add_folder(str(photos))
    qtbot.waitUntil(lambda: window.model.rowCount() == 8, timeout=60_000)
    wait_idle(qtbot, window, timeout=60_000)
    with qtbot.waitSignal(window.results_shown, timeout=30_000):
        window.search_box.setText("a red photo")
        window.run_search()
    assert window.model.total == 8  # random weights: ranking is meaningless, the plumbing is not
    panel = window.classify_panel
    panel.labels_edit.setText("red, blue")
    with qtbot.waitSignal(panel.model.rowsInserted, timeout=30_000):
        panel.add_files([str(photos / "red1.jpg")])
    assert panel.model.items()[0].result is not None
    assert window.last_error is None
