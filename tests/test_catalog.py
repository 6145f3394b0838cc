"""Many models in one dashboard (issue 27): a catalog of three real models — the iris classifier, a house-price
regression and the digits CNN — published with `publish --model NAME`, served by name through the CLI, the
page (AppTest), the HTTP API's three doors and the history; the catalog written atomically by concurrent
publishers; per-model access; the pool's memory bound."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import requests

from dashboard import service
from dashboard.errors import ModelMemoryError, UnknownModelError
from dashboard.service.publish import add_to_catalog
from tests.support import dashboard_server
from tests.support.catalog import ADMIN, ANALYST, DIGITS, HOUSES, IRIS_ROW, catalog_env, expected_prices
from tests.support.helpers import DEMO, REPO, api_json, at_once, settings_for
from tests.support.secretscan import SCANNED


def test_publish_model_writes_its_own_manifest_and_lists_it_in_the_catalog(catalog_store):
    catalog = json.loads(catalog_store["catalog"].read_text())
    assert catalog == {
        "models": [
            {
                "name": "iris",
                "manifest_url": "iris/manifest.json",
                "description": "Iris species from flower measurements",
            },
            {"name": "house", "manifest_url": "house/manifest.json", "description": "House price from rooms and area"},
            {
                "name": "digits",
                "manifest_url": "digits/manifest.json",
                "description": "Handwritten digit from a 32×32 image",
            },
        ],
        "default": "iris",
    }
    house = json.loads((catalog_store["store"] / "house" / "manifest.json").read_text())
    assert house["name"] == "house" and [v["version"] for v in house["versions"]] == ["2.0.0", "1.0.0"]
    assert all((catalog_store["store"] / "house" / v["url"]).is_file() for v in house["versions"])


def test_concurrent_publishers_never_lose_an_entry_in_a_folder(tmp_path):
    """Twelve publishers adding a model each at the same moment (threads: the file lock is per open file)."""
    store = tmp_path / "store"
    names = [f"model-{i}" for i in range(12)]
    at_once(len(names), lambda i: add_to_catalog(str(store), names[i], f"number {i}"))
    catalog = json.loads((store / "catalog.json").read_text())
    assert sorted(m["name"] for m in catalog["models"]) == sorted(names)
    assert catalog["default"] in names
    assert not [p.name for p in store.iterdir() if p.name.startswith(".") and p.name != ".catalog.lock"]


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "HISTORY", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "-m", "dashboard", *args],
        cwd=REPO,
        env={**environ, "HISTORY": "off", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_lists_models_and_predicts_each_by_name(catalog_store, tmp_path):
    env = catalog_env(catalog_store, tmp_path)
    listed = run_cli("models", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "iris                     Iris species from flower measurements (default)",
        "house                    House price from rooms and area",
        "digits                   Handwritten digit from a 32×32 image",
    ]
    versions = run_cli("versions", "--model", "house", env=env)
    assert versions.returncode == 0, versions.stderr
    assert [line.split()[0] for line in versions.stdout.splitlines()] == ["2.0.0", "1.0.0"]
    assert versions.stdout.splitlines()[0].endswith("(default)")

    houses = tmp_path / "houses.csv"
    pd.DataFrame(HOUSES).to_csv(houses, index=False)
    out = tmp_path / "prices.csv"
    done = run_cli(
        "predict", "--model", "house", "--version", "1.0.0", "--input", str(houses), "--output", str(out), env=env
    )
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out)
    np.testing.assert_allclose(table["prediction"], expected_prices(catalog_store, "1.0.0"), rtol=1e-5)
    assert list(table["model_version"]) == ["1.0.0"] * 3

    digits = tmp_path / "digits.csv"
    done = run_cli("predict", "--model", "digits", "--input", str(DIGITS / "samples"), "--output", str(digits), env=env)
    assert done.returncode == 0, done.stderr
    answers = pd.read_csv(digits)
    right = [int(f.split("-")[1].split(".")[0]) == p for f, p in zip(answers["file"], answers["prediction"])]
    assert len(answers) == 10 and sum(right) >= 9  # the demo CNN reads its own samples

    default = run_cli("predict", "--input", str(houses), "--output", str(tmp_path / "x.csv"), env=env)
    assert default.returncode == 1 and "sepal_length" in default.stderr  # no --model: the default model, iris
    unknown = run_cli("versions", "--model", "housing", env=env)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "error: there is no model housing; models: iris, house, digits"


def test_an_unreadable_entry_is_that_models_problem_only(catalog_store, tmp_path):
    broken = json.loads(catalog_store["catalog"].read_text())
    broken["models"] += [
        {"name": "gone", "manifest_url": "gone/manifest.json"},  # its manifest was never published
        {"manifest_url": "nameless/manifest.json"},  # no name: refused, the rest kept
    ]
    path = catalog_store["store"] / "broken-catalog.json"
    path.write_text(json.dumps(broken))
    settings = settings_for(tmp_path, MODEL_CATALOG_URL=str(path))
    catalog = service.models(settings)
    assert catalog.names == ["iris", "house", "digits", "gone"]
    assert catalog.problems == (
        f'catalog {path}, models[4]: "name" must be 1 to 64 letters, digits or . _ - (starting with a letter or digit)',
    )
    with pytest.raises(Exception, match="gone/manifest.json"):
        service.catalog(service.for_model(settings, catalog, "gone"))
    house = service.for_model(settings, catalog, "house")
    served = service.load_version(settings, service.catalog(house).default)
    assert served.version.model_name == "house" and served.schema.output.type == "regression"
    with pytest.raises(UnknownModelError, match="there is no model nope; models: iris, house, digits, gone"):
        service.for_model(settings, catalog, "nope")


def test_single_model_settings_are_a_catalog_of_one(tmp_path):
    settings = settings_for(tmp_path, MODEL_MANIFEST_URL=str(DEMO / "manifest.json"))
    catalog = service.models(settings)
    assert catalog.single and catalog.names == ["iris-classifier"] and catalog.default == "iris-classifier"
    assert service.for_model(settings, catalog, None) is settings
    assert service.catalog(settings).default.model_name == "iris-classifier"


def test_the_pool_keeps_models_within_the_memory_budget_and_refuses_what_cannot_fit(catalog_store, tmp_path):
    settings = settings_for(tmp_path, MODEL_CATALOG_URL=str(catalog_store["catalog"]))
    catalog = service.models(settings)
    versions = {name: service.catalog(service.for_model(settings, catalog, name)) for name in catalog.names}
    iris = versions["iris"].default
    digits_size = (catalog_store["store"] / "digits").glob("digits-1.0.0-*.keras")
    digits_bytes = next(digits_size).stat().st_size
    pool = service.ModelPool(size=2, memory_bytes=digits_bytes + (4 << 20))
    pool.pin(settings, iris)
    pool.get(settings, iris)
    for version in versions["house"].versions:
        pool.get(settings, version)
    assert [(m.model, m.version) for m in pool.in_memory()] == [
        ("iris", "1.1.0"),
        ("house", "2.0.0"),
        ("house", "1.0.0"),
    ]
    pool.get(settings, versions["digits"].default)  # the least recently used go first; the pinned default stays
    loaded = [(m.model, m.version) for m in pool.in_memory()]
    assert loaded[0] == ("iris", "1.1.0") and loaded[-1] == ("digits", "1.0.0") and len(loaded) < 4
    assert sum(m.bytes for m in pool.in_memory()) <= pool.memory_bytes

    tight = service.ModelPool(size=2, memory_bytes=digits_bytes // 2)
    with pytest.raises(ModelMemoryError) as refused:
        tight.get(settings, versions["digits"].default)
    message = refused.value.message
    assert message.startswith("version 1.0.0 of digits needs about ") and "MODEL_MEMORY_MB" in message
    assert tight.in_memory() == []


@pytest.fixture(scope="module")
def catalog_server(catalog_store, tmp_path_factory):
    """The dashboard on the catalog, as the Procfile starts it, with two API tokens; digits is open to admin only."""
    import hashlib

    folder = tmp_path_factory.mktemp("catalog-server")
    catalog = json.loads(catalog_store["catalog"].read_text())
    catalog["models"][2]["tokens"] = ["admin"]
    path = catalog_store["store"] / "catalog-with-access.json"
    path.write_text(json.dumps(catalog))
    tokens = ",".join(
        f"{n}:{hashlib.sha256(t.encode()).hexdigest()}" for n, t in (("admin", ADMIN), ("analyst", ANALYST))
    )
    running = dashboard_server.start(
        folder,
        {"MODEL_CATALOG_URL": str(path), "API_TOKENS": tokens, "DATABASE_URL": f"sqlite:///{folder / 'h.db'}"},
    )
    running.wait_ready({"Authorization": f"Bearer {ADMIN}"})
    yield running
    SCANNED.append(("catalog server log", running.stop()))


def call(server, method: str, path: str, token: str = ADMIN, **kwargs) -> requests.Response:
    """One request; while the version asked for is loading (503 with Retry-After), asked again."""
    for _ in range(240):
        answer = requests.request(
            method, server.base + path, headers={"Authorization": f"Bearer {token}"}, timeout=120, **kwargs
        )
        SCANNED.append((f"catalog API {method} {path}", answer.text))
        if answer.status_code != 503:
            return answer
        time.sleep(0.5)
    raise AssertionError(f"{method} {path} answered 503 for two minutes")


def test_api_lists_the_models_each_caller_may_use(catalog_server):
    everything = api_json(call(catalog_server, "GET", "/api/v1/models"))
    assert everything["default"] == "iris" and everything["problems"] == []
    assert [(m["name"], m["default_version"], m["versions"]) for m in everything["models"]] == [
        ("iris", "1.1.0", 2),
        ("house", "2.0.0", 2),
        ("digits", "1.0.0", 1),
    ]
    assert everything["models"][1]["description"] == "House price from rooms and area"
    analyst = api_json(call(catalog_server, "GET", "/api/v1/models", ANALYST))
    assert [m["name"] for m in analyst["models"]] == ["iris", "house"]
    closed = call(catalog_server, "GET", "/api/v1/versions?model=digits", ANALYST)
    assert closed.status_code == 404
    assert api_json(closed)["error"] == {
        "code": "unknown_model",
        "message": "there is no model digits; models: iris, house",
    }
    versions = api_json(call(catalog_server, "GET", "/api/v1/versions?model=house"))
    assert versions["model"] == "house" and [v["version"] for v in versions["versions"]] == ["2.0.0", "1.0.0"]
    card = api_json(call(catalog_server, "GET", "/api/v1/models/1.0.0?model=house"))
    assert card["model"] == "house" and card["output"]["type"] == "regression"


def test_every_door_predicts_the_model_it_names(catalog_store, catalog_server):
    expected = expected_prices(catalog_store, "2.0.0")
    native = call(catalog_server, "POST", "/api/v1/predict?model=house&version=2.0.0", json={"instances": HOUSES})
    body = api_json(native)
    assert native.status_code == 200 and native.headers["X-Model-Name"] == "house" and body["model"] == "house"
    np.testing.assert_allclose([p["prediction"] for p in body["predictions"]], expected, rtol=1e-5)

    tf = call(catalog_server, "POST", "/v1/models/house/versions/1.0.0:predict", json={"instances": HOUSES})
    np.testing.assert_allclose(
        np.array(api_json(tf)["predictions"])[:, 0], expected_prices(catalog_store, "1.0.0"), rtol=1e-5
    )
    mlflow = call(catalog_server, "POST", "/invocations?model=house&version=2.0.0", json={"dataframe_records": HOUSES})
    np.testing.assert_allclose(np.array(api_json(mlflow)["predictions"])[:, 0], expected, rtol=1e-5)

    default = api_json(call(catalog_server, "POST", "/api/v1/predict", json={"instances": [IRIS_ROW]}))
    assert default["model"] == "iris" and default["predictions"][0]["prediction"] == "virginica"
    seven = base64.b64encode((DIGITS / "samples" / "digit-7.png").read_bytes()).decode()
    digit = api_json(call(catalog_server, "POST", "/v1/models/digits:predict", json={"instances": [{"b64": seven}]}))
    assert int(np.argmax(digit["predictions"][0])) == 7

    unknown = call(catalog_server, "POST", "/v1/models/housing:predict", json={"instances": HOUSES})
    assert unknown.status_code == 404
    assert api_json(unknown) == {
        "error": "Servable not found for request: Latest(housing); models here: iris, house, digits"
    }
    closed = call(catalog_server, "POST", "/v1/models/digits:predict", ANALYST, json={"instances": [{"b64": seven}]})
    assert closed.status_code == 404 and "models here: iris, house" in api_json(closed)["error"]
    wrong = call(catalog_server, "POST", "/invocations?model=nope", json={"dataframe_records": HOUSES})
    assert (
        wrong.status_code == 404 and api_json(wrong)["message"] == "there is no model nope; models: iris, house, digits"
    )


def test_history_carries_the_model_and_filters_by_it(catalog_server):
    made = api_json(
        call(catalog_server, "POST", "/api/v1/predict?model=house&version=1.0.0", json={"instances": HOUSES[:1]})
    )
    for _ in range(50):
        listed = api_json(call(catalog_server, "GET", "/api/v1/history?model=house&limit=500"))
        if made["prediction_id"] in [item["id"] for item in listed["items"]]:
            break
    assert {item["model"] for item in listed["items"]} == {"house"}
    iris = api_json(call(catalog_server, "GET", "/api/v1/history?limit=500"))  # no model: the default one
    assert iris["items"] and {item["model"] for item in iris["items"]} == {"iris"}
    closed = call(catalog_server, "GET", "/api/v1/history?model=digits", ANALYST)
    assert closed.status_code == 404 and api_json(closed)["error"]["code"] == "unknown_model"
    reported = call(
        catalog_server, "POST", "/api/v1/feedback", json={"prediction_id": made["prediction_id"], "value": 310.0}
    )
    assert reported.status_code == 201
    feedback = api_json(call(catalog_server, "GET", "/api/v1/feedback?model=house"))
    assert [(f["model"], f["value"]) for f in feedback["items"]] == [("house", 310.0)]
    assert api_json(call(catalog_server, "GET", "/api/v1/feedback"))["items"] == []  # iris has no report


def test_page_picks_a_model_then_its_version_and_predicts(catalog_store, env):
    from tests.support.apptest import start

    env.setenv("MODEL_CATALOG_URL", str(catalog_store["catalog"]))
    env.setenv("HISTORY", "off")
    at = start()
    assert not at.exception
    picker = at.sidebar.selectbox(key="model")
    assert picker.value == "iris" and picker.options == [
        "iris — Iris species from flower measurements",
        "house — House price from rooms and area",
        "digits — Handwritten digit from a 32×32 image",
    ]
    assert at.sidebar.selectbox(key="version").value == "1.1.0"
    at.sidebar.selectbox(key="version").set_value("1.0.0").run()
    picker = at.sidebar.selectbox(key="model").set_value("house").run()
    assert not at.exception
    assert at.sidebar.selectbox(key="version").value == "2.0.0"  # the new model's default, not iris's pick
    assert at.query_params["model"] == "house" and at.query_params["version"] == "2.0.0"
    assert any("regression: price" in m.value for m in at.sidebar.markdown)
    at.number_input(key="single-rooms").set_value(5)
    at.number_input(key="single-area").set_value(140.0)
    at.button(key="single-submit").click().run()
    assert not at.exception
    assert at.metric[0].label == "price"
    assert at.metric[0].value == f"{expected_prices(catalog_store, '2.0.0')[1]:.4g} k€"

    linked = start({"model": "digits"})
    assert not linked.exception and linked.sidebar.selectbox(key="model").value == "digits"
    unknown = start({"model": "housing"})
    assert unknown.sidebar.selectbox(key="model").value == "iris"
    assert any("There is no model housing here" in w.value for w in unknown.sidebar.warning)


def test_page_shows_only_the_models_open_to_the_visitor(catalog_store, env, tmp_path):
    from tests.support.apptest import start

    catalog = json.loads(catalog_store["catalog"].read_text())
    catalog["models"][0]["allowed_domains"] = ["example.com"]  # iris, the default: for signed-in colleagues only
    path = catalog_store["store"] / "catalog-private-iris.json"
    path.write_text(json.dumps(catalog))
    env.setenv("MODEL_CATALOG_URL", str(path))
    env.setenv("HISTORY", "off")
    at = start()  # no sign-in: a stranger
    assert not at.exception
    assert at.sidebar.selectbox(key="model").options == [
        "house — House price from rooms and area",
        "digits — Handwritten digit from a 32×32 image",
    ]
    assert at.sidebar.selectbox(key="model").value == "house"


def test_catalog_json_schema_accepts_what_publish_writes_and_rejects_a_bad_name(catalog_store):
    import jsonschema

    schema = json.loads((REPO / "dashboard" / "schemas" / "catalog.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(json.loads(catalog_store["catalog"].read_text()))
    bad = {"models": [{"name": "../etc", "manifest_url": "x/manifest.json"}, {"name": "ok"}]}
    messages = sorted(e.message for e in validator.iter_errors(bad))
    assert len(messages) == 2 and "'manifest_url' is a required property" in messages


def triton(server):
    import tritonclient.http as httpclient

    return httpclient.InferenceServerClient(url=server.base.removeprefix("http://"), network_timeout=120)


def infer(client, model: str, inputs, token: str = ADMIN, binary: bool = True, **kwargs):
    """tritonclient's infer, asked again while the version loads (the protocol answers 503 meanwhile)."""
    from tritonclient.utils import InferenceServerException

    for _ in range(240):
        try:
            return client.infer(model, inputs, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        except InferenceServerException as exc:
            if exc.status() != "503":
                raise
            time.sleep(0.5)
    raise AssertionError(f"{model} never loaded")


def tensor(name: str, values: np.ndarray, datatype: str, binary: bool = True):
    import tritonclient.http as httpclient

    found = httpclient.InferInput(name, list(values.shape), datatype)
    found.set_data_from_numpy(values, binary_data=binary)
    return found


def test_tritonclient_reads_metadata_and_infers_as_the_native_route_answers(catalog_server):
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    client, auth = triton(catalog_server), {"Authorization": f"Bearer {ADMIN}"}
    assert client.is_server_live() and client.is_server_ready(headers=auth)  # liveness needs no token
    assert not client.is_server_ready()  # readiness does, as /api/v1/ready
    rows = np.array([[h["rooms"], h["area"]] for h in HOUSES], dtype=np.float32)
    answer = infer(client, "house", [tensor("input", rows, "FP32")], model_version="1.0.0")
    native = api_json(
        call(catalog_server, "POST", "/api/v1/predict?model=house&version=1.0.0", json={"instances": HOUSES})
    )
    assert answer.as_numpy("prediction")[:, 0].tolist() == [p["prediction"] for p in native["predictions"]]
    assert answer.get_response()["model_version"] == "1.0.0"
    as_json = infer(
        client,
        "house",
        [tensor("input", rows, "FP32", binary=False)],
        model_version="1.0.0",
        outputs=[httpclient.InferRequestedOutput("prediction", binary_data=False)],
    )
    assert as_json.as_numpy("prediction").tolist() == answer.as_numpy("prediction").tolist()

    metadata = client.get_model_metadata("house", headers=auth)
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 2]}]
    assert metadata["outputs"] == [{"name": "prediction", "datatype": "FP64", "shape": [-1, 1]}]
    assert metadata["versions"] == ["2.0.0", "1.0.0"] and client.is_model_ready("house", "1.0.0", headers=auth)

    flowers = np.array([list(IRIS_ROW.values())], dtype=np.float64)
    iris = infer(client, "iris", [tensor("input", flowers, "FP64")])
    native = api_json(call(catalog_server, "POST", "/api/v1/predict?model=iris", json={"instances": [IRIS_ROW]}))
    assert iris.as_numpy("label")[0, 0].decode() == native["predictions"][0]["prediction"] == "virginica"
    assert iris.as_numpy("probabilities")[0].tolist() == list(native["predictions"][0]["probabilities"].values())

    seven = np.array([[(DIGITS / "samples" / "digit-7.png").read_bytes()]], dtype=np.object_)
    digit = infer(client, "digits", [tensor("digit", seven, "BYTES")])
    assert digit.as_numpy("label")[0, 0] == b"7"
    assert client.get_model_metadata("digits", headers=auth)["inputs"] == [
        {"name": "digit", "datatype": "BYTES", "shape": [-1, 1]}
    ]

    with pytest.raises(InferenceServerException) as wrong_shape:
        infer(client, "iris", [tensor("input", flowers[:, :3], "FP64")])
    assert wrong_shape.value.status() == "400"
    assert "has shape [1, 3]; this model takes [-1, 4] (rows of 4 features)" in wrong_shape.value.message()
    with pytest.raises(InferenceServerException) as unknown:
        infer(client, "housing", [tensor("input", rows, "FP32")])
    assert unknown.value.status() == "404"
    assert unknown.value.message() == "model housing is not served here; models: iris, house, digits"
    with pytest.raises(InferenceServerException) as closed:
        infer(client, "digits", [tensor("digit", seven, "BYTES")], token=ANALYST)
    assert closed.value.status() == "404" and closed.value.message().endswith("models: iris, house")
    with pytest.raises(InferenceServerException) as refused:
        client.infer("house", [tensor("input", rows, "FP32")])  # no token
    assert refused.value.status() == "401"
    bad_row = np.array([[2.0, float("nan")]], dtype=np.float32)
    with pytest.raises(InferenceServerException) as missing:
        infer(client, "house", [tensor("input", bad_row, "FP32")])
    assert missing.value.message() == "1 of 1 rows cannot be predicted; row 0: area: missing value"


