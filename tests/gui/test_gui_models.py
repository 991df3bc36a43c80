"""The item models pass Qt's model tester; a 10,000-result grid stays quick."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import Qt

from clipdesk._classify import Classification
from clipdesk._events import FolderState, FolderStatus
from clipdesk._gui.classifymodel import ClassifyModel
from clipdesk._gui.folderspanel import FoldersModel
from clipdesk._gui.resultsmodel import PathRole, ResultsModel, relevance_cutoff
from clipdesk._hitlist import HitList
from clipdesk._library import ClassifiedImage
from clipdesk._search import Hit


def hits(n: int) -> list[Hit]:
    return [Hit(i, f"/photos/{i:05d}.jpg", 1.0 - i / n) for i in range(n)]


def test_results_model(qtmodeltester):
    model = ResultsModel()
    model.set_hits(hits(50))
    qtmodeltester.check(model)
    model.set_relevance(0.5)
    qtmodeltester.check(model)
    assert model.rowCount() == 25 and model.total == 50
    mime = model.mimeData([model.index(0, 0), model.index(3, 0)])
    assert [u.toLocalFile() for u in mime.urls()] == ["/photos/00000.jpg", "/photos/00003.jpg"]
    assert model.flags(model.index(0, 0)) & Qt.ItemFlag.ItemIsDragEnabled


def test_relevance_cutoff_is_relative_to_the_results():
    assert relevance_cutoff([0.2, 0.3, 0.4], 0.5) == pytest.approx(0.3)
    assert relevance_cutoff([0.2, 0.3, 0.4], 0.0) == pytest.approx(0.2)
    assert relevance_cutoff([], 0.9) == 0.0


def test_classify_model(qtmodeltester):
    model = ClassifyModel()
    model.set_results([
        ClassifiedImage("/a.jpg", Classification({"cat": 0.2, "dog": 0.8})),
        ClassifiedImage("/b.jpg", None, "unreadable"),
    ])
    model.set_results([ClassifiedImage("/a.jpg", Classification({"cat": 0.9, "dog": 0.1}))])
    qtmodeltester.check(model)
    assert model.rowCount() == 2
    assert model.index(0, 0).data(Qt.ItemDataRole.UserRole + 2)[0] == ("cat", 0.9)


def test_folders_model(qtmodeltester):
    model = FoldersModel()
    model.set_folders([FolderStatus("/b", 3, FolderState.WATCHING), FolderStatus("/a", 0, FolderState.ERROR, "gone")])
    qtmodeltester.check(model)
    assert model.index(0, 0).data() == "/a"
    assert model.index(1, 2).data() == "watching"


def test_ten_thousand_results_lay_out_and_scroll_quickly(qtbot, make_window):
    window = make_window()
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    start = time.perf_counter()
    window.model.set_hits(hits(10_000))
    window.pages.setCurrentWidget(window.view)
    window.view.scrollToBottom()
    window.view.repaint()
    window.view.scrollToTop()
    window.view.repaint()
    elapsed = time.perf_counter() - start
    assert window.view.indexAt(window.view.viewport().rect().center()).data(PathRole)
    # Only the rows on screen asked for thumbnails, not all 10,000.
    assert window.loader.pending < 200
    assert elapsed < 3.0, f"10,000 results took {elapsed:.2f} s to show"

    window.size_slider.setValue(80)  # the size slider re-lays the grid out with smaller cells
    qtbot.waitUntil(lambda: window.view.visualRect(window.model.index(0, 0)).width() < 120, timeout=5_000)


def test_a_library_sized_list_is_shown_and_compared_quickly(qtmodeltester):
    # Browsing a million-photo library puts every photo in the grid: the GUI thread
    # must not build, compare or index a million objects to show it again.
    n = 1_000_000
    listing = HitList(np.arange(n), [f"/photos/{i:07d}.jpg" for i in range(n)])
    model = ResultsModel()
    start = time.perf_counter()
    model.set_hits(listing)
    assert not model.set_hits(HitList(np.arange(n), list(listing.paths)))  # same list: no reset
    assert model.row_of(765_432) == 765_432
    elapsed = time.perf_counter() - start
    assert model.rowCount() == n and model.index(n - 1, 0).data(PathRole) == "/photos/0999999.jpg"
    assert elapsed < 2.0, f"a million rows took {elapsed:.2f} s on the GUI thread"
    model.set_hits(hits(20))
    qtmodeltester.check(model)
