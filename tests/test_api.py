"""The HTTP API on the dashboard's own port (issue 13), against the real server started as the Procfile starts it,
with a model store on a loopback HTTP server; requests through `requests`, never a mocked transport."""

from __future__ import annotations

import io
import json
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from dashboard import service
from tests.support import dashboard_server
from tests.support.helpers import DEMO, REPO, api_json, demo_store, settings_for
from tests.support.secretscan import SCANNED
from tests.support.testserver import start_store, stop_store

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
ROW_LIST = [6.7, 3.0, 5.2, 2.3]
LABELS = ["setosa", "versicolor", "virginica"]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """One server for the module: the demo store over HTTP, plus version 0.5.0 whose file answers after 5 s."""
    folder = tmp_path_factory.mktemp("api")
    store, _ = start_store()
    url = demo_store(store)
    manifest = json.loads((DEMO / "manifest.json").read_text())
    manifest["versions"].append({"version": "0.5.0", "url": "slow.keras", "notes": "answers slowly"})
    store.put("models/manifest.json", json.dumps(manifest).encode())
    store.put_file("models/slow.keras", DEMO / "iris-1.0.0.keras")
    store.fault("models/slow.keras", "hang")
    running = dashboard_server.start(
        folder, {"MODEL_MANIFEST_URL": url, "API_MAX_BYTES": "100000", "API_MAX_ROWS": "500"}
    )
    session = requests.Session()
    session.base = running.base
    yield session
    SCANNED.append(("API server log", running.stop()))
    stop_store(store)


def call(api, method: str, path: str, **kwargs) -> requests.Response:
    answer = api.request(method, api.base + path, timeout=60, **kwargs)
    SCANNED.append((f"API answer {method} {path}", answer.text))
    return answer


def loaded(api, version: str) -> None:
    """Ask for version until it is loaded (the API answers 503 Retry-After meanwhile)."""
    for _ in range(120):
        answer = call(api, "GET", f"/api/v1/models/{version}")
        if answer.status_code == 200 and (api_json(answer) or {}).get("version") == version:
            return
        time.sleep(0.5)
    raise AssertionError(f"version {version} never loaded")


def ready(api) -> None:
    for _ in range(120):
        answer = call(api, "GET", "/api/v1/ready")
        if answer.status_code == 200 and (api_json(answer) or {}).get("status") == "ready":
            return
        time.sleep(0.5)
    raise AssertionError("the default version never became ready")


@pytest.fixture(scope="module")
def expected():
    """What the core gives for ROW and ROW_LIST with the default version (the same code path, in this process)."""
    settings = settings_for_demo()
    served = service.load_version(settings, service.catalog(settings).default)
    frame = pd.DataFrame([ROW, dict(zip(ROW, ROW_LIST, strict=True))])
    table = service.predict_frame(served, frame).table
    return table


def settings_for_demo():
    return settings_for(Path(tempfile.mkdtemp()), MODEL_MANIFEST_URL=str(DEMO / "manifest.json"))


def is_json(answer: requests.Response) -> dict:
    assert answer.headers["content-type"].startswith("application/json"), answer.text[:200]
    return answer.json()


def test_health_ready_and_versions(api):
    assert is_json(call(api, "GET", "/api/v1/health")) == {"status": "ok"}
    ready(api)
    assert is_json(call(api, "GET", "/api/v1/ready")) == {"status": "ready", "version": "1.1.0"}
    body = is_json(call(api, "GET", "/api/v1/versions"))
    assert body["name"] == "iris-classifier" and body["default"] == "1.1.0"
    assert [v["version"] for v in body["versions"]] == ["1.1.0", "1.0.0", "0.5.0"]
    stable = next(v for v in body["versions"] if v["version"] == "1.0.0")
    assert stable["aliases"] == ["stable"] and stable["pinned"] and len(stable["sha256"]) == 64


