"""Each benchmark still runs: a smoke run with a tiny model, tiny sizes, and no ../shared."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_bench(name: str, tmp_path: Path, *args: str) -> dict[str, object]:
    env = dict(
        os.environ,
        # The smoke runs must not depend on the machine's shared folder.
        CLIPDESK_SHARED=str(tmp_path / "no-shared"),
        PYTHONWARNINGS="ignore",
        QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
    )
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), "--quick", "--json",
         "--cache-dir", str(tmp_path / "cache"), *args],
        capture_output=True, text=True, env=env, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert isinstance(result, dict)
    return result


def test_bench_index(tmp_path: Path) -> None:
    result = run_bench("bench_index.py", tmp_path)
    sets = result["sets"]
    assert isinstance(sets, dict) and set(sets) == {"12mp", "640px"}
    for entry in sets.values():
        assert entry["failed"] == 0
        assert all(entry["median_images_per_s"][k] > 0 for k in ("index", "model", "naive"))
        assert entry["index/model"] > 0 and entry["index/naive"] > 0


def test_bench_search(tmp_path: Path) -> None:
    result = run_bench("bench_search.py", tmp_path, "--cold", "1")
    entry = result["sizes"]["2000"]
    # Small libraries are searched exactly: recall is perfect, whatever the timing.
    assert entry["recall_at_10"] == 1.0
    assert entry["repeated_query_cache_hits"] > 0
    assert entry["search_with_text"]["p50_ms"] > 0
    assert entry["cold_cli"]["median_s"] > 0
    assert entry["db_bytes_per_image"] > 0


def test_bench_startup(tmp_path: Path) -> None:
    result = run_bench("bench_startup.py", tmp_path)
    assert result["index"]["images"] == 4
    assert result["index"]["peak_rss_mb"] > 0
    window = result["window"]
    assert "painted_s" in window or "qt_import_s" in window


@pytest.mark.parametrize("name", ["bench_index.py", "bench_search.py", "bench_startup.py"])
def test_bench_help(name: str) -> None:
    proc = subprocess.run([sys.executable, str(BENCHMARKS / name), "--help"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and "--json" in proc.stdout


def test_bench_vectorindex(tmp_path: Path) -> None:
    result = run_bench("bench_vectorindex.py", tmp_path)
    assert result["side_file_read"]["portable_mapping"]["p50_ms"] > 0
    assert result["vector_search_k10"]["p50_ms"] > 0
    assert result["background_read_threads_left"] == 0


@pytest.mark.parametrize("where", [[], ["--library"]])
def test_bench_duplicates_speed(tmp_path: Path, where: list[str]) -> None:
    result = run_bench("bench_duplicates.py", tmp_path, "--speed", *where)
    assert result["count"] == 2000 and result["seconds"] >= 0  # type: ignore[operator]
    assert result["groups"] > 0  # type: ignore[operator]  # the planted copies are found


def test_bench_labels(tmp_path: Path) -> None:
    result = run_bench("bench_labels.py", tmp_path)
    assert result["count"] == 2000 and result["label_filter_kept"] > 0
    assert result["apply_s"] > 0 and result["new_batch_of_32_ms"] > 0
