"""App start-up time and peak memory while indexing.

1. Window shown: launches `clipdesk gui` in a new process (offscreen when there
   is no display) with a small hook that notes the moment the main window gets
   its first Show and first Paint event, then exits. Time is from launch. If this
   clipdesk has no GUI, reports the import time of what a GUI would need instead.
2. Peak RSS of a `clipdesk index` process (ViT-B/32 sizes) on generated 12-MP JPEGs.

    python benchmarks/bench_startup.py
    python benchmarks/bench_startup.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import add_common_options, emit, generated_photos, log, median, model_folder, subset  # noqa: E402

TARGETS = {"window_shown_s": 1.0, "index_peak_rss_mb": 1500.0}

# Runs in the launched process: notes the first Show and Paint of a top-level window.
HOOK = r"""
import os, sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget

seen = {}

class Watch(QObject):
    def eventFilter(self, obj, event):
        kind = event.type()
        if kind in (QEvent.Type.Show, QEvent.Type.Paint) and isinstance(obj, QWidget):
            window = obj.window()
            if window is not None and window.isVisible() and type(window).__name__ != "QWidget":
                name = "shown" if kind == QEvent.Type.Show else "painted"
                if name not in seen:
                    seen[name] = time.time()
                    if name == "painted":
                        print("STARTUP " + repr(seen), flush=True)
                        os._exit(0)
        return False

app = QApplication([sys.argv[0]])
watch = Watch()
app.installEventFilter(watch)
QTimer.singleShot(int(float(os.environ.get("BENCH_TIMEOUT_S", "60")) * 1000), lambda: os._exit(3))
from clipdesk._cli import main
sys.exit(main(sys.argv[1:]))
"""

IMPORTS = r"""
import time, sys
start = time.perf_counter()
import PySide6.QtWidgets  # noqa
qt = time.perf_counter() - start
import clipdesk._library, clipdesk._search  # noqa
core = time.perf_counter() - start - qt
print("IMPORTS", {"qt_s": qt, "core_s": core, "torch_loaded": "torch" in sys.modules})
"""


def has_gui() -> bool:
    try:
        import importlib.util

        return importlib.util.find_spec("clipdesk._gui.app") is not None
    except ImportError:
        return False


def window_shown(db: Path, runs: int, timeout: float) -> dict[str, Any]:
    env = dict(os.environ, BENCH_TIMEOUT_S=str(timeout), PYTHONWARNINGS="ignore")
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    shown, painted = [], []
    for _ in range(runs):
        start = time.time()
        proc = subprocess.run([sys.executable, "-c", HOOK, "--db", str(db), "gui"], env=env,
                              capture_output=True, text=True, timeout=timeout + 30, check=False)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("STARTUP ")), None)
        if line is None:
            raise RuntimeError(f"the window never showed (exit {proc.returncode}): {proc.stderr[-2000:]}")
        seen = eval(line[len("STARTUP "):], {})  # our own repr of a dict of floats
        shown.append(seen.get("shown", seen["painted"]) - start)
        painted.append(seen["painted"] - start)
    return {"how": "clipdesk gui, first Show and Paint of its main window",
            "shown_s": round(median(shown), 3), "painted_s": round(median(painted), 3),
            "runs_painted_s": [round(p, 3) for p in painted]}


def gui_imports(runs: int) -> dict[str, Any]:
    """Without a GUI module: what starting Qt and the core's search modules costs."""
    qt, core, torch = [], [], False
    for _ in range(runs):
        proc = subprocess.run([sys.executable, "-c", IMPORTS], capture_output=True, text=True, check=True)
        data = eval(proc.stdout.split("IMPORTS ", 1)[1], {})
        qt.append(data["qt_s"])
        core.append(data["core_s"])
        torch = torch or data["torch_loaded"]
    return {"how": "no clipdesk._gui in this tree: import time of PySide6.QtWidgets and the core",
            "qt_import_s": round(median(qt), 3), "core_import_s": round(median(core), 3),
            "torch_imported_at_start": torch}


def index_peak_rss(model: Path, photos: Path, db: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "clipdesk", "--db", str(db), "--model", str(model),
           "index", str(photos), "--json"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    report = json.loads(proc.stdout.read() if proc.stdout else "{}") if status == 0 else {}
    return {"peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "images": report.get("encoded"),
            "wall_s": round(time.perf_counter() - start, 1)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    folder, description = model_folder(args)
    runs = 1 if args.quick else args.runs
    result: dict[str, Any] = {"benchmark": "startup", "model": description, "targets": TARGETS}
    with tempfile.TemporaryDirectory(prefix="clipdesk-bench-startup-") as tmp:
        work = Path(tmp)
        if has_gui() and not args.no_gui:
            log("timing `clipdesk gui` to its first painted window")
            result["window"] = window_shown(work / "empty.db", runs, args.timeout)
        else:
            result["window"] = gui_imports(runs)
        size = (800, 600) if args.quick else (4000, 3000)
        count = 4 if args.quick else args.images
        photos = subset(generated_photos(args.cache_dir, count, size), count, work / "photos")
        log(f"indexing {count} {size[0]}x{size[1]} JPEGs with {description} for peak RSS")
        result["index"] = index_peak_rss(folder, photos, work / "index.db")
    return result


def text_report(result: dict[str, Any]) -> str:
    window, index = result["window"], result["index"]
    if "painted_s" in window:
        first = (f"window shown {window['shown_s']} s, painted {window['painted_s']} s after launch"
                 f" (runs {window['runs_painted_s']}; target ≤ {TARGETS['window_shown_s']} s)")
    else:
        first = (f"{window['how']}: Qt {window['qt_import_s']} s, core {window['core_import_s']} s;"
                 f" torch imported at start: {window['torch_imported_at_start']}")
    return "\n".join([
        first,
        f"peak RSS of `clipdesk index` ({result['model']}, {index['images']} images): "
        f"{index['peak_rss_mb']} MB (target ≤ {TARGETS['index_peak_rss_mb']} MB)",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    parser.add_argument("--runs", type=int, default=5, help="launches to time (default 5)")
    parser.add_argument("--images", type=int, default=64, help="12-MP JPEGs to index for peak RSS (default 64)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the window")
    parser.add_argument("--no-gui", action="store_true", help="skip launching the GUI")
    args = parser.parse_args(argv)
    emit(run(args), args.json, text_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
