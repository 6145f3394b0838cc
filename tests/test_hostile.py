"""Hostile and unlucky input, round two (issue 12): each case failed on the code before its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dashboard import service
from dashboard.contract import ModelLimits
from dashboard.errors import (
    IntegrityError,
    ManifestError,
    ModelLoadError,
    ModelSourceError,
    PublishError,
    SchemaError,
    UnsafeModelError,
    scrub,
)
from dashboard.loading import keras_model
from dashboard.prediction.reading.csv_files import read_csv
from dashboard.prediction.schema import parse_schema
from dashboard.prediction.validate import validate
from dashboard.store import fetch
from dashboard.store.manifest import parse_manifest
from dashboard.store.sources import load_catalog
from tests.support.helpers import DEMO, REPO, demo_store, rewrite_config, settings_for, sha256

IRIS = json.loads((DEMO / "manifest.json").read_text())["versions"][0]["schema"]
LIMITS = dict(max_bytes=10_000_000, max_rows=1000)


# 1. wide CSVs and long cells
def test_a_csv_wider_than_the_column_cap_is_refused_before_parsing():
    header = ",".join(f"c{i}" for i in range(5000))
    with pytest.raises(Exception) as caught:
        read_csv((header + "\n" + ",".join("1" * 5000) + "\n").encode(), max_bytes=10**7, max_rows=10, max_columns=1000)
    assert str(caught.value) == (
        "the file has 5,000 columns, over the 1,000 limit; keep the model's columns, or raise CSV_MAX_COLUMNS"
    )


def test_long_bad_cells_are_quoted_short_in_messages():
    cell = "x" * 2_000_000
    data = f"sepal_length,sepal_width,petal_length,petal_width\n{cell},1,1,1\n1,1,1,1\n".encode()
    table = read_csv(data, **LIMITS)
    result = validate(table, parse_schema(IRIS))
    assert result.good.tolist() == [False, True]
    assert len(result.errors[0]) < 200
    assert result.errors[0] == "sepal_length: '" + "x" * 40 + "…' (2,000,000 characters) is not a number"


# 2. archive bombs that passed the pre-scan
def test_many_small_zero_members_are_a_bomb(tmp_path, models):
    target = tmp_path / "many.keras"
    with (
        zipfile.ZipFile(models["folder"] / "classifier.keras") as src,
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
        for i in range(40):
            dst.writestr(f"assets/pad{i}.bin", b"\0" * (1 << 20))
    with pytest.raises(UnsafeModelError, match="compression bomb"):
        keras_model.load("file", {"model": target})


def test_the_unpacked_size_is_capped_by_a_setting(tmp_path, models):
    target = tmp_path / "big.keras"
    with zipfile.ZipFile(models["folder"] / "classifier.keras") as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
        dst.writestr("assets/noise.bin", os.urandom(3 << 20))
    with pytest.raises(UnsafeModelError) as caught:
        keras_model.load("file", {"model": target}, limits=ModelLimits(max_unpacked_bytes=2 << 20))
    assert "unpacks to 3" in str(caught.value) and "MODEL_MAX_UNPACKED_BYTES" in str(caught.value)
    settings = settings_for(tmp_path, MODEL_MAX_BYTES=str(8 << 20))
    assert settings.model_limits.max_unpacked_bytes == 8 << 20  # tied to MODEL_MAX_BYTES unless set


# 3. tiny files that declare enormous models
def test_a_tiny_file_declaring_a_huge_dense_layer_is_refused_from_its_config(tmp_path, models):
    def huge(config):
        layers = config["config"]["layers"]
        layers[1]["config"]["units"] = 100_000
        layers[2]["build_config"]["input_shape"] = [None, 100_000]
        layers[2]["config"]["units"] = 100_000

    target = rewrite_config(models["folder"] / "classifier.keras", tmp_path / "huge.keras", huge)
    assert target.stat().st_size < 100_000
    with pytest.raises(ModelLoadError) as caught:
        keras_model.load("file", {"model": target})
    assert str(caught.value).startswith("huge.keras declares about 10,000,500,000 parameters, over the limit of")
    assert "MODEL_MAX_PARAMETERS" in str(caught.value)


def test_a_model_with_too_many_outputs_is_refused_from_its_config(tmp_path, models):
    def wide(config):
        config["config"]["layers"][2]["config"]["units"] = 100_000

    target = rewrite_config(models["folder"] / "classifier.keras", tmp_path / "wide.keras", wide)
    with pytest.raises(ModelLoadError) as caught:
        keras_model.load("file", {"model": target})
    assert str(caught.value).startswith("wide.keras gives 100,000 values per row, over the limit of 10,000")


# 4. downloads without a total deadline
def test_a_trickling_download_stops_at_the_deadline(store, tmp_path):
    url = store.put("m/slow.keras", b"x" * 200)
    store.fault("m/slow.keras", "trickle")
    settings = settings_for(tmp_path, MODEL_DOWNLOAD_TIMEOUT="1", MODEL_READ_TIMEOUT="5")
    with pytest.raises(ModelSourceError) as caught:
        fetch.fetch(url, settings)
    assert str(caught.value) == (
        f"{url} took longer than 1 s to download (MODEL_DOWNLOAD_TIMEOUT); check that the server is up, "
        "or raise MODEL_DOWNLOAD_TIMEOUT for a large file on a slow link"
    )
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.name != ".lock"]


# 5. upload defaults that fit the documented 1 GB dyno
def test_upload_defaults_fit_a_1gb_dyno(tmp_path):
    settings = settings_for(tmp_path)
    assert settings.csv_max_rows == 200_000 and settings.csv_max_bytes == 50 << 20


# 6. quadratic tags
def test_version_tags_take_linear_work(tmp_path, monkeypatch):
    from dashboard.store import versions

    entries = [{"version": f"1.{i}", "url": f"m{i}.keras"} for i in range(2000)]
    aliases = {f"a{i}": f"1.{i}" for i in range(500)}
    found, clean, _ = parse_manifest({"versions": entries, "aliases": aliases}, str(tmp_path / "manifest.json"))
    catalog = versions.Catalog("m", "s", tuple(sorted(found, key=lambda v: v.version, reverse=True)), clean, found[0])
    made = []
    real = versions.Version
    monkeypatch.setattr(versions, "Version", lambda text: made.append(text) or real(text))
    tags = catalog.tags
    assert tags["1.3"] == ["a3"] and tags["1.1999"] == [] and tags["1.0"] == ["default", "a0"]
    assert len(made) <= len(aliases)


# 7. an extra field on the first data line
def test_an_extra_field_on_the_first_data_line_flags_that_row_and_shifts_nothing():
    data = b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2,9\n4.9,3.0,1.4,0.2\n"
    table = read_csv(data, **LIMITS)
    result = validate(table, parse_schema(IRIS))
    assert result.errors[0].startswith("line 2 has 5 fields but the header has 4")
    assert result.errors[1] == ""
    np.testing.assert_allclose(result.inputs, [[4.9, 3.0, 1.4, 0.2]], rtol=1e-6)


# 8. thousands separators
def test_thousands_separators_are_never_read_as_decimal_commas():
    comma = read_csv(b'sepal_length,sepal_width,petal_length,petal_width\n"12,500",1,1,1\n', **LIMITS)
    result = validate(comma, parse_schema(IRIS))
    assert result.errors.tolist() == [
        "sepal_length: '12,500' is not a number; write numbers without thousands separators"
    ]
    semi = read_csv(b"sepal_length;sepal_width;petal_length;petal_width\n12,500;5,1;1;1\n", **LIMITS)
    result = validate(semi, parse_schema(IRIS))
    assert result.errors.tolist() == [
        "sepal_length: '12,500' is ambiguous (12.5 with a decimal comma, or 12500 with a thousands separator); "
        "write 12.5 or 12500"
    ]
    good = read_csv(b"sepal_length;sepal_width;petal_length;petal_width\n5,1;3,25;1;1\n", **LIMITS)
    result = validate(good, parse_schema(IRIS))
    np.testing.assert_allclose(result.inputs, [[5.1, 3.25, 1, 1]], rtol=1e-6)


# 9. stale models and schemas
def test_a_corrected_schema_with_the_same_model_file_is_served(tmp_path, copy_demo):
    settings = settings_for(tmp_path, MODEL_MANIFEST_URL=str(copy_demo / "manifest.json"))
    pool = service.ModelPool(2)
    first = pool.get(settings, load_catalog(settings).default)
    manifest = json.loads((copy_demo / "manifest.json").read_text())
    labels = manifest["versions"][0]["schema"]["output"]["labels"]
    manifest["versions"][0]["schema"]["output"]["labels"] = list(reversed(labels))
    (copy_demo / "manifest.json").write_text(json.dumps(manifest))
    second = pool.get(settings, load_catalog(settings).default)
    assert first.schema.output.labels == tuple(labels)
    assert second.schema.output.labels == tuple(reversed(labels))


def test_an_unpinned_model_replaced_in_place_is_served_after_the_catalog_is_read_again(store, tmp_path, models):
    url = store.put("m/model.keras", (models["folder"] / "binary.keras").read_bytes())
    settings = settings_for(tmp_path, MODEL_URL=url)
    pool = service.ModelPool(2)
    assert pool.get(settings, load_catalog(settings).default).schema.output.type == "binary"
    store.put("m/model.keras", (models["folder"] / "regression.keras").read_bytes())
    assert pool.get(settings, load_catalog(settings).default).schema.output.type == "regression"


# 10. cached pinned files are checked again on load
def test_a_pinned_file_swapped_in_the_cache_is_downloaded_again(store, tmp_path):
    body = os.urandom(5000)
    url = store.put("m/model.keras", body)
    settings = settings_for(tmp_path)
    path = fetch.fetch(url, settings, sha256(body))
    path.write_bytes(b"tampered")
    again = fetch.fetch(url, settings, sha256(body))
    assert again.read_bytes() == body and store.hits("m/model.keras") == 2
    path.write_bytes(b"tampered")
    store.fault("m/model.keras", "404")
    with pytest.raises(ModelSourceError):
        fetch.fetch(url, settings, sha256(body))
    assert not path.exists()


# 12. secrets in logs
@pytest.mark.parametrize(
    "text, secret",
    [
        ("GET /models/m.keras?key=SECRETKEY123 HTTP/1.1", "SECRETKEY123"),
        ('"GET /m.keras?token=T0KEN&x=1 HTTP/1.1" 200', "T0KEN"),
        ("https://user:p@ss@host.example/m.keras", "ss@"),
        ("s3://bucket/m.keras?anything=abc123xyz", "abc123xyz"),
    ],
)
def test_any_query_string_and_the_whole_password_are_removed(text, secret):
    assert secret not in scrub(text)


# 13. the versions command prints notes as text
def test_versions_prints_notes_on_one_line_without_escapes_or_secrets(tmp_path, copy_demo):
    manifest = json.loads((copy_demo / "manifest.json").read_text())
    manifest["versions"][1]["notes"] = (
        "old\n1.1.0  aaaaaaaaaaaa  fake (default)\x1b[31mred\x1b[0m https://h/x?X-Amz-Signature=" + "ab" * 8
    )
    (copy_demo / "manifest.json").write_text(json.dumps(manifest))
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "APP_VERSION"))}
    environ.update(MODEL_MANIFEST_URL=str(copy_demo / "manifest.json"), MODEL_CACHE_DIR=str(tmp_path / "c"))
    done = subprocess.run(
        [sys.executable, "-m", "dashboard", "versions"],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and sum(line.endswith("(default)") for line in lines) == 1
    assert "\x1b" not in done.stdout and "abababab" not in done.stdout


# 14. deeply nested JSON
def test_deeply_nested_json_is_malformed_not_a_crash(tmp_path, models):
    deep = "[" * 200_000 + "]" * 200_000
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"versions": ' + deep + "}")
    with pytest.raises(ManifestError, match="nested too deeply"):
        load_catalog(settings_for(tmp_path, MODEL_MANIFEST_URL=str(manifest)))
    arch = tmp_path / "arch.json"
    arch.write_text(deep)
    with pytest.raises(ModelLoadError, match="nested too deeply"):
        keras_model.load("architecture", {"architecture": arch, "weights": models["folder"] / "classifier.weights.h5"})
    with pytest.raises(SchemaError, match="nested too deeply"):
        from dashboard.prediction.schema import parse_schema_json

        parse_schema_json(deep.encode(), "schema.json")


def test_a_deep_model_config_is_refused_as_malformed(tmp_path, models):
    def nest(config):
        node = config["config"]["layers"][1]["config"]
        for _ in range(500):
            node["extra"] = {}
            node = node["extra"]

    target = rewrite_config(models["folder"] / "classifier.keras", tmp_path / "deep.keras", nest)
    with pytest.raises(ModelLoadError, match="nested too deeply"):
        keras_model.load("file", {"model": target})


# 15. ordinary models refused as unsafe
def test_a_plain_python_loss_in_the_compile_config_is_not_a_reason_to_refuse(tmp_path, models):
    def compiled(config):
        config["compile_config"] = {
            "optimizer": "adam",
            "loss": {
                "module": "builtins",
                "class_name": "function",
                "config": "my_loss",
                "registered_name": "function",
            },
        }

    target = rewrite_config(models["folder"] / "classifier.keras", tmp_path / "compiled.keras", compiled)
    loaded = keras_model.load("file", {"model": target})
    assert loaded.output_units == 4


# 16. schemas the parser accepted but the page could not show
@pytest.mark.parametrize(
    "feature, message",
    [
        ({"name": "a", "min": -1e308, "max": 1e308}, 'schema, features[0] (a): "min" must be between -1e+15 and 1e+15'),
        ({"name": "a", "type": "category", "choices": [1, "1"]}, "schema, features[0] (a): choice '1' is listed twice"),
        (
            {"name": "a", "type": "category", "choices": ["x", None]},
            "schema, features[0] (a): choices must be text or numbers, not None",
        ),
    ],
)
def test_schemas_are_validated_fully_at_parse_time(feature, message):
    with pytest.raises(SchemaError) as caught:
        parse_schema({"features": [feature], "output": {"type": "regression"}})
    assert str(caught.value) == message


# 17. no temporary copy leaks
def test_loading_a_file_without_a_model_suffix_leaves_no_temporary_copy(tmp_path, models):
    target = tmp_path / "download"
    target.write_bytes((models["folder"] / "classifier.keras").read_bytes())
    before = set(Path(tempfile.gettempdir()).glob("keras-dashboard-*"))
    for _ in range(3):
        keras_model.load("file", {"model": target})
    assert set(Path(tempfile.gettempdir()).glob("keras-dashboard-*")) == before


# 18. published names work over HTTP
def test_published_file_names_are_url_safe(tmp_path, store):
    from dashboard.service.publish import publish

    source = tmp_path / "my model#1?%.keras"
    source.write_bytes((DEMO / "iris-1.0.0.keras").read_bytes())
    done = publish(source, "1.0.0", str(tmp_path / "store"))
    assert all(c.isalnum() or c in "._-" for c in done.files[0]), done.files
    for path in (tmp_path / "store").iterdir():
        store.put_file(f"s/{path.name}", path)
    settings = settings_for(tmp_path, MODEL_MANIFEST_URL=store.url("s/manifest.json"))
    served = service.load_version(settings, load_catalog(settings).default)
    assert served.label == "1.0.0"


# 19. --lean without the LiteRT runtime
def test_publish_lean_without_litert_publishes_nothing(tmp_path, monkeypatch):
    from dashboard.service.publish import PublishOptions, publish

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(PublishError) as caught:
        publish(DEMO / "iris-1.0.0.keras", "1.0.0", str(tmp_path / "store"), PublishOptions(lean=True))
    assert str(caught.value) == (
        "--lean needs the LiteRT runtime, which is not installed here (pip install ai-edge-litert); "
        "nothing was published"
    )
    assert not (tmp_path / "store" / "manifest.json").exists()


def test_the_demo_store_over_http_still_serves(store, tmp_path):
    settings = settings_for(tmp_path, MODEL_MANIFEST_URL=demo_store(store))
    served = service.load_version(settings, load_catalog(settings).default)
    assert service.predict_row(served, {f.name: f.initial for f in served.schema.features}).predicted == 1


def test_integrity_errors_still_name_the_file(store, tmp_path):
    url = store.put("m/x.keras", b"abc")
    with pytest.raises(IntegrityError, match="sha256 of"):
        fetch.fetch(url, settings_for(tmp_path), "0" * 64)