def mcp_calls(server, token: str | None, work):
    """work(session) with the official MCP SDK's client over streamable HTTP, as an assistant connects."""
    import asyncio

    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def run():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=120) as http,
            streamable_http_client(server.base + "/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await work(session)

    return asyncio.run(run())


def test_an_assistant_lists_describes_predicts_and_explains_over_mcp(catalog_server):
    async def work(session):
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        models = (await session.call_tool("list_models", {})).structured_content
        house = (await session.call_tool("describe_model", {"model": "house", "version": "1.0.0"})).structured_content
        versions = (await session.call_tool("list_versions", {"model": "house"})).structured_content
        rows = [*HOUSES, {"rooms": 2, "area": "big"}]
        predicted = (
            await session.call_tool("predict", {"rows": rows, "model": "house", "version": "1.0.0"})
        ).structured_content
        iris = (await session.call_tool("predict", {"rows": [IRIS_ROW]})).structured_content
        why = (await session.call_tool("explain", {"rows": [IRIS_ROW], "model": "iris"})).structured_content
        unknown = await session.call_tool("predict", {"rows": HOUSES, "model": "housing"})
        return tools, models, house, versions, predicted, iris, why, unknown

    tools, models, house, versions, predicted, iris, why, unknown = mcp_calls(catalog_server, ADMIN, work)
    assert set(tools) == {"list_models", "list_versions", "describe_model", "predict", "explain"}
    rows_schema = tools["predict"].input_schema["properties"]["rows"]
    assert rows_schema["type"] == "array" and rows_schema["items"]["type"] == "object"
    assert [(m["name"], m["default"]) for m in models["models"]] == [
        ("iris", True),
        ("house", False),
        ("digits", False),
    ]
    assert [f["name"] for f in house["features"]] == ["rooms", "area"] and house["output"]["type"] == "regression"
    assert [v["version"] for v in versions["versions"]] == ["2.0.0", "1.0.0"]
    native = api_json(
        call(catalog_server, "POST", "/api/v1/predict?model=house&version=1.0.0", json={"instances": HOUSES})
    )
    assert [p["prediction"] for p in predicted["predictions"][:3]] == [p["prediction"] for p in native["predictions"]]
    assert predicted["predictions"][3] == {"prediction": None, "error": "area: 'big' is not a number"}
    assert iris["model"] == "iris" and iris["predictions"][0]["prediction"] == "virginica"
    assert set(why["predictions"][0]["attributions"]) == set(IRIS_ROW)
    assert unknown.is_error  # the SDK words a tool error "Error executing tool NAME: <our message>"
    assert (
        unknown.content[0].text
        == "Error executing tool predict: there is no model housing; models: iris, house, digits"
    )
    listed = api_json(call(catalog_server, "GET", "/api/v1/history?model=house&source=mcp&limit=500"))
    assert predicted["prediction_id"] in [item["id"] for item in listed["items"]]

    def closed(session):
        return session.call_tool("list_models", {})

    analyst = mcp_calls(catalog_server, ANALYST, closed).structured_content
    assert [m["name"] for m in analyst["models"]] == ["iris", "house"]
    stranger = requests.post(
        catalog_server.base + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, timeout=30
    )
    assert stranger.status_code == 401 and stranger.headers["WWW-Authenticate"].startswith("Bearer")
    assert api_json(stranger)["error"]["code"] == "missing_token"
