"""Deployment files (Procfile, setup.sh) and `python -m dashboard publish`."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time
import tomllib

import pandas as pd
import pytest
import requests

from dashboard.cli.main import main
from dashboard.errors import PublishError, SchemaError, UnsafeModelError
from dashboard.service.publish import PublishOptions, publish
from tests.support.helpers import DEMO, REPO, free_port, sha256

IRIS_SCHEMA = json.loads((DEMO / "manifest.json").read_text())["versions"][0]["schema"]


def test_procfile_starts_the_dashboard_on_port(tmp_path):
    line = next(l for l in (REPO / "Procfile").read_text().splitlines() if l.startswith("web:"))
    command = line.split(":", 1)[1].strip()
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "APP_VERSION"))}
    environ.update(PORT=str(port), HOME=str(tmp_path), MODEL_CACHE_DIR=str(tmp_path / "cache"))
    process = subprocess.Popen(
        ["sh", "-c", command],
        cwd=REPO,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline and answer != "ok":
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=5).text
            except requests.RequestException:  # not listening yet, or one slow answer while it starts: retry
                time.sleep(0.2)
        assert answer == "ok", "the Procfile's web command did not answer /_stcore/health within 60 s"
        config = tomllib.loads((tmp_path / ".streamlit" / "config.toml").read_text())
        assert config["server"]["port"] == port and config["server"]["headless"] is True
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)


def test_setup_sh_is_idempotent_and_keeps_existing_settings(tmp_path):
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "config.toml").write_text('[theme]\nbase = "dark"\n[server]\nmaxUploadSize = 5\n')
    environ = dict(os.environ, HOME=str(tmp_path), PORT="8600")
    for _ in range(2):
        subprocess.run(["sh", "setup.sh"], cwd=REPO, env=environ, check=True, capture_output=True)
    config = tomllib.loads((tmp_path / ".streamlit" / "config.toml").read_text())
    assert config == {
        "theme": {"base": "dark"},
        "server": {"maxUploadSize": 5, "port": 8600, "headless": True, "address": "0.0.0.0"},
    }


def test_project_streamlit_config_matches_the_app(tmp_path):
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    from dashboard.config import load_settings

    assert config["client"]["showErrorDetails"] == "none"  # Streamlit 1.67 reads false as "stacktrace"
    assert config["server"]["maxUploadSize"] * 1024 * 1024 == load_settings({}, secrets={}).csv_max_bytes


def test_publish_then_serve_over_http_and_predict(store, env, tmp_path, capsys):
    folder = tmp_path / "store"
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(IRIS_SCHEMA))
    first = publish(
        DEMO / "iris-1.0.0.keras",
        "1.0.0",
        str(folder),
        PublishOptions(schema_path=schema, alias="stable", notes="first", today=dt.date(2026, 1, 2)),
    )
    assert first.files == (f"iris-1.0.0-1.0.0-{sha256((DEMO / 'iris-1.0.0.keras').read_bytes())[:12]}.keras",)
    assert (
        main(
            [
                "publish",
                str(DEMO / "iris-1.1.0.keras"),
                "--version",
                "1.1.0",
                "--store",
                str(folder),
                "--schema",
                str(schema),
                "--notes",
                "second",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("published version 1.1.0 (iris-1.1.0-1.1.0-")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [v["version"] for v in manifest["versions"]] == ["1.1.0", "1.0.0"]
    assert manifest["aliases"] == {"stable": "1.0.0"}
    assert manifest["versions"][1]["created"] == "2026-01-02"
    for entry in manifest["versions"]:
        assert sha256((folder / entry["url"]).read_bytes()) == entry["sha256"]
        assert oct((folder / entry["url"]).stat().st_mode & 0o777) == "0o644"
    for path in folder.iterdir():
        if not path.name.startswith("."):
            store.put_file(f"published/{path.name}", path)
    env.setenv("MODEL_MANIFEST_URL", store.url("published/manifest.json"))
    env.setenv("MODEL_VERSION", "stable")
    out = tmp_path / "out.csv"
    assert main(["predict", "--input", str(DEMO / "sample.csv"), "--output", str(out)]) == 0
    table = pd.read_csv(out)
    assert set(table["model_version"]) == {"1.0.0"}
    assert (table["prediction"] == table["species"]).mean() >= 0.9


def test_publish_architecture_and_weights(tmp_path, models):
    folder = tmp_path / "store"
    done = publish(
        models["folder"] / "classifier.json",
        "0.9",
        str(folder),
        PublishOptions(weights=models["folder"] / "classifier.weights.h5"),
    )
    entry = json.loads((folder / "manifest.json").read_text())["versions"][0]
    assert entry["architecture_url"] == done.files[0] and entry["weights_url"].endswith(".weights.h5")
    assert set(entry["sha256"]) == {"architecture_url", "weights_url"}
    from dashboard.service import load_version
    from dashboard.store.sources import load_catalog
    from tests.support.helpers import settings_for

    settings = settings_for(tmp_path, MODEL_MANIFEST_URL=folder / "manifest.json")
    served = load_version(settings, load_catalog(settings).default)
    assert served.model.format == "architecture + weights"


def test_publish_refusals_say_exactly_why(tmp_path, models):
    folder = tmp_path / "store"
    publish(DEMO / "iris-1.0.0.keras", "1.0.0", str(folder))
    with pytest.raises(PublishError) as caught:
        publish(DEMO / "iris-1.1.0.keras", "1.0", str(folder))
    assert str(caught.value) == (
        f"version 1.0 is already in {folder / 'manifest.json'}; publish under a new "
        "version, or pass --force to replace it"
    )
    with pytest.raises(PublishError) as caught:
        publish(DEMO / "iris-1.1.0.keras", "v1.x", str(folder))
    assert str(caught.value) == "'v1.x' is not a PEP 440 version; use a form such as 1.2.0"
    with pytest.raises(UnsafeModelError) as caught:
        publish(models["folder"] / "lambda.keras", "2.0", str(folder))
    assert str(caught.value).startswith("lambda.keras uses a Lambda layer, which can run arbitrary code when loaded")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"features": IRIS_SCHEMA["features"][:3], "output": IRIS_SCHEMA["output"]}))
    with pytest.raises(SchemaError) as caught:
        publish(DEMO / "iris-1.1.0.keras", "2.0", str(folder), PublishOptions(schema_path=wrong))
    assert str(caught.value) == (
        "wrong.json lists 3 features but the model takes 4 per row; list one feature per model input column, in order"
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [v["version"] for v in manifest["versions"]] == ["1.0.0"]
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
        "iris-1.0.0-1.0.0-" + sha256((DEMO / "iris-1.0.0.keras").read_bytes())[:12] + ".keras",
        "manifest.json",
    ]


def test_force_replaces_a_version(tmp_path):
    folder = tmp_path / "store"
    publish(DEMO / "iris-1.0.0.keras", "1.0.0", str(folder))
    publish(DEMO / "iris-1.1.0.keras", "1.0.0", str(folder), PublishOptions(force=True))
    versions = json.loads((folder / "manifest.json").read_text())["versions"]
    assert len(versions) == 1 and versions[0]["sha256"] == sha256((DEMO / "iris-1.1.0.keras").read_bytes())


def test_a_crash_while_writing_the_manifest_leaves_the_old_one(tmp_path, monkeypatch):
    folder = tmp_path / "store"
    publish(DEMO / "iris-1.0.0.keras", "1.0.0", str(folder))
    before = (folder / "manifest.json").read_bytes()
    real_replace = os.replace

    def crash(src, dst):
        if str(dst).endswith("manifest.json"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        publish(DEMO / "iris-1.1.0.keras", "1.1.0", str(folder))
    assert (folder / "manifest.json").read_bytes() == before
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".manifest.json.")]


def test_publish_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["publish", str(tmp_path / "nope.keras"), "--version", "1", "--store", str(tmp_path)]) == 1
    assert (
        capsys.readouterr().err == f"error: {tmp_path / 'nope.keras'} does not exist or is not a file; check the path\n"
    )


def test_post_compile_trims_only_what_the_app_never_uses(tmp_path):
    site = tmp_path / "site-packages"
    for folder in ("tensorflow/include/x", "clang", "pandas/tests", "pandas/core", "tensorflow/python"):
        (site / folder).mkdir(parents=True)
        (site / folder / "f.py").write_text("x = 1\n")
    done = subprocess.run(["bash", str(REPO / "bin" / "post_compile"), str(site)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sorted(p.relative_to(site).as_posix() for p in site.rglob("f.py")) == [
        "pandas/core/f.py",
        "tensorflow/python/f.py",
    ]
    assert done.stdout.startswith("post_compile: site-packages trimmed from")
