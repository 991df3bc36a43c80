"""A damaged or replaced model folder ends in one clear line naming it, never a traceback,
and never in advice that would throw away a healthy library."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from .helpers import assert_clean_error, clipdesk_argv, clipdesk_env, jpeg_bytes


def _edit_json(folder: Path, name: str, change: Callable[[dict[str, object]], None]) -> None:
    path = folder / name
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _edit_weights(folder: Path, change: Callable[[dict[str, np.ndarray]], None]) -> None:
    from safetensors.numpy import load_file, save_file

    path = folder / "model.safetensors"
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path), metadata={"format": "pt"})


def _truncate(folder: Path) -> None:
    path = folder / "model.safetensors"
    os.truncate(path, path.stat().st_size // 2)


def _header_only(folder: Path) -> None:
    path = folder / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: 8 + int.from_bytes(data[:8], "little")])


def _no_tensors(folder: Path) -> None:
    from safetensors.numpy import save_file

    save_file({}, str(folder / "model.safetensors"))


def _vision(key: str, value: object) -> Callable[[Path], None]:
    def change(c: dict[str, object]) -> None:
        section = c["vision_config"]
        assert isinstance(section, dict)
        section[key] = value

    return lambda folder: _edit_json(folder, "config.json", change)


def _text(key: str, value: object) -> Callable[[Path], None]:
    def change(c: dict[str, object]) -> None:
        section = c["text_config"]
        assert isinstance(section, dict)
        section[key] = value

    return lambda folder: _edit_json(folder, "config.json", change)


def _top(key: str, value: object) -> Callable[[Path], None]:
    return lambda folder: _edit_json(folder, "config.json", lambda c: c.__setitem__(key, value))


def _processor(key: str, value: object) -> Callable[[Path], None]:
    return lambda folder: _edit_json(folder, "preprocessor_config.json", lambda c: c.__setitem__(key, value))


def _processor_not_json(folder: Path) -> None:
    (folder / "preprocessor_config.json").write_text('{"size": 224,')


# case: (how the folder is damaged, what the one line must say)
BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated weights": (_truncate, "cut short"),
    "weights file with only its header": (_header_only, "cut short"),
    "weights file without tensors": (_no_tensors, "holds no weights"),
    "projection_dim not a number": (_top("projection_dim", "sixteen"), "projection_dim"),
    "negative image size": (_vision("image_size", -32), "image_size"),
    "vision hidden size not a number": (_vision("hidden_size", "x"), "hidden_size"),
    "negative text hidden size": (_text("hidden_size", -32), "hidden_size"),
    "logit_scale_init_value not a number": (_top("logit_scale_init_value", "big"), "logit_scale"),
    "preprocessor_config.json not JSON": (_processor_not_json, "preprocessor_config.json"),
    "preprocessor size not a number": (_processor("size", "big"), "size"),
    "preprocessor crop without a height": (_processor("crop_size", {"h": 3}), "crop_size"),
    "preprocessor mean of one number": (_processor("image_mean", [0.5]), "image_mean"),
}


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, tiny_clip: Path) -> tuple[Path, Path, Path]:
    """(photos, library, model folder): a library indexed with a healthy copy of the tiny CLIP."""
    root = tmp_path_factory.mktemp("model-folders")
    photos = root / "photos"
    photos.mkdir()
    for name, colour in [("a.jpg", (200, 0, 0)), ("b.jpg", (0, 0, 200)), ("c.jpg", (0, 200, 0))]:
        (photos / name).write_bytes(jpeg_bytes(colour))
    model = root / "model"
    shutil.copytree(tiny_clip, model)
    db = root / "library.db"
    made = _clipdesk(root, "--db", str(db), "--model", str(model), "index", str(photos))
    assert made.returncode == 0, made.stderr
    return photos, db, model


def _clipdesk(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        clipdesk_argv(*args), env=clipdesk_env(tmp / "data"), capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def library(indexed: tuple[Path, Path, Path], tiny_clip: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A fresh copy of the indexed library, its model folder restored to the healthy tiny CLIP."""
    photos, db, model = indexed
    shutil.rmtree(model)
    shutil.copytree(tiny_clip, model)
    copy = tmp_path / "library.db"
    shutil.copyfile(db, copy)
    return photos, copy, model


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_damaged_model_folder_is_one_clear_line(case: str, library: tuple[Path, Path, Path], tmp_path: Path) -> None:
    photos, db, model = library
    damage, needle = BROKEN[case]
    damage(model)
    for command in (["search", "red"], ["classify", str(photos / "a.jpg"), "--labels", "a,b", "--json"]):
        result = _clipdesk(tmp_path, "--db", str(db), "--model", str(model), *command)
        line = assert_clean_error(result, needle)
        assert str(model) in line, line


