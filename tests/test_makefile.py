"""The Makefile: `make run` installs only the app and never runs an invisible window."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")


def _make(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), *args], capture_output=True,
                            text=True, env=env, timeout=60, check=True)
    return result.stdout


def test_make_run_installs_the_app_without_the_test_tools_and_shows_pips_progress(tmp_path):
    plan = _make("-n", "run", f"VENV={tmp_path / 'venv'}")
    installs = [line for line in plan.splitlines() if "pip install" in line]
    assert len(installs) == 1
    assert installs[0].endswith("-e .") and "[dev]" not in installs[0]
    assert "--quiet" not in installs[0] and "-q " not in installs[0]


def test_make_test_adds_the_test_tools(tmp_path):
    plan = _make("-n", "test", f"VENV={tmp_path / 'venv'}")
    assert "-e '.[dev]'" in plan


@pytest.fixture
def fake_venv(tmp_path):
    """A venv whose clipdesk and python print the Qt platform they were given, with fresh stamps."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for name in ("clipdesk", "python"):
        script = venv / "bin" / name
        script.write_text('#!/bin/sh\necho "platform=${QT_QPA_PLATFORM:-unset}"\n')
        script.chmod(0o755)
    for stamp in (".installed-app", ".installed-dev"):
        (venv / stamp).touch()
    return venv


def test_make_run_without_a_display_does_not_choose_the_offscreen_platform(fake_venv):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    assert "platform=unset" in _make("run", f"VENV={fake_venv}", env=env)
    assert "platform=offscreen" in _make("test", f"VENV={fake_venv}", env=env)
