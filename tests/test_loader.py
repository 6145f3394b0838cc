from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

from dashboard.errors import ModelLoadError, UnsafeModelError
from dashboard.loading import keras_model, safety
from tests.support.helpers import rewrite_config


def test_every_supported_format_loads_and_predicts_the_same(models):
    folder = models["folder"]
    x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    expected = np.asarray(models["classifier"](x))
    loaded = [
        keras_model.load("file", {"model": folder / "classifier.keras"}),
        keras_model.load("file", {"model": folder / "classifier.h5"}),
        keras_model.load(
            "architecture", {"architecture": folder / "classifier.json", "weights": folder / "classifier.weights.h5"}
        ),
    ]
    assert [m.format for m in loaded] == [".keras", ".h5 (full model)", "architecture + weights"]
    for model in loaded:
        assert model.inputs == (keras_model.InputInfo("features", (3,), "float32"),)
        assert (model.output_units, model.output_activation, model.named_inputs) == (4, "softmax", False)
        np.testing.assert_allclose(model.call(x), expected, rtol=1e-5, atol=1e-6)


def build_classifier():
    """MODEL_BUILDER target used by the builder test."""
    import keras

    inputs = keras.Input((3,), name="features")
    hidden = keras.layers.Dense(6, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(hidden))


def test_builder_plus_weights(models):
    model = keras_model.load(
        "builder", {"weights": models["folder"] / "classifier.weights.h5"}, builder="tests.test_loader:build_classifier"
    )
    x = np.ones((2, 3), dtype="float32")
    np.testing.assert_allclose(model.call(x), np.asarray(models["classifier"](x)), rtol=1e-5)
    with pytest.raises(ModelLoadError, match="MODEL_BUILDER='nowhere:f' cannot be imported"):
        keras_model.load("builder", {"weights": models["folder"] / "classifier.weights.h5"}, builder="nowhere:f")


def test_a_model_file_with_a_wrong_name_is_recognised_by_its_content(models, tmp_path):
    odd = tmp_path / "download"
    odd.write_bytes((models["folder"] / "classifier.keras").read_bytes())
    assert keras_model.load("file", {"model": odd}).format == ".keras"


def test_named_inputs_with_a_string_input(models):
    model = keras_model.load("file", {"model": models["folder"] / "named.keras"})
    assert model.named_inputs
    assert {i.name: i.dtype for i in model.inputs} == {"size": "float32", "colour": "string"}
    import tensorflow as tf

    out = model.call({"size": np.array([1.0, 2.0]), "colour": np.array(["red", "blue"], dtype=object)})
    expected = models["named"]({"size": tf.constant([[1.0], [2.0]]), "colour": tf.constant([["red"], ["blue"]])})
    np.testing.assert_allclose(out, np.asarray(expected), rtol=1e-5)


@pytest.mark.parametrize("name", ["lambda.keras", "lambda.h5"])
def test_lambda_models_are_refused_and_their_code_never_runs(models, name):
    canary = models["canary"]
    canary.unlink(missing_ok=True)
    with pytest.raises(UnsafeModelError) as caught:
        keras_model.load("file", {"model": models["folder"] / name})
    assert str(caught.value) == (
        f"{name} uses a Lambda layer, which can run arbitrary code when loaded; refused "
        "under safe mode: replace it with a registered custom layer, or set "
        "MODEL_SAFE_MODE=false only if you trust whoever wrote the file"
    )
    assert not canary.exists()


def test_the_canary_does_fire_when_safe_mode_is_turned_off(models):
    """Proves the canary test above can fail: with safe mode off, the Lambda's code runs."""
    canary = models["canary"]
    canary.unlink(missing_ok=True)
    model = keras_model.load("file", {"model": models["folder"] / "lambda.keras"}, safe_mode=False)
    model.call(np.ones((1, 3), dtype="float32"))
    assert canary.exists()
    canary.unlink()


def test_a_config_naming_a_foreign_module_is_refused(models, tmp_path):
    canary = tmp_path / "pwned"

    def inject(config):  # the CVE-2025-1550 pattern: a layer whose "module" is any importable Python module
        layer = config["config"]["layers"][1]
        layer["module"] = "os"
        layer["class_name"] = "system"
        layer["config"] = f"touch {canary}"

    target = tmp_path / "module.keras"
    rewrite_config(models["folder"] / "classifier.keras", target, inject)
    with pytest.raises(UnsafeModelError, match="names the Python module 'os', which is not part of Keras"):
        keras_model.load("file", {"model": target})
    assert not canary.exists()


def test_a_tfsm_layer_is_refused(models, tmp_path):
    def inject(config):
        config["config"]["layers"][1]["class_name"] = "TFSMLayer"

    target = tmp_path / "tfsm.keras"
    rewrite_config(models["folder"] / "classifier.keras", target, inject)
    with pytest.raises(UnsafeModelError, match=r"uses a TFSMLayer \(it loads a SavedModel from a path\)"):
        keras_model.load("file", {"model": target})


@pytest.mark.parametrize("member", ["../evil.txt", "/etc/evil", "assets/../../evil"])
def test_archives_with_paths_outside_are_refused(models, tmp_path, member):
    target = tmp_path / "traversal.keras"
    with zipfile.ZipFile(models["folder"] / "classifier.keras") as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item.filename))
        dst.writestr(member, b"x")
    with pytest.raises(UnsafeModelError, match="points outside the archive"):
        keras_model.load("file", {"model": target})


def test_archive_bombs_are_refused(tmp_path):
    target = tmp_path / "bomb.keras"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        dst.writestr("config.json", "{}")
        dst.writestr("model.weights.h5", b"\0" * (50 << 20))
    with pytest.raises(UnsafeModelError, match="a compression bomb"):
        keras_model.load("file", {"model": target})
    many = tmp_path / "many.keras"
    with zipfile.ZipFile(many, "w") as dst:
        for i in range(safety.MAX_ARCHIVE_ENTRIES + 1):
            dst.writestr(f"f{i}", b"")
    with pytest.raises(UnsafeModelError, match="holds 1001 files"):
        keras_model.load("file", {"model": many})


def test_random_bytes_named_keras_are_a_clear_error(tmp_path):
    target = tmp_path / "random.keras"
    target.write_bytes(os.urandom(4096))
    with pytest.raises(ModelLoadError) as caught:
        keras_model.load("file", {"model": target})
    assert str(caught.value) == (
        "random.keras is neither a .keras archive nor an HDF5 (.h5) model file; check "
        "that the URL points to the model itself, not to a web page or a listing"
    )


def test_a_damaged_archive_is_a_clear_error(models, tmp_path):
    data = (models["folder"] / "classifier.keras").read_bytes()
    target = tmp_path / "cut.keras"
    target.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="is not a valid .keras archive"):
        keras_model.load("file", {"model": target})


def test_weights_only_h5_is_explained(models):
    with pytest.raises(ModelLoadError, match="holds weights only, not a full model"):
        keras_model.load("file", {"model": models["folder"] / "classifier.weights.h5"})


def test_weights_that_do_not_fit_the_architecture(models, tmp_path):
    import keras

    other = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])
    other.save_weights(tmp_path / "other.weights.h5")
    with pytest.raises(ModelLoadError, match="the weights in other.weights.h5 do not fit the model"):
        keras_model.load(
            "architecture",
            {"architecture": models["folder"] / "classifier.json", "weights": tmp_path / "other.weights.h5"},
        )
