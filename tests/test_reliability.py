"""The reliability and security matrix: every case ends with the app still serving, nothing leaked, nothing lost.

Cases 1-7 (model source), 8-14 (model content), 15-19 (input), 20-22 (load) and the hot swap, through the
real app (AppTest) on a store served by the loopback HTTP server. Case 22, the secret scan, runs over the
whole suite: see conftest.py.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import service
from tests.support.helpers import DEMO, REPO, at_once, demo_store, free_port, settings_for, sha256, shown

APP = str(REPO / "dashboard" / "ui" / "page.py")
SECRET_QUERY = "X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=feedface"
GOOD = (DEMO / "iris-1.0.0.keras").read_bytes()
SCHEMA = json.loads((DEMO / "manifest.json").read_text())["versions"][1]["schema"]
FLOWER = {"sepal_length": 5.0, "sepal_width": 3.4, "petal_length": 1.5, "petal_width": 0.2}


def page_text(at: AppTest) -> str:
    """Everything the page shows as text."""
    parts = []
    for kind in ("error", "warning", "info", "markdown", "caption", "metric", "title", "header", "subheader"):
        for element in getattr(at, kind):
            parts.append(str(getattr(element, "value", "")))
            parts.append(str(getattr(element, "label", "")))
    return "\n".join(parts)


def two_version_store(store, bad_entry: dict) -> str:
    """A store with a good 1.0.0 and a 2.0.0 described by bad_entry; returns the manifest URL with a secret."""
    store.put("s/good.keras", GOOD)
    manifest = {
        "name": "matrix",
        "versions": [
            {"version": "2.0.0", "schema": SCHEMA, **bad_entry},
            {"version": "1.0.0", "url": "good.keras", "sha256": sha256(GOOD), "schema": SCHEMA},
        ],
    }
    store.put("s/manifest.json", json.dumps(manifest).encode())
    return store.url("s/manifest.json") + "?" + SECRET_QUERY


def still_serving_after_choosing_the_bad_version(env, manifest_url: str) -> tuple[AppTest, str]:
    env.setenv("MODEL_MANIFEST_URL", manifest_url)
    env.setenv("MODEL_VERSION", "1.0.0")
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert "**Version** 1.0.0" in "\n".join(shown(m.value) for m in at.sidebar.markdown)
    at.sidebar.selectbox(key="version").select("2.0.0").run()
    assert not at.exception
    message = shown(at.sidebar.error[0].value)
    assert message.startswith("Version 2.0.0 could not be loaded: ")
    assert message.endswith(" Still serving version 1.0.0.")
    assert "**Version** 1.0.0" in "\n".join(shown(m.value) for m in at.sidebar.markdown)
    for name, value in FLOWER.items():
        at.number_input(key=f"single-{name}").set_value(value)
    at.button(key="single-submit").click().run()
    assert at.metric[0].value == "setosa", "the previous version must keep serving"
    text = page_text(at)
    assert "AKIA" not in text and "X-Amz-Signature" not in text and "feedface" not in text
    return at, message[len("Version 2.0.0 could not be loaded: ") : -len(" Still serving version 1.0.0.")]


def no_partial_files(cache: Path) -> None:
    leftovers = [p.name for p in cache.rglob(".part-*")] if cache.exists() else []
    assert leftovers == []


# 1-5: the model source fails -------------------------------------------------------------------------------------

SOURCE_FAULTS = {
    "dns failure": (
        {"url": "http://model-store.invalid/m.keras"},
        "http://model-store.invalid/m.keras is unreachable (host name not found); "
        "check the URL and that the server is up",
    ),
    "connection refused": (
        {"url": "http://127.0.0.1:{port}/m.keras?sig=abc"},
        "http://127.0.0.1:{port}/m.keras is unreachable (connection refused); check the URL and that the server is up",
    ),
    "404": (
        {"url": "missing.keras"},
        "{base}/s/missing.keras was not found (HTTP 404); check the URL or the manifest entry",
    ),
    "500": (
        {"url": "bad.keras", "fault": "500"},
        "{base}/s/bad.keras is unreachable: the server answered HTTP 500 (tried 3 times); try again later",
    ),
    "truncated body": (
        {"url": "bad.keras", "fault": "truncate", "sha256": sha256(GOOD)},
        "download of {base}/s/bad.keras was cut off",
    ),
    "wrong sha256": (
        {"url": "bad.keras", "sha256": "0" * 64},
        "sha256 of {base}/s/bad.keras is " + sha256(GOOD)[:12] + "…, expected 000000000000…; "
        "the download is not the published file: republish it or fix the sha256 in the manifest",
    ),
    "never answers": (
        {"url": "bad.keras", "fault": "hang"},
        "{base}/s/bad.keras is unreachable: no answer within 0.5 s (MODEL_READ_TIMEOUT); check that the server is up",
    ),
    "over the size cap": (
        {"url": "big.keras", "big": True},
        "{base}/s/big.keras is 293 KiB, over the 48.8 KiB limit; "
        "raise MODEL_MAX_BYTES if this file is expected to be that large",
    ),
}


@pytest.mark.parametrize("case", list(SOURCE_FAULTS))
def test_model_source_faults(store, env, tmp_path, case):
    entry, expected = SOURCE_FAULTS[case]
    entry = dict(entry)
    port = free_port()
    entry["url"] = entry["url"].format(port=port)
    fault = entry.pop("fault", None)
    if entry.pop("big", False):
        store.put("s/big.keras", os.urandom(300_000))
        env.setenv("MODEL_MAX_BYTES", "50000")
    store.put("s/bad.keras", GOOD)
    if fault:
        store.fault("s/bad.keras", fault)
    if case == "never answers":
        env.setenv("MODEL_READ_TIMEOUT", "0.5")
    _, message = still_serving_after_choosing_the_bad_version(env, two_version_store(store, entry))
    expected = expected.format(port=port, base=store.base)
    assert message.startswith(expected) if case == "truncated body" else message == expected
    if case == "500":
        assert store.hits("s/bad.keras") == 3  # retried: a 5xx can pass
    if case in ("404", "wrong sha256"):
        assert store.hits("s/bad.keras" if case != "404" else "s/missing.keras") == 1  # not retried: it cannot
    no_partial_files(tmp_path / "cache")


# 6: the cache folder is read-only or full ----------------------------------------------------------------------


def test_unwritable_cache_folder_is_explained_and_the_page_still_renders(store, env):
    env.setenv("MODEL_CACHE_DIR", "/proc/keras-dashboard-cache")  # cannot be created, even by root
    env.setenv("MODEL_MANIFEST_URL", two_version_store(store, {"url": "good.keras"}))
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert shown(at.error[0].value).startswith(
        "Version 2.0.0 could not be loaded: the cache folder /proc/keras-dashboard-cache is not writable"
    )
    assert "set MODEL_CACHE_DIR to a writable folder" in shown(at.error[0].value)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 128 KB tmpfs (this machine's tests run as root, as CI does)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    assert done.returncode == 0, f"could not mount a small tmpfs for the disk-full case: {done.stderr}"
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_full_cache_disk_is_explained_and_leaves_nothing(store, env, tiny_disk):
    env.setenv("MODEL_CACHE_DIR", str(tiny_disk))
    store.put("s/huge.keras", os.urandom(400_000))
    _, message = still_serving_after_choosing_the_bad_version(env, two_version_store(store, {"url": "huge.keras"}))
    assert message == (
        f"no space left in the cache folder {next(tiny_disk.glob('unpinned/*'))}; free some space "
        "or set MODEL_CACHE_DIR to a folder on a larger disk"
    )
    no_partial_files(tiny_disk)


# 7: two processes fetch the same version at once: tests/test_fetch.py::test_two_processes_fetching_the_same_file...


# 8-14: hostile or broken model content -------------------------------------------------------------------------


def rewrite(source: bytes, change=None, extra: dict | None = None, links: tuple = ()) -> bytes:
    import io

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(source)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json" and change:
                config = json.loads(data)
                change(config)
                data = json.dumps(config).encode()
            dst.writestr(item, data)
        for name, data in (extra or {}).items():
            dst.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
        for name, target in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            dst.writestr(info, target)
    return out.getvalue()


def hostile(kind: str, models, canary: Path) -> tuple[bytes, str, str]:
    """(file bytes, file name, expected start of the message)."""
    if kind == "lambda in .keras":
        return (models["folder"] / "lambda.keras").read_bytes(), "m.keras", "m.keras uses a Lambda layer"
    if kind == "lambda in .h5":
        return (models["folder"] / "lambda.h5").read_bytes(), "m.h5", "m.h5 uses a Lambda layer"

    def module(config):
        layer = config["config"]["layers"][1]
        layer.update(module="subprocess", class_name="check_call", config={"args": ["touch", str(canary)]})

    def function(config):  # a Keras layer whose activation names an arbitrary function
        layer = config["config"]["layers"][1]
        layer["config"]["activation"] = {
            "module": "os",
            "class_name": "function",
            "config": "system",
            "registered_name": "function",
        }

    def tfsm(config):
        layer = config["config"]["layers"][1]
        layer.update(class_name="TFSMLayer", config={"filepath": "/etc", "call_endpoint": "serve"})

    if kind == "config naming a module":
        return rewrite(GOOD, module), "m.keras", "m.keras names the Python module 'subprocess'"
    if kind == "config naming a function":
        return rewrite(GOOD, function), "m.keras", "m.keras names the Python module 'os'"
    if kind == "TFSMLayer pointing outside":
        return rewrite(GOOD, tfsm), "m.keras", "m.keras uses a TFSMLayer"
    if kind == "archive with ../":
        return rewrite(GOOD, extra={f"../../{canary.name}": b"x"}), "m.keras", "m.keras contains the path '../../"
    if kind == "archive with an absolute path":
        return rewrite(GOOD, extra={str(canary): b"x"}), "m.keras", f"m.keras contains the path '{canary}'"
    if kind == "archive with a link":
        return rewrite(GOOD, links=(("assets/link", str(canary)),)), "m.keras", "m.keras contains a link"
    if kind == "archive bomb (large)":
        return (
            rewrite(GOOD, extra={"assets/zeros": b"\0" * (40 << 20)}),
            "m.keras",
            "m.keras: 'assets/zeros' unpacks to 41943040 bytes from",
        )
    if kind == "archive bomb (many files)":
        return rewrite(GOOD, extra={f"assets/{i}": b"" for i in range(1200)}), "m.keras", "m.keras holds 1203 files"
    if kind == "random bytes named .keras":
        return os.urandom(20_000), "m.keras", "m.keras is neither a .keras archive nor an HDF5 (.h5) model file"
    raise AssertionError(kind)


HOSTILE = [
    "lambda in .keras",
    "config naming a module",
    "config naming a function",
    "TFSMLayer pointing outside",
    "lambda in .h5",
    "archive with ../",
    "archive with an absolute path",
    "archive with a link",
    "archive bomb (large)",
    "archive bomb (many files)",
    "random bytes named .keras",
]


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_models_are_refused_and_run_no_code(store, env, tmp_path, models, kind):
    canary = models["canary"] if "lambda" in kind else tmp_path / "cache" / "canary-written"
    canary.unlink(missing_ok=True)
    data, name, expected = hostile(kind, models, canary)
    store.put(f"s/{name}", data)
    _, message = still_serving_after_choosing_the_bad_version(
        env, two_version_store(store, {"url": name, "sha256": sha256(data)})
    )
    assert message.startswith(expected)
    assert not canary.exists(), "code or a write from the refused file ran"
    assert not list((tmp_path / "cache").rglob(canary.name))


def test_a_model_whose_inputs_disagree_with_its_schema(store, env):
    wrong = {"features": SCHEMA["features"][:3], "output": SCHEMA["output"]}
    url = two_version_store(store, {"url": "good.keras", "sha256": sha256(GOOD)})
    manifest = json.loads(store.server.files["/s/manifest.json"])
    manifest["versions"][0]["schema"] = wrong
    store.put("s/manifest.json", json.dumps(manifest).encode())
    _, message = still_serving_after_choosing_the_bad_version(env, url)
    assert message == (
        "the schema of version 2.0.0 lists 3 features but the model takes 4 per row; "
        "list one feature per model input column, in order"
    )


# 15-19: hostile or messy input ---------------------------------------------------------------------------------

HEADER = "sepal_length,sepal_width,petal_length,petal_width"
INPUTS = {
    "BOM": ("\ufeff" + HEADER + "\n5.0,3.4,1.5,0.2\n").encode("utf-8"),
    "semicolons and decimal commas": (HEADER.replace(",", ";") + "\n5,0;3,4;1,5;0,2\n").encode(),
    "Latin-1 text column": (HEADER + ",note\n5.0,3.4,1.5,0.2,café\n").encode("latin-1"),
    "tabs": (HEADER.replace(",", "\t") + "\n5.0\t3.4\t1.5\t0.2\n").encode(),
    "missing column": b"sepal_length,sepal_width\n1,2\n",
    "extra columns": (HEADER + ",id,comment\n5.0,3.4,1.5,0.2,7,x\n").encode(),
    "NaN, inf and text in numbers": (HEADER + "\n5.0,3.4,1.5,0.2\nnan,1,1,1\ninf,1,1,1\nabc,1,1,1\n").encode(),
    "empty file": b"",
    "header only": (HEADER + "\n").encode(),
    "binary named .csv": b"\x89PNG\r\n\x1a\n\x00\x00binary",
    "over the byte cap": (HEADER + "\n" + "5.0,3.4,1.5,0.2\n" * 70_000).encode(),
    "over the row cap": (HEADER + "\n" + "5,3,1,0\n" * 5_001).encode(),
    "formula injection": (HEADER + ",note\n5.0,3.4,1.5,0.2,=cmd|' /C calc'!A0\n5.0,3.4,1.5,0.2,@SUM(1)\n").encode(),
    "a line with too many fields": (HEADER + "\n5.0,3.4,1.5,0.2\n5.0,3.4,1.5,0.2,9\n").encode(),
}
INPUT_CASES = {
    "BOM": ("report", 1, 0),
    "semicolons and decimal commas": ("report", 1, 0),
    "Latin-1 text column": ("report", 1, 0),
    "tabs": ("report", 1, 0),
    "missing column": (
        "error",
        "x.csv: columns 'petal_length', 'petal_width' are missing; expected columns: "
        "sepal_length, sepal_width, petal_length, petal_width; download the template "
        "from the Batch tab",
    ),
    "extra columns": ("report", 1, 0),
    "NaN, inf and text in numbers": ("report", 1, 3),
    "empty file": (
        "error",
        "x.csv: the file is empty; upload a CSV with a header row and one row per prediction; "
        "download the template from the Batch tab",
    ),
    "header only": ("error", "x.csv: the file has a header but no rows; add one row per prediction below the header"),
    "binary named .csv": (
        "error",
        "x.csv: the file is not a text CSV (it looks binary); export your table as CSV "
        "(comma, semicolon or tab separated) and upload that; download the template "
        "from the Batch tab",
    ),
    "over the byte cap": (
        "error",
        "x.csv: the file is 1.1 MiB, over the 976.6 KiB limit; split it into smaller files (or raise CSV_MAX_BYTES)",
    ),
    "over the row cap": (
        "error",
        "x.csv: the file has more than 5,000 rows, over the limit; split it into smaller files (or raise CSV_MAX_ROWS)",
    ),
    "formula injection": ("report", 2, 0),
    "a line with too many fields": ("report", 1, 1),
}


@pytest.mark.parametrize("case", list(INPUT_CASES))
def test_messy_and_hostile_uploads(env, case):
    env.setenv("CSV_MAX_BYTES", "1000000")
    env.setenv("CSV_MAX_ROWS", "5000")
    at = AppTest.from_file(APP, default_timeout=120).run()
    data = INPUTS[case]
    at.file_uploader(key="batch-upload").upload("x.csv", data, "text/csv").run()
    assert not at.exception
    outcome = INPUT_CASES[case]
    if outcome[0] == "error":
        assert [shown(e.value) for e in at.error] == [outcome[1]]
    else:
        assert [m.value for m in at.metric][:2] == [str(outcome[1]), str(outcome[2])]
        table = at.main.dataframe[0].value
        assert (table["error"] == "").sum() == outcome[1]
    at.button(key="single-submit").click().run()  # the app keeps serving
    assert at.metric[0].value in ("setosa", "versicolor", "virginica")


def test_injection_cells_are_neutralised_in_the_download():
    from dashboard.common.csv_export import safe_csv
    from dashboard.prediction.reading.csv_files import read_csv

    frame = read_csv(INPUTS["formula injection"], 10**6, 100).frame
    text = safe_csv(frame).decode()
    assert "'=cmd|' /C calc'!A0" in text and "'@SUM(1)" in text


def test_form_values_out_of_range_or_not_numbers(env):
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.number_input(key="single-sepal_length").set_value(-50.0)
    at.button(key="single-submit").click().run()
    assert [shown(w.value) for w in at.warning] == [
        "sepal_length -50 is below the usual minimum 4 — the prediction may be unreliable.",
        "sepal_length -50 is outside the training range 4.3 – 7.9: the model never saw such a value.",
    ]
    served = service.load_version(service.settings(), service.catalog(service.settings()).default)
    row = service.predict_row(served, {**FLOWER, "sepal_width": "three"})
    assert row.table["error"].tolist() == ["sepal_width: 'three' is not a number"]


# 20-21: load ---------------------------------------------------------------------------------------------------


def test_twenty_concurrent_sessions_share_one_load_and_agree(store, tmp_path):
    url = demo_store(store)
    settings = settings_for(tmp_path, MODEL_MANIFEST_URL=url)
    version = service.catalog(settings).default
    pool = service.ModelPool(2)
    data = (DEMO / "sample.csv").read_bytes()
    serial = service.predict_csv(settings, pool.get(settings, version), data).table
    fresh_pool = service.ModelPool(2)
    results = at_once(20, lambda i: service.predict_csv(settings, fresh_pool.get(settings, version), data).table)
    assert all(r.equals(serial) for r in results)
    assert fresh_pool.loaded() == [version.label]
    assert store.hits("models/iris-1.1.0.keras") == 1  # one download for all twenty sessions


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_200_reruns_and_50_uploads_keep_memory_flat(env, capsys):
    at = AppTest.from_file(APP, default_timeout=120).run()
    sample = (DEMO / "sample.csv").read_bytes()
    for _ in range(10):  # warm up: caches, first upload, first chart
        at.run()
    at.file_uploader(key="batch-upload").upload("warm.csv", sample, "text/csv").run()
    gc.collect()
    before = rss_mb()
    for _ in range(200):
        at.run()
    for i in range(50):
        at.file_uploader(key="batch-upload").upload(
            f"f{i}.csv", sample + f"5,3,1,0.{i % 10}\n".encode(), "text/csv"
        ).run()
        assert not at.exception
    gc.collect()
    growth = rss_mb() - before
    with capsys.disabled():
        print(
            f"\nmemory after 200 reruns and 50 uploads: {before:.0f} MB -> {before + growth:.0f} MB ({growth:+.1f} MB)"
        )
    assert growth < 60, f"memory grew by {growth:.0f} MB over 200 reruns and 50 uploads"


# Hot swap ------------------------------------------------------------------------------------------------------


def sync(folder: Path, store, prefix: str = "hot") -> None:
    for path in folder.iterdir():
        if not path.name.startswith("."):
            store.put_file(f"{prefix}/{path.name}", path)


def test_hot_swap_good_broken_good(store, env, tmp_path):
    from dashboard.service.publish import PublishOptions, publish

    folder = tmp_path / "store"
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    publish(DEMO / "iris-1.0.0.keras", "1.0.0", str(folder), PublishOptions(schema_path=schema, notes="good one"))
    sync(folder, store)
    env.setenv("MODEL_MANIFEST_URL", store.url("hot/manifest.json"))
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert "**Version** 1.0.0" in "\n".join(shown(m.value) for m in at.sidebar.markdown)

    publish(
        DEMO / "iris-1.1.0.keras",
        "1.5.0",
        str(folder),
        PublishOptions(schema_path=schema, notes="broken on the server"),
    )
    sync(folder, store)
    broken = json.loads((folder / "manifest.json").read_text())["versions"][0]["url"]
    store.fault(f"hot/{broken}", "truncate")
    at.sidebar.button(key="refresh").click().run()
    assert not at.exception
    assert at.sidebar.selectbox(key="version").value == "1.5.0"
    assert shown(at.sidebar.error[0].value).startswith("Version 1.5.0 could not be loaded: download of ")
    assert shown(at.sidebar.error[0].value).endswith("Still serving version 1.0.0.")
    at.button(key="single-submit").click().run()
    assert at.metric[0].value in ("setosa", "versicolor", "virginica")
    assert at.caption[-1].value.endswith("version 1.0.0") or "version 1.0.0" in page_text(at)

    store.fault(f"hot/{broken}", None)  # the server is fixed: Retry now works
    at.sidebar.button(key="retry").click().run()
    assert "**Version** 1.5.0" in "\n".join(shown(m.value) for m in at.sidebar.markdown)

    publish(DEMO / "iris-1.0.0.keras", "2.0.0", str(folder), PublishOptions(schema_path=schema, notes="good again"))
    sync(folder, store)
    at.sidebar.button(key="refresh").click().run()
    assert at.sidebar.selectbox(key="version").value == "2.0.0"
    assert "**Version** 2.0.0" in "\n".join(shown(m.value) for m in at.sidebar.markdown)
    assert not at.sidebar.error


# 22: the scan itself can find a secret (the suite-wide scan runs at the end of the session, in conftest.py) ----


def test_the_secret_scan_finds_planted_secrets_and_the_suite_has_been_producing_text():
    from tests.support.secretscan import SCANNED, find_secrets

    planted = [
        ("test", "GET https://b.s3.amazonaws.com/m.keras?X-Amz-Signature=abc"),
        ("test", "no secret here"),
        ("test", "https://user:password@host/x"),
        ("test", "https://a.blob/x?sv=1&sig=abc"),
    ]
    assert find_secrets(planted) == [("test", "X-Amz-Signature"), ("test", "user:password@"), ("test", "sig=")]
    assert find_secrets(SCANNED) == []


def test_frequent_api_predictions_make_one_log_line_a_period(caplog):
    """Issue 25: a line per API request was 4-7% of a loaded server's CPU; the first is logged at once, then one line
    per period says who did how much."""
    import logging

    from dashboard.common.logs import Tally

    now = [1000.0]
    tally = Tally("API predictions", period=60, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="dashboard"):
        tally.add("alice via api/v1 with version 1.1.0", 1)
        for _ in range(500):
            tally.add("alice via api/v1 with version 1.1.0", 2)
        now[0] += 59
        tally.add("bob via MLflow with version 1.0.0", 10)
        first = "API predictions: 1 request(s) since the last line: alice via api/v1 with version 1.1.0: 1 (1 rows)"
        assert [r.getMessage() for r in caplog.records] == [first]
        now[0] += 1
        tally.add("bob via MLflow with version 1.0.0", 10)
    assert [r.getMessage() for r in caplog.records] == [
        first,
        "API predictions: 502 request(s) since the last line: alice via api/v1 with version 1.1.0: 500 (1,000 rows); "
        "bob via MLflow with version 1.0.0: 2 (20 rows)",
    ]