def test_model_description_and_unknown_versions(api):
    ready(api)
    body = is_json(call(api, "GET", "/api/v1/models/1.1.0"))
    assert [f["name"] for f in body["features"]] == list(ROW)
    assert body["output"] == {"type": "classification", "labels": LABELS} and body["loaded"] is True
    missing = call(api, "GET", "/api/v1/models/9.9")
    assert missing.status_code == 404
    error = is_json(missing)["error"]
    assert error["code"] == "unknown_version" and "available: 1.1.0, 1.0.0, 0.5.0" in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"instances": [ROW, ROW_LIST]},
        {"inputs": {k: [ROW[k], ROW_LIST[i]] for i, k in enumerate(ROW)}},
        {"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values()), ROW_LIST]}},
        {"dataframe_records": [ROW, dict(zip(ROW, ROW_LIST, strict=True))]},
    ],
    ids=["instances", "inputs", "dataframe_split", "dataframe_records"],
)
def test_every_json_format_predicts_what_the_dashboard_predicts(api, expected, body):
    ready(api)
    answer = call(api, "POST", "/api/v1/predict", json=body)
    assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "1.1.0"
    data = is_json(answer)
    assert data["model_version"] == "1.1.0" and data["warnings"] == []
    for i, row in enumerate(data["predictions"]):
        assert row["prediction"] == expected["prediction"][i] and row["error"] is None
        got = [row["probabilities"][label] for label in LABELS]
        np.testing.assert_allclose(got, expected[[f"probability_{x}" for x in LABELS]].iloc[i], rtol=1e-5)


def test_bad_rows_never_fail_good_rows_and_warnings_are_data(api):
    loaded(api, "1.0.0")
    rows = [ROW, {**ROW, "sepal_width": "wide"}, {**ROW, "petal_length": 42}, {"sepal_length": 5}]
    data = is_json(call(api, "POST", "/api/v1/predict?version=stable", json={"instances": rows}))
    assert data["model_version"] == "1.0.0"
    assert [r["error"] for r in data["predictions"]] == [
        None,
        "sepal_width: 'wide' is not a number",
        None,
        "sepal_width: missing value; petal_length: missing value; petal_width: missing value",
    ]
    assert data["predictions"][0]["prediction"] == "setosa" and data["predictions"][1]["prediction"] is None
    assert data["warnings"] == [{"row": 2, "feature": "petal_length", "value": 42.0, "bound": "max", "limit": 7.0}]


def test_a_csv_body_gets_the_results_csv(api, tmp_path):
    ready(api)
    answer = call(
        api, "POST", "/api/v1/predict", data=(DEMO / "sample.csv").read_bytes(), headers={"Content-Type": "text/csv"}
    )
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    table = pd.read_csv(io.StringIO(answer.text), keep_default_na=False)
    assert len(table) == 30 and list(table.columns)[-2:] == ["model_version", "error"]
    assert (table["prediction"] == table["species"]).mean() >= 0.9


@pytest.mark.parametrize(
    "kwargs, status, code",
    [
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "bad_request"),
        ({"json": {"rows": []}}, 400, "bad_request"),
        ({"json": {"instances": [[1, 2]]}}, 400, "bad_request"),
        ({"json": {"instances": [ROW] * 501}}, 413, "too_many_rows"),
        ({"data": b"x" * 200_000, "headers": {"Content-Type": "application/json"}}, 413, "too_large"),
        ({"data": b"<xml/>", "headers": {"Content-Type": "application/xml"}}, 415, "unsupported_media_type"),
        ({"data": b"a,b\n1,2\n", "headers": {"Content-Type": "text/csv"}}, 422, "bad_input"),
    ],
    ids=["malformed", "no-rows-field", "wrong-width", "too-many-rows", "too-large", "xml", "csv-missing-columns"],
)
def test_errors_are_json_with_a_code_and_plain_words(api, kwargs, status, code):
    ready(api)
    answer = call(api, "POST", "/api/v1/predict", **kwargs)
    assert answer.status_code == status, answer.text
    error = is_json(answer)["error"]
    assert error["code"] == code and error["message"] and "Traceback" not in answer.text


def test_wrong_width_says_what_was_expected(api):
    ready(api)
    error = is_json(call(api, "POST", "/api/v1/predict", json={"instances": [[1, 2]]}))["error"]
    assert error["message"] == (
        '"instances"[0] has 2 values; expected 4, in this order: sepal_length, sepal_width, petal_length, petal_width'
    )


