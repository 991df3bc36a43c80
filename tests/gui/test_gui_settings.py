"""Settings persist with QSettings; the dialog edits them; a bad value falls back."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from clipdesk._gui import settings as settings_io
from clipdesk._gui.settings import AppSettings
from clipdesk._gui.settingsdialog import SettingsDialog
from clipdesk._models import KNOWN_MODELS


def test_settings_round_trip_and_survive_garbage(qsettings: QSettings, tmp_path):
    wanted = AppSettings(model=KNOWN_MODELS["ViT-B/16"], device="cpu", batch_size=16,
                         thumbnail_cache_mb=64, start_watching=False, thumbnail_size=200,
                         relevance=40, photo_order="newest", label_sets={"pets": ["cat", "dog"]},
                         labels="a, b")
    settings_io.save(qsettings, wanted)
    again = QSettings(qsettings.fileName(), QSettings.Format.IniFormat)
    assert settings_io.load(again) == wanted

    again.setValue("model/device", "quantum")
    again.setValue("model/batch_size", "lots")
    again.setValue("classify/label_sets", "{not json")
    again.setValue("view/order", "sideways")
    loaded = settings_io.load(again)
    assert (loaded.device, loaded.batch_size, loaded.label_sets) == ("auto", 0, {})
    assert loaded.photo_order == "name"


def test_dialog_offers_known_models_and_custom_folders(qtbot, tmp_path):
    dialog = SettingsDialog(AppSettings(model=str(tmp_path)))
    qtbot.addWidget(dialog)
    assert dialog.model() == str(tmp_path)  # a custom folder is shown as custom
    names = [dialog.model_combo.itemText(i) for i in range(dialog.model_combo.count())]
    for name in KNOWN_MODELS:
        assert any(text.startswith(name) for text in names)
    dialog.model_combo.setCurrentIndex(dialog.model_combo.findData(KNOWN_MODELS["ViT-L/14"]))
    dialog.batch_size.setValue(8)
    dialog.start_watching.setChecked(False)
    result = dialog.result_settings()
    assert (result.model, result.batch_size, result.start_watching) == (KNOWN_MODELS["ViT-L/14"], 8, False)


def test_window_keeps_its_settings_between_runs(qtbot, make_window, qsettings):
    window = make_window()
    window.size_slider.setValue(100)
    window.relevance.setValue(30)
    window.apply_settings(AppSettings(device="cpu", thumbnail_cache_mb=99), confirm=False)
    window.shutdown()
    reopened = make_window()
    assert reopened.size_slider.value() == 100
    assert reopened.relevance.value() == 30
    assert reopened.settings.device == "cpu"
    assert reopened.settings.thumbnail_cache_mb == 99


def test_choosing_a_model_in_settings_fixes_a_missing_model(qtbot, make_window, photos):
    import dataclasses

    from .guihelpers import COLOUR_MODEL, colour_of, row_paths, wait_idle

    window = make_window(model=None)  # the default model: not downloadable in tests
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=20_000)
    assert "not downloaded" in window.last_error or "cannot be fetched" in window.last_error

    window.apply_settings(dataclasses.replace(window.settings, model=COLOUR_MODEL), confirm=False)
    qtbot.waitUntil(lambda: window.worker.options.model == COLOUR_MODEL and window._folders_known,
                    timeout=20_000)
    window.add_folder(str(photos))
    qtbot.waitUntil(lambda: window.model.rowCount() == 8, timeout=20_000)
    wait_idle(qtbot, window)
    with qtbot.waitSignal(window.results_shown, timeout=10_000):
        window.search_box.setText("blue")
        window.run_search()
    assert [colour_of(p) for p in row_paths(window)[:2]] == ["blue", "blue"]


def test_window_size_and_panels_are_restored(qtbot, make_window):
    window = make_window()
    window.show()
    qtbot.waitExposed(window)
    window.resize(1300, 700)
    window.folders_dock.hide()
    size = (window.width(), window.height())
    window.close()
    reopened = make_window()
    reopened.show()
    qtbot.waitExposed(reopened)
    # The width is clamped to the (offscreen, 800 px) screen, as it should be; the height fits.
    assert reopened.height() == size[1]
    assert reopened.width() == min(size[0], reopened.screen().availableGeometry().width() - 2)
    assert reopened.folders_dock.isHidden()
