"""The dashboard through Streamlit's AppTest, on the demo store and on a store served over loopback HTTP."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.support.apptest import start
from tests.support.helpers import DEMO, demo_store, sha256, shown

SAMPLE = (DEMO / "sample.csv").read_bytes()


def card(at: AppTest) -> str:
    return "\n".join(shown(m.value) for m in at.sidebar.markdown)


def errors(at: AppTest) -> list[str]:
    """Every error on the page, sidebar included."""
    return [shown(e.value) for e in at.error]


def warnings(at: AppTest) -> list[str]:
    """Every warning on the page, sidebar included."""
    return [shown(w.value) for w in at.warning]


@pytest.fixture(params=["demo", "http"])
def source(request, env):
    """Run the test on the embedded demo store and on a copy served by the loopback HTTP server."""
    if request.param == "http":
        store = request.getfixturevalue("store")
        env.setenv("MODEL_MANIFEST_URL", demo_store(store) + "?X-Amz-Signature=SECRETSIG")
    return request.param


def test_demo_store_opens_with_versions_and_model_card(env):
    at = start()
    assert not at.exception
    selector = at.sidebar.selectbox(key="version")
    assert selector.options == ["1.1.0  (default)", "1.0.0  (stable)"]
    assert selector.value == "1.1.0"
    text = card(at)
    manifest = json.loads((DEMO / "manifest.json").read_text())
    assert "**Version** 1.1.0" in text and manifest["versions"][0]["sha256"][:12] in text
    assert "**Inputs** 4 (below)" in text
    inputs = at.sidebar.dataframe[0].value
    assert inputs["input"].tolist() == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert inputs["usual values"].tolist() == ["4 – 8 cm", "2 – 5 cm", "1 – 7 cm", "0 – 3 cm"]
    assert "**Output** classification: setosa, versicolor, virginica" in text
    assert "**Load time**" in text and "**Format** .keras" in text
    assert at.sidebar.caption[0].value == "Models from: embedded demo store"
    assert at.query_params["version"] == "1.1.0"
    assert errors(at) == []


def test_switching_versions_updates_the_card_and_the_link(source):
    at = start()
    at.sidebar.selectbox(key="version").select("1.0.0").run()
    assert not at.exception
    assert "**Version** 1.0.0" in card(at)
    assert at.query_params["version"] == "1.0.0"


@pytest.mark.parametrize(
    "asked, chosen, warning",
    [
        ("1.0.0", "1.0.0", None),
        ("stable", "1.0.0", None),
        (
            "7.0",
            "1.1.0",
            "version 7.0 was asked for (?version= in the link) but does not exist; using the newest, 1.1.0",
        ),
    ],
)
def test_version_in_the_page_link(env, asked, chosen, warning):
    at = start({"version": asked})
    assert at.sidebar.selectbox(key="version").value == chosen
    assert "**Version** " + chosen in card(at)
    assert warnings(at) == ([warning] if warning else [])


def test_requested_version_missing_falls_back_with_a_visible_warning(source, env):
    env.setenv("MODEL_VERSION", "2.5.0")
    at = start()
    assert at.sidebar.selectbox(key="version").value == "1.1.0"
    assert warnings(at) == ["version 2.5.0 was asked for (MODEL_VERSION) but does not exist; using the newest, 1.1.0"]


def test_single_prediction_form(source):
    at = start()
    for name, value in {"sepal_length": 5.0, "sepal_width": 3.4, "petal_length": 1.5, "petal_width": 0.2}.items():
        at.number_input(key=f"single-{name}").set_value(value)
    at.button(key="single-submit").click().run()
    assert not at.exception
    assert at.metric[0].value == "setosa"
    assert "probability · version 1.1.0" in at.caption[0].value
    # the class-probability bar chart, then "Why this prediction" and "What if" (issue 16)
    assert len(at.get("vega_lite_chart")) == 3


def test_out_of_range_form_value_warns_but_predicts(env):
    at = start()
    at.number_input(key="single-petal_length").set_value(42.0)
    at.button(key="single-submit").click().run()
    assert warnings(at) == [
        "petal_length 42 is above the usual maximum 7 — the prediction may be unreliable.",
        "petal_length 42 is outside the training range 1 – 6.9: the model never saw such a value.",
    ]
    assert at.metric[0].value in ("setosa", "versicolor", "virginica")


def test_batch_upload_report_results_and_safe_download(source, downloads):
    at = start()
    bad = SAMPLE + b'abc,3,1,1,=HYPERLINK("http://evil")\n5.0,3.0,1.0,,setosa\n'
    at.file_uploader(key="batch-upload").upload("flowers.csv", bad, "text/csv").run()
    assert not at.exception
    assert [m.value for m in at.metric] == ["30", "2"]
    report = warnings(at)[0]
    assert report == (
        "2 rows could not be predicted; their reason is in the error column. First ones:\n"
        "- row 31 (line 32): sepal_length: 'abc' is not a number\n- row 32 (line 33): petal_width: missing value"
    )
    table = at.main.dataframe[0].value
    assert len(table) == 32 and list(table.columns)[-2:] == ["model_version", "error"]
    downloaded = downloads(at.get("download_button")[1])
    result = pd.read_csv(io.BytesIO(downloaded), keep_default_na=False)
    assert len(result) == 32
    assert result["species"].iloc[30] == '\'=HYPERLINK("http://evil")'
    assert (result["prediction"][:30] == result["species"][:30]).mean() >= 0.9
    template = downloads(at.get("download_button")[0]).decode()
    assert template.splitlines()[0] == "sepal_length,sepal_width,petal_length,petal_width"


def test_a_bad_upload_is_explained_and_the_app_keeps_serving(env):
    at = start()
    at.file_uploader(key="batch-upload").upload("bad.csv", b"petal_length\n1.0\n", "text/csv").run()
    assert not at.exception
    assert errors(at) == [
        "bad.csv: columns 'sepal_length', 'sepal_width', 'petal_width' are missing; expected "
        "columns: sepal_length, sepal_width, petal_length, petal_width; download the template "
        "from the Batch tab"
    ]
    at.file_uploader(key="batch-upload").upload("x.csv", b"\x00\x01binary", "text/csv").run()
    assert errors(at)[0].startswith("x.csv: the file is not a text CSV (it looks binary)")
    at.button(key="single-submit").click().run()
    assert at.metric[0].value in ("setosa", "versicolor", "virginica")


def test_compare_versions_on_the_uploaded_file(source):
    at = start()
    at.file_uploader(key="batch-upload").upload("flowers.csv", SAMPLE, "text/csv").run()
    at.selectbox(key="compare-version").select("1.0.0")
    at.button(key="compare-run").click().run()
    assert not at.exception
    agreement = [m for m in at.metric if m.label == "Agreement"][0].value
    assert agreement.endswith("%") and 80.0 <= float(agreement[:-1]) <= 100.0
    rows = at.main.dataframe[-1].value
    assert {"prediction_1.1.0", "prediction_1.0.0", "probability_change"} <= set(rows.columns)


def serve_store(store, models, broken_digest: bool = True) -> str:
    url = demo_store(store)
    manifest = json.loads((DEMO / "manifest.json").read_text())
    store.put_file("models/broken.keras", models["folder"] / "classifier.keras")
    manifest["versions"].insert(0, {"version": "2.0.0", "url": "broken.keras", "sha256": "0" * 64})
    store.put("models/manifest.json", json.dumps(manifest).encode())
    return url


def test_http_store_a_broken_version_keeps_the_previous_one_serving(store, env, models):
    env.setenv("MODEL_MANIFEST_URL", serve_store(store, models) + "?sig=SECRETSIG")
    env.setenv("MODEL_VERSION", "1.1.0")
    at = start()
    assert at.sidebar.selectbox(key="version").options[0] == "2.0.0"
    assert "**Version** 1.1.0" in card(at)
    assert "sig=" not in at.sidebar.caption[0].value and "/models/manifest.json" in at.sidebar.caption[0].value
    at.sidebar.selectbox(key="version").select("2.0.0").run()
    assert not at.exception
    message = shown(at.sidebar.error[0].value)
    assert message.startswith(f"Version 2.0.0 could not be loaded: sha256 of {store.url('models/broken.keras')} is ")
    assert message.endswith("Still serving version 1.1.0.")
    assert "**Version** 1.1.0" in card(at)
    at.button(key="single-submit").click().run()
    assert at.metric[0].value in ("setosa", "versicolor", "virginica")
    assert "SECRETSIG" not in "\n".join(errors(at) + warnings(at) + [card(at)])


def test_refresh_shows_a_newly_published_version(store, env, models):
    url = demo_store(store)
    env.setenv("MODEL_MANIFEST_URL", url)
    at = start()
    assert at.sidebar.selectbox(key="version").options[0] == "1.1.0  (default)"
    manifest = json.loads((DEMO / "manifest.json").read_text())
    data = (DEMO / "iris-1.0.0.keras").read_bytes()
    store.put("models/iris-1.2.0.keras", data)
    manifest["versions"].insert(
        0,
        {
            "version": "1.2.0",
            "url": "iris-1.2.0.keras",
            "sha256": sha256(data),
            "schema": manifest["versions"][0]["schema"],
        },
    )
    store.put("models/manifest.json", json.dumps(manifest).encode())
    at.run()
    assert at.sidebar.selectbox(key="version").options[0] == "1.1.0  (default)"  # cached until refresh/timer
    at.sidebar.button(key="refresh").click().run()
    assert at.sidebar.selectbox(key="version").options[0] == "1.2.0  (default)"
    assert not at.exception


def test_unreachable_store_is_explained_without_a_traceback(env):
    env.setenv("MODEL_MANIFEST_URL", "http://127.0.0.1:9/manifest.json?X-Amz-Signature=abc")
    env.setenv("MODEL_RETRIES", "0")
    at = start()
    assert not at.exception
    assert errors(at) == [
        "No model versions could be read: http://127.0.0.1:9/manifest.json is unreachable "
        "(connection refused); check the URL and that the server is up"
    ]


def test_the_page_reads_as_a_person_would_write_it(env, tmp_path):
    """Issue 15's polish: float32 ranges shown as typed, counts that agree with their nouns, a one-line intro."""
    import json as _json
    import shutil

    folder = tmp_path / "store"
    shutil.copytree(DEMO, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    manifest = _json.loads((folder / "manifest.json").read_text())
    for entry in manifest["versions"]:
        first = entry["schema"]["features"][0]
        first.update(min=float(np.float32(4.3)), max=float(np.float32(12.93)), default=float(np.float32(5.84)))
    (folder / "manifest.json").write_text(_json.dumps(manifest))
    env.setenv("MODEL_MANIFEST_URL", str(folder / "manifest.json"))
    at = start()
    field = at.number_input(key="single-sepal_length")
    assert field.value == 5.84 and field.proto.format == "%.2f" and "12.93" in field.help
    assert at.markdown[0].value.startswith(
        "**iris-classifier** predicts one of 3 classes (setosa, versicolor, "
        "virginica) from 4 inputs: fill in the form and press **Predict**"
    )
    data = b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n5.1,3.5,42,0.2\n"
    at.file_uploader(key="batch-upload").upload("two.csv", data, "text/csv").run()
    assert at.main.expander[0].label == "1 value is outside the usual range (predicted anyway)"