def test_an_explicit_version_that_is_loading_is_503_with_retry_after_never_a_substitute(api):
    ready(api)
    first = call(api, "POST", "/api/v1/predict?version=0.5.0", json={"instances": [ROW]})
    assert first.status_code == 503 and first.headers["Retry-After"] == "5"
    assert is_json(first)["error"]["code"] == "loading"
    for _ in range(60):
        later = call(api, "POST", "/api/v1/predict?version=0.5.0", json={"instances": [ROW]})
        if later.status_code == 200:
            break
        time.sleep(0.5)
    assert is_json(later)["model_version"] == "0.5.0"


def test_unknown_api_paths_are_json_not_the_page(api):
    answer = call(api, "GET", "/api/v1/nope")
    assert answer.status_code == 404 and is_json(answer)["error"]["code"] == "not_found"
    # an encoded newline in the path (found by schemathesis): the mount never matches it, the answer is still ours
    answer = call(api, "GET", "/api/v1/models/1.1.0%0A%22")
    assert answer.status_code == 404 and is_json(answer)["error"] == {
        "code": "not_found",
        "message": "no API route for a path with control characters; see /api/v1/docs",
    }


def test_tf_serving_clients_get_tf_serving_answers(api, expected):
    ready(api)
    loaded(api, "1.0.0")
    rows = call(api, "POST", "/v1/models/iris-classifier:predict", json={"instances": [list(ROW.values()), ROW_LIST]})
    got = np.array(is_json(rows)["predictions"])
    np.testing.assert_allclose(got, expected[[f"probability_{x}" for x in LABELS]].to_numpy(), rtol=1e-5)
    columns = {k: [ROW[k], ROW_LIST[i]] for i, k in enumerate(ROW)}
    outputs = is_json(call(api, "POST", "/v1/models/iris-classifier/labels/stable:predict", json={"inputs": columns}))
    assert np.array(outputs["outputs"]).shape == (2, 3)
    pinned = is_json(call(api, "POST", "/v1/models/iris-classifier/versions/1.1.0:predict", json={"instances": [ROW]}))
    np.testing.assert_allclose(pinned["predictions"][0], got[0], rtol=1e-6)
    status = is_json(call(api, "GET", "/v1/models/iris-classifier"))["model_version_status"]
    assert {"version": "1.1.0", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}} in status
    unknown = call(api, "POST", "/v1/models/other:predict", json={"instances": [ROW]})
    assert unknown.status_code == 404 and "Servable not found" in is_json(unknown)["error"]
    bad = call(api, "POST", "/v1/models/iris-classifier:predict", json={"instances": [{**ROW, "sepal_width": "x"}]})
    assert bad.status_code == 400 and is_json(bad)["error"].startswith("1 of 1 rows cannot be predicted; row 0:")


