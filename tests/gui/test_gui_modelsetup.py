"""The first run without a model: a window in plain words, a model folder fixes it, and folders
added meanwhile are remembered and indexed when the model arrives."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QFileDialog

from clipdesk._gui import modelsetup
from clipdesk._library import Library, LibraryOptions
from clipdesk._testing.tiny_clip import build_tiny_clip

from .guihelpers import WAIT_MS


@pytest.mark.parametrize(("message", "said"), [
    ("The model 'openai/clip-vit-base-patch32' is not downloaded yet and cannot be fetched (HF_HUB_OFFLINE "
     "is set). Connect to the internet once so clipdesk can download it, or pass --model /path/to/folder.",
     "The model 'openai/clip-vit-base-patch32' is not downloaded yet and cannot be fetched."),
    ("No model folder at /home/me/clip.", "No model folder at /home/me/clip."),
    ("Pass --allow-pickle to load these weights.", "The model could not be loaded."),
    ("HF_TOKEN is wrong", "The model could not be loaded."),
])
def test_the_reason_is_said_without_flags_or_variables(message, said):
    assert modelsetup.plain_reason(message) == said
    assert "--" not in modelsetup.explanation(message)


def _dialog(window):
    dialog = window.findChild(modelsetup.ModelSetupDialog)
    return dialog if dialog is not None and dialog.isVisible() else None


def test_without_a_model_a_folder_fixes_it_and_folders_added_before_are_indexed(
    qtbot, make_window, tmp_path, photos, db_path, monkeypatch
):
    window = make_window(model=None)  # the default model: not downloadable in tests
    qtbot.waitUntil(lambda: _dialog(window) is not None, timeout=WAIT_MS)
    dialog = _dialog(window)
    assert dialog.download_button.text() == "Download the model (about 600 MB)"
    assert "--" not in dialog.text.text() and "Error" not in dialog.text.text()

    window.add_folder(str(photos))  # before there is a model: remembered
    qtbot.waitUntil(lambda: any(f.path == str(photos) for f in window._folders), timeout=WAIT_MS)

    model = build_tiny_clip(tmp_path / "tiny-clip")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(model))
    dialog.folder_button.click()
    qtbot.waitUntil(lambda: window.settings.model == str(model), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.is_idle() and window._images > 0, timeout=60_000)
    assert _dialog(window) is None
    window.shutdown()
    with Library(LibraryOptions(db_path=db_path)) as library:
        assert library.store.count_images() == 8


def test_download_tries_again(qtbot, make_window, monkeypatch):
    window = make_window(model=None)
    qtbot.waitUntil(lambda: _dialog(window) is not None, timeout=WAIT_MS)
    retried: list[bool] = []
    monkeypatch.setattr(window, "retry_model", lambda: retried.append(True))
    _dialog(window).download_button.click()
    assert retried == [True] and _dialog(window) is None


def test_the_screenshot_shows_the_first_run_window_over_the_app(qtbot, make_window):
    from clipdesk._gui.app import _picture

    window = make_window(model=None)
    window.resize(900, 600)
    qtbot.waitUntil(lambda: _dialog(window) is not None, timeout=WAIT_MS)
    assert _picture(window).toImage() != window.grab().toImage()
