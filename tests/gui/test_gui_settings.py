"""Settings persist with QSettings; the dialog edits them; a bad value falls back."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from clipdesk.gui import settings as settings_io
from clipdesk.gui.settings import AppSettings
from clipdesk.gui.settingsdialog import SettingsDialog
from clipdesk.models import KNOWN_MODELS


def test_settings_round_trip_and_survive_garbage(qsettings: QSettings, tmp_path):
    wanted = AppSettings(model=KNOWN_MODELS["ViT-B/16"], device="cpu", batch_size=16,
                         thumbnail_cache_mb=64, start_watching=False, thumbnail_size=200,
                         relevance=40, label_sets={"pets": ["cat", "dog"]}, labels="a, b")
    settings_io.save(qsettings, wanted)
    again = QSettings(qsettings.fileName(), QSettings.Format.IniFormat)
    assert settings_io.load(again) == wanted

    again.setValue("model/device", "quantum")
    again.setValue("model/batch_size", "lots")
    again.setValue("classify/label_sets", "{not json")
    loaded = settings_io.load(again)
    assert (loaded.device, loaded.batch_size, loaded.label_sets) == ("auto", 0, {})


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