def test_mlflow_clients_get_mlflow_answers(api, expected):
    ready(api)
    ping = call(api, "GET", "/ping")
    assert ping.status_code == 200 and ping.headers["content-type"].startswith("text/plain") and ping.text == "\n"
    split = {"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values()), ROW_LIST]}}
    got = np.array(is_json(call(api, "POST", "/invocations", json=split))["predictions"])
    np.testing.assert_allclose(got, expected[[f"probability_{x}" for x in LABELS]].to_numpy(), rtol=1e-5)
    records = is_json(call(api, "POST", "/invocations", json={"dataframe_records": [ROW]}))
    np.testing.assert_allclose(records["predictions"][0], got[0], rtol=1e-6)
    csv = call(
        api,
        "POST",
        "/invocations",
        data=b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n",
        headers={"Content-Type": "text/csv"},
    )
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv") and "setosa" in csv.text
    bad = call(api, "POST", "/invocations", data=b"nope", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and is_json(bad)["error_code"] == "BAD_REQUEST"


def test_200_concurrent_mixed_requests_each_get_their_own_answer(api):
    ready(api)
    loaded(api, "1.0.0")
    cases = []
    for i in range(200):
        version = ["1.1.0", "1.0.0"][i % 2]
        rows = [ROW, dict(zip(ROW, ROW_LIST, strict=True))][: 1 + i % 2]
        if i % 5 == 0:
            rows = [*rows, {**ROW, "petal_width": f"bad{i}"}]
        cases.append((version, rows))

    def alone(case):
        version, rows = case
        with requests.Session() as session:
            answer = session.post(
                f"{api.base}/api/v1/predict?version={version}", json={"instances": rows}, timeout=60
            ).json()
        assert len(answer.pop("prediction_id")) == 32  # each request its own history id; the rest must match
        return answer

    serial = [alone(case) for case in cases[:10]]
    with ThreadPoolExecutor(32) as pool:
        together = list(pool.map(alone, cases))
    assert together[:10] == serial
    for i, ((version, rows), answer) in enumerate(zip(cases, together, strict=True)):
        assert answer["model_version"] == version and len(answer["predictions"]) == len(rows)
        bad = [r["error"] for r in answer["predictions"] if r["error"]]
        assert bad == ([f"petal_width: 'bad{i}' is not a number"] if i % 5 == 0 else [])
        assert all(r["prediction"] in LABELS for r in answer["predictions"] if not r["error"])


def test_the_openapi_document_and_docs_page(api):
    document = is_json(call(api, "GET", "/api/v1/openapi.json"))
    assert document["openapi"].startswith("3.")
    assert {"/health", "/ready", "/versions", "/models/{version}", "/predict"} <= set(document["paths"])
    docs = call(api, "GET", "/api/v1/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text and "/api/v1/openapi.json" in docs.text


# Property-based: every operation in the OpenAPI document, with generated parameters and bodies.
@pytest.fixture(scope="module")
def api_schema(api):
    import schemathesis

    ready(api)
    return schemathesis.openapi.from_url(api.base + "/api/v1/openapi.json")


def _property_tests():
    import schemathesis
    from hypothesis import HealthCheck, settings

    schema = schemathesis.pytest.from_fixture("api_schema")

    @schema.parametrize()
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    def test_no_5xx_but_503_and_every_answer_matches_its_documented_schema(case, api):
        from schemathesis.specs.openapi.checks import (
            content_type_conformance,
            response_schema_conformance,
            status_code_conformance,
        )

        response = case.call(base_url=api.base + "/api/v1")
        SCANNED.append((f"schemathesis {case.method} {case.formatted_path}", response.text))
        assert response.status_code < 500 or response.status_code == 503, response.text
        case.validate_response(
            response, checks=[status_code_conformance, content_type_conformance, response_schema_conformance]
        )

    return test_no_5xx_but_503_and_every_answer_matches_its_documented_schema


test_no_5xx_but_503_and_every_answer_matches_its_documented_schema = _property_tests()


def test_every_curl_example_in_the_api_docs_works_as_written(api):
    ready(api)
    loaded(api, "1.0.0")
    text = (REPO / "docs" / "api.md").read_text()
    block = text.split("<!-- api-examples -->", 1)[1].split("<!-- /api-examples -->", 1)[0]
    commands = [line for line in block.splitlines() if line.startswith("curl ")]
    assert len(commands) >= 9
    host = api.base.removeprefix("http://")
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command.replace("localhost:8501", host) + " -w '\\n%{http_code}'"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        output, status = done.stdout.rsplit("\n", 1)
        SCANNED.append((f"README example {command[:40]}", output))
        assert done.returncode == 0 and status == "200", (command, status, output[:300])
        if "text/csv" in command:
            assert output.splitlines()[0].endswith(
                "prediction,probability_setosa,probability_versicolor,probability_virginica,model_version,error"
            )
        else:
            assert "error" not in json.loads(output), output[:300]


def test_api_errors_word_the_api_not_the_page(api):
    """Issue 22: no "Batch tab" in an API message, and a missing version names the request's ?version=."""
    ready(api)
    answer = call(api, "POST", "/api/v1/predict", data=b"petal_length\n1\n", headers={"Content-Type": "text/csv"})
    message = api_json(answer)["error"]["message"]
    assert answer.status_code == 422 and "Batch tab" not in message and "expected columns" in message
    answer = call(api, "POST", "/api/v1/predict?version=3.0", json={"instances": [ROW_LIST]})
    assert answer.status_code == 404
    assert api_json(answer)["error"]["message"].startswith(
        "version 3.0 was asked for (?version= in the request) but does not exist; available: "
    )


def test_the_csv_answer_echoes_inputs_as_written(api):
    """Issue 22: the API's CSV answer keeps 007, 02134 and 5.10 as sent, in the request's own separator."""
    ready(api)
    sent = "id;sepal_length;sepal_width;petal_length;petal_width;zip\n007;5,10;3,5;1,4;0,2;02134\n"
    answer = call(api, "POST", "/api/v1/predict", data=sent.encode(), headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    header, row = answer.text.splitlines()[:2]
    assert header.startswith("id;sepal_length;sepal_width;petal_length;petal_width;zip;prediction")
    assert row.split(";")[:7] == ["007", "5,10", "3,5", "1,4", "0,2", "02134", "setosa"]


def test_the_docs_page_is_served_offline_by_the_dashboard(api):
    """Issue 22: Swagger UI's script and style come from the dashboard itself, not a CDN."""
    page = call(api, "GET", "/api/v1/docs")
    assert page.status_code == 200 and "/api/v1/static/swagger-ui-bundle.js" in page.text
    assert "cdn." not in page.text and "jsdelivr" not in page.text
    script = call(api, "GET", "/api/v1/static/swagger-ui-bundle.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert len(script.content) > 500_000


def test_the_fast_predict_route_answers_as_the_documented_fastapi_route(tmp_path):
    """Issue 25: POST /api/v1/predict is answered by a plain Starlette route placed before the FastAPI mount (which
    documents it); both give the same status, body and error shape for good and bad query parameters."""
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

    from dashboard import service
    from dashboard.api.predicting import fast_routes
    from dashboard.api.routes import create_api
    from dashboard.service.batching import MicroBatcher
    from dashboard.service.serving import Serving

    settings = service.settings({"MODEL_CACHE_DIR": str(tmp_path / "cache"), "HISTORY": "off"})
    serving = Serving(settings=settings, batcher=MicroBatcher())
    for version in serving.catalog().versions:  # loaded before: a version still loading would answer 503 first
        serving._load(version)
    fast = TestClient(Starlette(routes=fast_routes(serving)))
    documented = TestClient(Starlette(routes=[Mount("/api/v1", app=create_api(serving))]))
    row = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    queries = ["", "?explain=true", "?explain=True", "?explain=0", "?explain=maybe", "?explain=", "?version=1.0.0"]
    queries += ["?version=9.9", "?version=~=1.0&explain=yes", "?version="]
    for query in queries:
        for body in ({"instances": [row]}, {"instances": [{"sepal_length": "x"}]}, {"nothing": 1}):
            ours = fast.post("/api/v1/predict" + query, json=body)
            theirs = documented.post("/api/v1/predict" + query, json=body)
            assert (ours.status_code, ours.headers["content-type"]) == (
                theirs.status_code,
                theirs.headers["content-type"],
            )
            assert ours.json() == theirs.json(), (query, body)
    assert fast.post("/api/v1/predict?explain=maybe", json={"instances": [row]}).json() == {
        "error": {
            "code": "bad_request",
            "message": "query.explain: Input should be a valid boolean, unable to interpret input",
        }
    }


def test_a_small_batch_runs_on_the_loop_but_never_waits_there_for_a_busy_model(tmp_path):
    """Issue 25: a few rows are predicted on the event loop when the model is free (no thread hop); while another
    call holds the model (a page's large batch), the request waits in a thread and the loop keeps answering."""
    import asyncio
    import threading

    import numpy as np

    from dashboard import service
    from dashboard.loading.runtime import ModelBusy, not_waiting
    from dashboard.service.batching import MicroBatcher
    from dashboard.service.serving import Serving

    settings = service.settings({"MODEL_CACHE_DIR": str(tmp_path / "cache"), "HISTORY": "off"})
    serving = Serving(settings=settings, batcher=MicroBatcher())
    served = serving.pool.get(settings, serving.catalog().default)
    row = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    expected = service.predict_rows(served, [row]).values  # the model called from a worker-style caller

    async def scenario() -> tuple[list[str], np.ndarray, np.ndarray]:
        loop_thread = threading.get_ident()
        callers: list[int] = []
        original = served.model.call

        def spy(inputs):
            callers.append(threading.get_ident())
            return original(inputs)

        served.model.call = spy
        try:
            free = await serving.batcher.predict(served, [row])
            assert callers == [loop_thread]  # ran on the loop: the model was free
            callers.clear()
            served.model._lock.acquire()  # a page's batch holds the model
            request = asyncio.ensure_future(serving.batcher.predict(served, [row]))
            ticks = 0
            for _ in range(20):  # the loop keeps running while the request waits for the model
                await asyncio.sleep(0.005)
                ticks += 1
            assert not request.done()
            served.model._lock.release()
            busy = await asyncio.wait_for(request, 30)
            assert callers[0] == loop_thread  # tried on the loop first, found the model busy,
            assert callers[-1] != loop_thread  # and the call that answered ran in a worker thread
            return [str(ticks)], free.values, busy.values
        finally:
            served.model.call = original

    ticks, free, busy = asyncio.run(scenario())
    assert ticks == ["20"]
    np.testing.assert_allclose(free, expected)
    np.testing.assert_allclose(busy, expected)
    served.model._lock.acquire()
    try:
        with not_waiting(), pytest.raises(ModelBusy):
            served.model.call(np.zeros((1, 4), dtype=np.float32))
    finally:
        served.model._lock.release()


def test_tritonclient_on_an_open_dashboard_answers_as_the_native_route(api):
    """The Open Inference Protocol without tokens (the demo's single model, by its manifest's name)."""
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    ready(api)
    client = httpclient.InferenceServerClient(url=api.base.removeprefix("http://"), network_timeout=60)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("iris-classifier")
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    rows = np.array([list(ROW.values()), ROW_LIST], dtype=np.float32)
    found = httpclient.InferInput("input", list(rows.shape), "FP32")
    found.set_data_from_numpy(rows)
    answer = client.infer("iris-classifier", [found])
    native = is_json(call(api, "POST", "/api/v1/predict", json={"instances": [ROW, ROW_LIST]}))
    assert [label.decode() for label in answer.as_numpy("label")[:, 0]] == [
        p["prediction"] for p in native["predictions"]
    ]
    assert answer.as_numpy("probabilities").tolist() == [
        list(p["probabilities"].values()) for p in native["predictions"]
    ]
    with pytest.raises(InferenceServerException) as unknown:
        client.get_model_metadata("iris")
    assert unknown.value.status() == "404"
    assert unknown.value.message() == "model iris is not served here; models: iris-classifier"


def test_an_assistant_predicts_over_mcp_on_an_open_dashboard(api):
    """MCP without tokens (an open dashboard answers local hosts only: DNS rebinding protection)."""
    import asyncio

    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def run():
        async with (
            httpx2.AsyncClient(timeout=60) as http,
            streamable_http_client(api.base + "/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            models = (await session.call_tool("list_models", {})).structured_content
            answer = await session.call_tool("predict", {"rows": [ROW, dict(zip(ROW, ROW_LIST, strict=True))]})
            return models, answer.structured_content

    models, answer = asyncio.run(run())
    assert [m["name"] for m in models["models"]] == ["iris-classifier"]
    native = is_json(call(api, "POST", "/api/v1/predict", json={"instances": [ROW, ROW_LIST]}))
    assert [p["probabilities"] for p in answer["predictions"]] == [p["probabilities"] for p in native["predictions"]]
    foreign = requests.post(
        api.base + "/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={"Host": "attacker.example", "Accept": "application/json, text/event-stream"},
        timeout=30,
    )
    assert foreign.status_code == 421  # a page on another site reaching a local dashboard: refused (misdirected)
