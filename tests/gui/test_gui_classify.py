"""Drag-and-drop classification: dropped photos get label bars, best first; CSV and sorting."""

from __future__ import annotations

import csv

from .guihelpers import drop, photo, wait_idle

from clipdesk._gui.classifymodel import RankedRole
from clipdesk._sorting import apply_sort, plan_sort


def test_dropped_images_get_the_right_label_first(qtbot, make_window, tmp_path):
    images = [photo(tmp_path / "in" / f"{c}.png", c) for c in ("red", "green", "blue")]
    window = make_window()
    panel = window.classify_panel
    panel.labels_edit.setText("blue, red, green")
    with qtbot.waitSignal(panel.model.rowsInserted, timeout=20_000):
        drop(panel.list, images)
    assert panel.model.rowCount() == 3
    for row, colour in enumerate(("red", "green", "blue")):
        ranked = panel.model.index(row, 0).data(RankedRole)
        assert ranked[0][0] == colour
        assert ranked[0][1] > 0.9
        assert [p for _, p in ranked] == sorted((p for _, p in ranked), reverse=True)
    wait_idle(qtbot, window)

    target = tmp_path / "out.csv"
    panel.write_csv(str(target))
    rows = list(csv.DictReader(target.open()))
    assert [r["best"] for r in rows] == ["red", "green", "blue"]
    assert set(rows[0]) == {"path", "best", "blue", "red", "green"}


def test_unreadable_and_unusable_input_shows_a_message(qtbot, make_window, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    window = make_window()
    panel = window.classify_panel
    panel.labels_edit.setText("only one")
    with qtbot.waitSignal(panel.message) as blocker:
        drop(panel.list, [bad])
    assert "at least two labels" in blocker.args[0]
    panel.labels_edit.setText("cat, dog")
    with qtbot.waitSignal(panel.model.rowsInserted, timeout=20_000):
        drop(panel.list, [bad])
    assert panel.model.index(0, 0).data(RankedRole) == []
    wait_idle(qtbot, window)


def test_sorting_copies_into_label_folders_and_never_overwrites(tmp_path):
    a = photo(tmp_path / "a" / "x.png", "red")
    b = photo(tmp_path / "b" / "x.png", "red")
    c = photo(tmp_path / "c.png", "blue")
    dest = tmp_path / "sorted"
    photo(dest / "red" / "x.png", "green")  # already there: must survive
    report = apply_sort(plan_sort([(str(a), "red"), (str(b), "red"), (str(c), "bl/ue?")], dest))
    assert report.done == 3 and not report.failed
    assert sorted(p.name for p in (dest / "red").iterdir()) == ["x (2).png", "x (3).png", "x.png"]
    assert (dest / "bl_ue_" / "c.png").exists()
    assert a.exists() and b.exists() and c.exists()  # copied, not moved

    moved = apply_sort(plan_sort([(str(c), "blue")], dest), move=True)
    assert moved.done == 1 and not c.exists() and (dest / "blue" / "c.png").exists()
