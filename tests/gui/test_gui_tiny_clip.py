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


def test_switching_model_in_settings_re_encodes_the_library(qtbot, make_window, photos, db_path, tiny_clip):
    import dataclasses

    from clipdesk._store import Store

    from .guihelpers import index

    index(db_path, photos)  # made with the colour test model
    window = make_window(model=None)  # no --model: the settings choose
    qtbot.waitUntil(lambda: window.model.rowCount() == 8, timeout=20_000)
    wait_idle(qtbot, window)
    window.apply_settings(dataclasses.replace(window.settings, model=str(tiny_clip)), confirm=False)
    qtbot.waitUntil(lambda: window.worker.options.model == str(tiny_clip), timeout=20_000)

    def re_encoded() -> bool:
        with Store(db_path, create=False) as store:
            info = store.model()
            return info is not None and info.model_id == str(tiny_clip) and store.count_images() == 8

    qtbot.waitUntil(re_encoded, timeout=60_000)
    wait_idle(qtbot, window, timeout=60_000)
    with qtbot.waitSignal(window.results_shown, timeout=30_000):
        window.search_box.setText("a photo")
        window.run_search()
    assert window.model.total == 8
    assert window.last_error is None