def _widen_projection(folder: Path) -> None:
    """The same model folder, now holding a model whose vectors have 32 numbers, not 16."""
    rng = np.random.default_rng(1)

    def change(t: dict[str, np.ndarray]) -> None:
        for key in ("text_projection.weight", "visual_projection.weight"):
            t[key] = rng.standard_normal((32, 32)).astype(np.float32)

    _edit_weights(folder, change)
    _top("projection_dim", 32)(folder)


def test_other_vector_size_is_a_model_mismatch_not_damage(library: tuple[Path, Path, Path], tmp_path: Path) -> None:
    photos, db, model = library
    _widen_projection(model)
    for command in (["search", "red"], ["index", str(photos)]):
        line = assert_clean_error(
            _clipdesk(tmp_path, "--db", str(db), "--model", str(model), *command), "size 32", "size 16"
        )
        assert "rebuild" not in line and "damaged" not in line, line
        assert f"not '{model}'" not in line, line  # not "indexed with 'X', not 'X'"
        assert "--reindex" in line
    # The library itself is fine: re-indexing with the new model works.
    reindexed = _clipdesk(tmp_path, "--db", str(db), "--model", str(model), "index", "--reindex", str(photos))
    assert reindexed.returncode == 0, reindexed.stderr
    found = _clipdesk(tmp_path, "--db", str(db), "--model", str(model), "search", "red", "--json")
    assert found.returncode == 0, found.stderr
    assert len(json.loads(found.stdout)) == 3


def _replace_weights(folder: Path) -> None:
    """Other weights of the same shapes (a fine-tuned copy, say) under the same path."""
    _edit_weights(folder, lambda t: t.__setitem__("visual_projection.weight", t["visual_projection.weight"] * -1.5))


def test_replaced_weights_are_not_mixed_into_the_library(library: tuple[Path, Path, Path], tmp_path: Path) -> None:
    photos, db, model = library
    _replace_weights(model)
    for command in (["search", "red"], ["index", str(photos)]):
        line = assert_clean_error(
            _clipdesk(tmp_path, "--db", str(db), "--model", str(model), *command), "weights", "changed"
        )
        assert "--reindex" in line and "damaged" not in line
    reindexed = _clipdesk(tmp_path, "--db", str(db), "--model", str(model), "index", "--reindex", str(photos), "--json")
    assert reindexed.returncode == 0, reindexed.stderr
    assert json.loads(reindexed.stdout)["encoded"] == 3  # every photo encoded with the new weights
    found = _clipdesk(tmp_path, "--db", str(db), "--model", str(model), "search", "red")
    assert found.returncode == 0, found.stderr


def test_a_library_from_before_fingerprints_is_not_reencoded(library: tuple[Path, Path, Path], tmp_path: Path) -> None:
    import apsw

    photos, db, model = library
    conn = apsw.Connection(str(db))
    conn.execute("DELETE FROM meta WHERE key = 'model_fingerprint'")
    conn.close()
    found = _clipdesk(tmp_path, "--db", str(db), "--model", str(model), "search", "red")
    assert found.returncode == 0, found.stderr
    again = _clipdesk(tmp_path, "--db", str(db), "--model", str(model), "index", str(photos), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["encoded"] == 0
    # It adopted the weights as they are now, so a later swap is noticed.
    _replace_weights(model)
    assert_clean_error(_clipdesk(tmp_path, "--db", str(db), "--model", str(model), "search", "red"), "weights", "changed")


def _strict_json(text: str) -> object:
    def refuse(name: str) -> object:
        raise AssertionError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("log_scale", [1000.0, 1e30])
def test_overflowing_logit_scale_is_capped_like_clip(
    log_scale: float, tiny_clip: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_clip, model)
    _edit_weights(model, lambda t: t.__setitem__("logit_scale", np.array(log_scale, dtype=np.float32)))
    image = tmp_path / "a.jpg"
    image.write_bytes(jpeg_bytes((200, 0, 0)))
    result = _clipdesk(
        tmp_path, "--db", str(tmp_path / "l.db"), "--model", str(model),
        "classify", str(image), "--labels", "cat,dog", "--json",
    )
    assert result.returncode == 0, result.stderr
    [item] = _strict_json(result.stdout)  # type: ignore[misc]
    assert sum(item["labels"].values()) == pytest.approx(1.0)


def test_nan_logit_scale_is_a_clear_error_not_nan_json(tiny_clip: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_clip, model)
    _edit_weights(model, lambda t: t.__setitem__("logit_scale", np.array(np.nan, dtype=np.float32)))
    image = tmp_path / "a.jpg"
    image.write_bytes(jpeg_bytes((200, 0, 0)))
    result = _clipdesk(
        tmp_path, "--db", str(tmp_path / "l.db"), "--model", str(model),
        "classify", str(image), "--labels", "cat,dog", "--json",
    )
    assert_clean_error(result, "logit_scale", str(model))
    assert "NaN" not in result.stdout
