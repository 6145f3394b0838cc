from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from dashboard.cli.main import main
from tests.support.helpers import DEMO, REPO, demo_store, model_bytes, sha256, write_manifest

SECRET = "X-Amz-Credential=AKIAEXAMPLE%2F20261125&X-Amz-Signature=0123456789abcdef"


def run_cli(*args, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "APP_VERSION"))}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "dashboard", *args], cwd=REPO, env=environ, capture_output=True, text=True, timeout=120
    )


def test_versions_with_no_configuration(tmp_path):
    done = run_cli("versions", env={"MODEL_CACHE_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    manifest = json.loads((DEMO / "manifest.json").read_text())
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("1.1.0        " + manifest["versions"][0]["sha256"][:12])
    assert lines[0].endswith("(default)")
    assert lines[1].startswith("1.0.0        " + manifest["versions"][1]["sha256"][:12])
    assert not lines[1].endswith("(default)")


def test_predict_the_demo_sample_with_no_configuration(tmp_path):
    out = tmp_path / "out.csv"
    done = run_cli(
        "predict",
        "--input",
        str(DEMO / "sample.csv"),
        "--output",
        str(out),
        env={"MODEL_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert done.returncode == 0, done.stderr
    assert "predicted 30 of 30 rows with version 1.1.0" in done.stderr
    table = pd.read_csv(out)
    assert list(table.columns) == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
        "species",
        "prediction",
        "probability_setosa",
        "probability_versicolor",
        "probability_virginica",
        "model_version",
        "error",
    ]
    assert (table["prediction"] == table["species"]).mean() >= 0.9
    assert table["error"].isna().all()
    assert "Traceback" not in done.stderr


def test_versions_and_predict_from_a_store_over_http(store, env, tmp_path, capsys):
    url = demo_store(store)
    env.setenv("MODEL_MANIFEST_URL", url + "?" + SECRET)
    env.setenv("MODEL_VERSION", "stable")
    assert main(["versions"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1].endswith("(default)") and captured.out.startswith("1.1.0")
    out = tmp_path / "out.csv"
    assert main(["predict", "--input", str(DEMO / "sample.csv"), "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert "with version 1.0.0" in captured.err
    assert set(pd.read_csv(out)["model_version"]) == {"1.0.0"}
    assert main(["predict", "--input", str(DEMO / "sample.csv"), "--output", str(out), "--version", "~=1.1"]) == 0
    assert set(pd.read_csv(out)["model_version"]) == {"1.1.0"}
    assert store.hits("models/iris-1.0.0.keras") == 1 and store.hits("models/iris-1.1.0.keras") == 1
    manifest_requests = [r for r in store.server.requests if r.startswith("/models/manifest.json")]
    assert manifest_requests and all("X-Amz-Signature" in r for r in manifest_requests)  # sent, never shown
    assert "AKIA" not in captured.err + captured.out


def test_fallback_warning_goes_to_stderr(env, capsys):
    env.setenv("MODEL_VERSION", "9.9")
    assert main(["versions"]) == 0
    captured = capsys.readouterr()
    assert (
        captured.err
        == "warning: version 9.9 was asked for (MODEL_VERSION) but does not exist; using the newest, 1.1.0\n"
    )
    assert captured.out.splitlines()[0].endswith("(default)")


def test_unreachable_store_is_one_line_without_traceback(env, capsys):
    env.setenv("MODEL_MANIFEST_URL", "http://127.0.0.1:9/models/manifest.json?" + SECRET)
    env.setenv("MODEL_RETRIES", "0")
    assert main(["versions"]) == 1
    captured = capsys.readouterr()
    assert captured.err == (
        "error: http://127.0.0.1:9/models/manifest.json is unreachable (connection refused); "
        "check the URL and that the server is up\n"
    )


def test_row_errors_are_counted_and_good_rows_still_predicted(env, tmp_path, capsys):
    source = tmp_path / "in.csv"
    source.write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\nabc,3,4,1\n")
    out = tmp_path / "out.csv"
    assert main(["predict", "--input", str(source), "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert (
        "1 of 2 rows has errors (see the error column); first: row 2 (line 3): sepal_length: 'abc' is not a number"
        in err
    )
    table = pd.read_csv(out)
    assert table["prediction"].tolist()[0] == "setosa"
    assert table["error"].fillna("").tolist() == ["", "sepal_length: 'abc' is not a number"]


def test_nothing_predictable_exits_non_zero(env, tmp_path, capsys):
    source = tmp_path / "in.csv"
    source.write_text("sepal_length,sepal_width,petal_length,petal_width\nx,1,1,1\n")
    assert main(["predict", "--input", str(source), "--output", str(tmp_path / "out.csv")]) == 1
    assert capsys.readouterr().err.endswith(
        f"error: no row could be predicted with version 1.1.0; the reasons are in {tmp_path / 'out.csv'}\n"
    )
    source.write_text("petal_length\n1\n")
    assert main(["predict", "--input", str(source), "--output", str(tmp_path / "o2.csv")]) == 1
    assert capsys.readouterr().err == (
        "error: columns 'sepal_length', 'sepal_width', 'petal_width' are missing; expected columns: sepal_length, "
        "sepal_width, petal_length, petal_width\n"
    )
    assert not (tmp_path / "o2.csv").exists()


def test_wrong_digest_in_the_manifest_is_refused_and_not_cached(store, env, tmp_path, capsys, models):
    data = model_bytes(models, "classifier.keras")
    store.put("m/c.keras", data)
    env.setenv("MODEL_MANIFEST_URL", write_manifest(store, [{"version": "1.0", "url": "c.keras", "sha256": "0" * 64}]))
    source = tmp_path / "in.csv"
    source.write_text("x0,x1,x2\n1,2,3\n")
    assert main(["predict", "--input", str(source), "--output", str(tmp_path / "out.csv")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: sha256 of {store.url('m/c.keras')} is {sha256(data)[:12]}…, expected 000000000000…")
    assert not any(p.is_file() and p.name != ".lock" for p in (tmp_path / "cache").rglob("*"))


@pytest.mark.parametrize("layout", ["versioned", "architecture", "schema_url", "single", "builder"])
def test_other_source_types_over_http(store, env, tmp_path, capsys, models, layout):
    folder = models["folder"]
    if layout == "versioned":
        env.setenv("MODEL_URL_V1", store.put_file("a/v1.keras", folder / "classifier.keras"))
        env.setenv("MODEL_URL_V2", store.put_file("a/v2.h5", folder / "classifier.h5"))
        env.setenv("MODEL_SHA256_V2", sha256(model_bytes(models, "classifier.h5")))
    elif layout == "single":
        env.setenv("MODEL_URL", store.put_file("a/model.keras", folder / "classifier.keras"))
        env.setenv("MODEL_SHA256", sha256(model_bytes(models, "classifier.keras")))
        env.setenv("MODEL_VERSION", "2")
        env.setenv(
            "MODEL_SCHEMA_URL",
            store.put(
                "a/schema.json",
                json.dumps(
                    {
                        "features": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
                        "output": {"type": "classification", "labels": ["n", "e", "s", "w"]},
                    }
                ).encode(),
            ),
        )
    elif layout == "builder":
        env.setenv("MODEL_BUILDER", "tests.test_loader:build_classifier")
        env.setenv("MODEL_WEIGHTS_URL", store.put_file("a/w.weights.h5", folder / "classifier.weights.h5"))
    elif layout == "architecture":
        env.setenv("MODEL_ARCHITECTURE_URL", store.put_file("a/arch.json", folder / "classifier.json"))
        env.setenv("MODEL_WEIGHTS_URL", store.put_file("a/w.weights.h5", folder / "classifier.weights.h5"))
    else:
        store.put_file("m/c.keras", folder / "classifier.keras")
        store.put(
            "m/schema.json",
            json.dumps(
                {
                    "features": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
                    "output": {"type": "classification", "labels": ["n", "e", "s", "w"]},
                }
            ).encode(),
        )
        env.setenv(
            "MODEL_MANIFEST_URL",
            write_manifest(store, [{"version": "2", "url": "c.keras", "schema_url": "schema.json"}]),
        )
    named = layout in ("schema_url", "single")
    names = "a,b,c" if named else "x0,x1,x2"
    source = tmp_path / "in.csv"
    source.write_text(f"{names}\n1,2,3\n")
    out = tmp_path / "out.csv"
    assert main(["predict", "--input", str(source), "--output", str(out)]) == 0, capsys.readouterr().err
    table = pd.read_csv(out)
    labels = ["n", "e", "s", "w"] if named else ["0", "1", "2", "3"]
    assert [c for c in table.columns if c.startswith("probability_")] == [f"probability_{k}" for k in labels]
    assert table["model_version"].astype(str).tolist() == (["1"] if layout in ("architecture", "builder") else ["2"])
