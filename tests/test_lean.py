"""The lean runtime: LiteRT artifacts, parity with Keras, and a CLI run in which TensorFlow cannot be imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import service
from dashboard.cli.main import main
from dashboard.errors import ModelLoadError
from dashboard.loading import keras_model, litert_model
from dashboard.service.publish import publish
from tests.support.helpers import BLOCKED, DEMO, NO_TENSORFLOW, REPO, settings_for

LEAN_CHILD = (
    NO_TENSORFLOW
    + f"""import runpy
sys.argv = ["dashboard"] + sys.argv[1:]
try:
    runpy.run_module("dashboard", run_name="__main__")
finally:
    print("IMPORTED:" + ",".join(sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r})), file=sys.stderr)
"""
)


def run_lean(*args, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "APP_VERSION"))}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", LEAN_CHILD, *args], cwd=REPO, env=environ, capture_output=True, text=True, timeout=300
    )


def test_demo_versions_have_litert_artifacts_that_match_keras():
    manifest = json.loads((DEMO / "manifest.json").read_text())
    x = pd.read_csv(DEMO / "sample.csv").iloc[:, :4].to_numpy(np.float32)
    for entry in manifest["versions"]:
        loaded = keras_model.load("file", {"model": DEMO / entry["url"]})
        lean = litert_model.load(DEMO / entry["tflite_url"])
        assert lean.inputs == (keras_model.InputInfo("features", (4,), "float32"),)
        assert np.abs(loaded.call(x) - lean.call(x)).max() <= litert_model.TOLERANCE


def test_the_cli_predicts_the_demo_store_without_tensorflow(tmp_path):
    out = tmp_path / "lean.csv"
    done = run_lean(
        "predict",
        "--input",
        str(DEMO / "sample.csv"),
        "--output",
        str(out),
        env={"MODEL_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.strip().endswith("IMPORTED:"), "the lean path imported TensorFlow, Keras or h5py"
    versions = run_lean("versions", env={"MODEL_CACHE_DIR": str(tmp_path / "cache")})
    assert versions.returncode == 0 and versions.stdout.splitlines()[0].endswith("(default)")
    lean = pd.read_csv(out)
    keras_out = tmp_path / "keras.csv"
    assert main(["predict", "--input", str(DEMO / "sample.csv"), "--output", str(keras_out)]) == 0
    full = pd.read_csv(keras_out)
    probabilities = [c for c in full.columns if c.startswith("probability_")]
    assert probabilities == ["probability_setosa", "probability_versicolor", "probability_virginica"]
    assert np.abs(lean[probabilities].to_numpy() - full[probabilities].to_numpy()).max() <= litert_model.TOLERANCE
    assert (lean["prediction"] == full["prediction"]).all()


def test_without_tensorflow_a_version_without_artifact_says_what_to_install(tmp_path, models):
    store = tmp_path / "store"
    publish(models["folder"] / "classifier.keras", "1.0", str(store))
    source = tmp_path / "in.csv"
    source.write_text("x0,x1,x2\n1,2,3\n")
    done = run_lean(
        "predict",
        "--input",
        str(source),
        "--output",
        str(tmp_path / "o.csv"),
        env={"MODEL_MANIFEST_URL": str(store / "manifest.json"), "MODEL_CACHE_DIR": str(tmp_path / "c")},
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        "error: TensorFlow is not installed and version 1.0 has no LiteRT artifact; "
        "install requirements.txt for the Keras runtime, or publish the version "
        "with --lean"
    )


def test_publish_lean_with_several_classes_matches_keras(tmp_path, models, capsys):
    store = tmp_path / "store"
    assert (
        main(
            ["publish", str(models["folder"] / "classifier.keras"), "--version", "2.0", "--store", str(store), "--lean"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "LiteRT artifact added (largest difference from Keras" in out
    entry = json.loads((store / "manifest.json").read_text())["versions"][0]
    assert entry["tflite_url"].endswith(".tflite") and len(entry["tflite_sha256"]) == 64
    assert entry["schema"]["output"] == {"type": "classification", "labels": ["0", "1", "2", "3"]}
    x = np.random.default_rng(5).normal(size=(300, 3)) * 3
    frame = pd.DataFrame(x, columns=["x0", "x1", "x2"])
    results = {}
    for runtime in ("keras", "litert"):
        settings = settings_for(tmp_path, MODEL_MANIFEST_URL=store / "manifest.json", MODEL_RUNTIME=runtime)
        served = service.load_version(settings, service.catalog(settings).default)
        assert served.runtime == runtime
        results[runtime] = service.predict_frame(served, frame).table
    columns = [f"probability_{k}" for k in range(4)]
    assert np.abs(results["keras"][columns].to_numpy() - results["litert"][columns].to_numpy()).max() <= 1e-5


def test_a_model_litert_cannot_run_stays_keras_only(tmp_path, models, capsys):
    store = tmp_path / "store"
    assert (
        main(["publish", str(models["folder"] / "named.keras"), "--version", "1.0", "--store", str(store), "--lean"])
        == 0
    )
    err = capsys.readouterr().err
    assert (
        err
        == "warning: no LiteRT artifact: the model takes text inputs, which LiteRT cannot run; it stays Keras-only\n"
    )
    entry = json.loads((store / "manifest.json").read_text())["versions"][0]
    assert "tflite_url" not in entry
    settings = settings_for(tmp_path, MODEL_MANIFEST_URL=store / "manifest.json", MODEL_RUNTIME="litert")
    with pytest.raises(ModelLoadError) as caught:
        service.load_version(settings, service.catalog(settings).default)
    assert str(caught.value) == (
        "version 1.0 has no LiteRT artifact (MODEL_RUNTIME=litert); publish it with --lean, or set MODEL_RUNTIME=keras"
    )


def test_convert_adds_an_artifact_to_a_published_version(tmp_path, models, capsys):
    store = tmp_path / "store"
    publish(models["folder"] / "classifier.keras", "3.0", str(store))
    assert main(["convert", "--store", str(store), "--version", "3.0"]) == 0
    assert capsys.readouterr().out.startswith("version 3.0: LiteRT artifact added")
    assert "tflite_url" in json.loads((store / "manifest.json").read_text())["versions"][0]


def test_the_model_card_shows_the_runtime(env):
    env.setenv("MODEL_RUNTIME", "litert")
    at = AppTest.from_file(str(REPO / "dashboard" / "ui" / "page.py"), default_timeout=120).run()
    assert not at.exception
    card = "\n".join(m.value for m in at.sidebar.markdown)
    assert "**Format** .tflite · runtime litert" in card
    at.button(key="single-submit").click().run()
    assert at.metric[0].value in ("setosa", "versicolor", "virginica")
