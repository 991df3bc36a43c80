"""How quick the desktop app feels: start-up, search latency, a 10,000-result grid.

    xvfb-run -a python benchmarks/gui_responsiveness.py --db LIBRARY.db [--model ID_OR_FOLDER]

Measures, on a real window (run under a display or xvfb, not the offscreen platform):
- start-up: process start to the window shown, and to the first photos listed; whether
  torch was imported by then;
- search: search box to results on screen, for the first query typed right after start
  and then for 16 queries once the model is warm (the library's photos are searched);
- grid: 10,000 results (the library's photos repeated) laid out, scrolled page by page,
  and the thumbnails on screen decoded after the last scroll (cold cache).
Thumbnails and settings go to a temporary folder; the library is only read.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

QUERIES = ["a dog", "a red car", "beach at sunset", "a cat on a sofa", "green grass",
           "people -night", "a bowl of fruit", "snow"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="clipdesk-bench-")
    os.environ["CLIPDESK_CACHE_DIR"] = scratch

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from clipdesk._gui.mainwindow import MainWindow
    from clipdesk._library import LibraryOptions
    from clipdesk._search import Hit

    settings = QSettings(str(Path(scratch) / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(LibraryOptions(db_path=args.db, model=args.model), qsettings=settings)
    window.resize(1280, 800)
    window.show()
    app.processEvents()
    shown = time.perf_counter() - STARTED
    torch_at_show = "torch" in sys.modules
    while not window.model.rowCount() and time.perf_counter() - STARTED < 60:
        app.processEvents()
        time.sleep(0.001)
    listed = time.perf_counter() - STARTED
    print(f"start-up: window shown {shown * 1000:.0f} ms after process start (torch imported: "
          f"{torch_at_show}); first {window.model.rowCount()} photos listed at {listed * 1000:.0f} ms")

    def search(text: str) -> float:
        answered: list[float] = []
        window.results_shown.connect(lambda: answered.append(time.perf_counter()))
        begin = time.perf_counter()
        window.search_box.setText(text)
        window.run_search()  # an answer may even arrive before this returns
        while not answered and time.perf_counter() - begin < 120:
            app.processEvents()
            time.sleep(0.0005)
        window.results_shown.disconnect()
        if not answered:
            raise SystemExit(f"no answer to {text!r}: {window.last_error}")
        return answered[0] - begin

    first = search("a photo of a dog")
    print(f"search: first query, typed as soon as the photos were listed: {first * 1000:.0f} ms "
          f"({window.model.total} hits)")
    times = [search(q) for q in QUERIES * 2]
    print(f"search: warm, {len(times)} queries: median {statistics.median(times) * 1000:.1f} ms, "
          f"max {max(times) * 1000:.1f} ms")

    photos = [h.path for h in window.model.hits()] or ["/nonexistent.jpg"]
    hits = [Hit(i + 1_000_000, photos[i % len(photos)], 1 - i / 10_000) for i in range(10_000)]
    begin = time.perf_counter()
    window.model.set_hits(hits)
    window.view.viewport().repaint()
    print(f"grid: 10,000 results shown (model reset + first paint) in {(time.perf_counter() - begin) * 1000:.0f} ms")
    bar = window.view.verticalScrollBar()
    begin = time.perf_counter()
    while bar.maximum() < bar.pageStep() * 100 and time.perf_counter() - begin < 10:
        app.processEvents()
    steps, pending = [], []
    for _ in range(100):
        begin = time.perf_counter()
        bar.setValue(bar.value() + bar.pageStep())
        window.view.viewport().repaint()
        steps.append(time.perf_counter() - begin)
        pending.append(window.loader.pending)
        app.processEvents()
    steps.sort()
    print(f"grid: page down + repaint over 100 pages: median {steps[50] * 1000:.1f} ms, "
          f"95th percentile {steps[95] * 1000:.1f} ms, worst {steps[-1] * 1000:.1f} ms; "
          f"thumbnail jobs queued at most {max(pending)}")
    viewport = window.view.viewport().rect()
    visible = [window.model.hit(r).image_id for r in range(window.model.rowCount())  # type: ignore[union-attr]
               if window.view.visualRect(window.model.index(r, 0)).intersects(viewport)]
    begin = time.perf_counter()
    while not all(window.loader.loaded(i) for i in visible):
        if time.perf_counter() - begin > 30:
            break
        app.processEvents()
        time.sleep(0.001)
    print(f"grid: the {len(visible)} thumbnails on screen decoded {(time.perf_counter() - begin) * 1000:.0f} ms "
          "after the last scroll (cold cache)")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
