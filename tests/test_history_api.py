"""History through the HTTP API (issue 17): two real dashboard processes sharing one real PostgreSQL database, API
tokens naming who predicted, prediction ids in every answer, feedback, the lists and their filters."""

from __future__ import annotations

import time

import pytest
import requests

from dashboard.access import new_token
from tests.support import dashboard_server
from tests.support.helpers import DEMO, api_json
from tests.support.postgres import postgres_or_skip, start_postgres
from tests.support.secretscan import SCANNED, watch

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
WIDE = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}


class Client:
    def __init__(self, base: str, token: str) -> None:
        self.base, self.session = base, requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        answer = self.session.request(method, self.base + path, timeout=60, **kwargs)
        SCANNED.append((f"history API {method} {path}", answer.text + str(answer.headers)))
        return answer

    def ready(self) -> None:
        for _ in range(240):
            if (api_json(self.call("GET", "/api/v1/ready")) or {}).get("status") == "ready":
                return
            time.sleep(0.5)
        raise AssertionError("the default version did not load")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Two dashboard processes on one PostgreSQL database: A shows everyone's history, B (HISTORY_SCOPE=own) only
    each caller's own. Tokens: alice, bob."""
    postgres_or_skip()
    database = start_postgres()
    watch(database.password)
    alice, alice_line = new_token("alice")
    bob, bob_line = new_token("bob")
    common = {"DATABASE_URL": database.url, "API_TOKENS": f"{alice_line},{bob_line}"}
    a = dashboard_server.start(tmp_path_factory.mktemp("a"), common)
    b = dashboard_server.start(tmp_path_factory.mktemp("b"), {**common, "HISTORY_SCOPE": "own"})
    clients = {
        "alice@a": Client(a.base, alice),
        "bob@a": Client(a.base, bob),
        "alice@b": Client(b.base, alice),
        "bob@b": Client(b.base, bob),
    }
    clients["alice@a"].ready()
    clients["alice@b"].ready()
    yield clients
    for running in (a, b):
        log = running.stop()
        SCANNED.append(("history server log", log))
        assert database.password not in log
    SCANNED.append(("PostgreSQL log", (database.folder / "server.log").read_text(errors="replace")))
    database.remove()


def test_two_processes_share_the_history_and_feedback(servers):
    answer = servers["alice@a"].call("POST", "/api/v1/predict", json={"instances": [ROW, WIDE]})
    body = api_json(answer)
    assert answer.status_code == 200 and body["predictions"][0]["prediction"] == "setosa"
    prediction_id = body["prediction_id"]
    assert answer.headers["X-Prediction-Id"] == prediction_id and len(prediction_id) == 32

    # the other process reads it (its queue written within a moment), with the inputs and outputs
    for _ in range(50):
        listing = api_json(servers["alice@b"].call("GET", "/api/v1/history"))
        if prediction_id in {i["id"] for i in listing["items"]}:
            break
        time.sleep(0.1)
    found = [i for i in listing["items"] if i["id"] == prediction_id]
    assert found, listing
    item = found[0]
    assert item["user"] == "token alice" and item["source"] == "api" and item["version"] == body["model_version"]
    assert item["inputs"] == [ROW, WIDE] and item["outputs"][0]["prediction"] == "setosa"
    assert item["sha256"] == body["sha256"] and item["runtime"] == "keras"

    # bob reports row 1 as wrong through process A; the report is listed with agreement per version
    report = {"prediction_id": prediction_id, "row": 1, "label": "versicolor", "comment": "checked by hand"}
    answer = servers["bob@a"].call("POST", "/api/v1/feedback", json=report)
    stored = api_json(answer)
    assert answer.status_code == 201 and stored["user"] == "token bob" and stored["label"] == "versicolor"
    feedback = api_json(servers["alice@a"].call("GET", "/api/v1/feedback", params={"version": body["model_version"]}))
    mine = next(i for i in feedback["items"] if i["id"] == stored["id"])
    assert mine["inputs"] == WIDE and mine["comment"] == "checked by hand" and mine["version"] == body["model_version"]
    versions = {v["version"]: v for v in feedback["versions"]}
    assert versions[body["model_version"]]["flagged"] >= 1


def test_history_scope_own_shows_callers_only_their_own(servers):
    mine = api_json(servers["bob@b"].call("POST", "/api/v1/predict", json={"instances": [ROW]}))["prediction_id"]
    theirs = api_json(servers["alice@b"].call("POST", "/api/v1/predict", json={"instances": [ROW]}))["prediction_id"]
    listing = api_json(servers["bob@b"].call("GET", "/api/v1/history", params={"user": "token alice"}))  # user ignored
    ids = {i["id"] for i in listing["items"]}
    assert mine in ids and theirs not in ids and {i["user"] for i in listing["items"]} == {"token bob"}
    answer = servers["bob@b"].call("POST", "/api/v1/feedback", json={"prediction_id": theirs, "label": "virginica"})
    assert answer.status_code == 404 and api_json(answer)["error"]["code"] == "unknown_prediction"
    # on the server that shows everything, alice sees bob's
    assert mine in {i["id"] for i in api_json(servers["alice@a"].call("GET", "/api/v1/history"))["items"]}


def test_csv_and_compatible_answers_carry_their_prediction_id(servers):
    client = servers["alice@a"]
    data = (DEMO / "sample.csv").read_bytes()
    answer = client.call("POST", "/api/v1/predict", data=data, headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    csv_id = answer.headers["X-Prediction-Id"]
    answer = client.call("POST", "/v1/models/default:predict", json={"instances": [list(ROW.values())]})
    assert api_json(answer)["predictions"][0][0] > 0.5
    tf_id = answer.headers["X-Prediction-Id"]
    answer = client.call("POST", "/invocations", json={"dataframe_records": [ROW]})
    assert len(api_json(answer)["predictions"]) == 1
    mlflow_id = answer.headers["X-Prediction-Id"]
    listing = api_json(client.call("GET", "/api/v1/history", params={"source": "api", "limit": 500}))
    found = {i["id"]: i for i in listing["items"]}
    assert {csv_id, tf_id, mlflow_id} <= set(found)
    import hashlib

    assert found[csv_id]["file_sha256"] == hashlib.sha256(data).hexdigest() and found[csv_id]["rows"] == 30
    assert found[csv_id]["inputs"] is not None and len(found[csv_id]["inputs"]) == 30  # 30 <= HISTORY_ROWS


@pytest.mark.parametrize(
    "method, path, kwargs, status, code, message",
    [
        (
            "POST",
            "/api/v1/feedback",
            {"json": {"prediction_id": "0" * 32, "label": "setosa"}},
            404,
            "unknown_prediction",
            f"no prediction '{'0' * 32}' in the history; use the prediction_id of a prediction answer",
        ),
        (
            "POST",
            "/api/v1/feedback",
            {"json": {"label": "setosa"}},
            400,
            "bad_request",
            "body.prediction_id: Field required",
        ),
        (
            "GET",
            "/api/v1/history",
            {"params": {"since": "yesterday"}},
            400,
            "bad_request",
            "since='yesterday' is not a date; use ISO 8601 such as 2026-11-30 or 2026-11-30T08:00:00Z",
        ),
        (
            "GET",
            "/api/v1/history",
            {"params": {"source": "fax"}},
            400,
            "bad_request",
            "source='fax' is not one of form, batch, api, cli, mcp",
        ),
        ("GET", "/api/v1/feedback", {"params": {"limit": 0}}, 400, "bad_request", "limit=0 must be between 1 and 500"),
        (
            "GET",
            "/api/v1/history",
            {"params": {"offset": 10**20}},
            400,
            "bad_request",
            f"offset={10**20} must be between 0 and 1,000,000,000",
        ),
        (
            "GET",
            "/api/v1/history",
            {"params": {"user": "a\x00b"}},
            400,
            "bad_request",
            "a filter value holds characters the database cannot compare; remove them",
        ),
        (
            "POST",
            "/api/v1/feedback",
            {"json": {"prediction_id": "\x00", "label": "setosa", "comment": "\x00"}},
            404,
            "unknown_prediction",
            "no prediction '\\x00' in the history; use the prediction_id of a prediction answer",
        ),
    ],
)
def test_history_errors_are_worded(servers, method, path, kwargs, status, code, message):
    answer = servers["alice@a"].call(method, path, **kwargs)
    assert answer.status_code == status
    assert api_json(answer) == {"error": {"code": code, "message": message}}


def test_feedback_with_a_label_the_version_does_not_have(servers):
    client = servers["alice@a"]
    prediction_id = api_json(client.call("POST", "/api/v1/predict", json={"instances": [ROW]}))["prediction_id"]
    answer = client.call("POST", "/api/v1/feedback", json={"prediction_id": prediction_id, "label": "rose"})
    assert answer.status_code == 422
    assert api_json(answer)["error"] == {
        "code": "bad_feedback",
        "message": "label 'rose' is not one of this version's labels: setosa, versicolor, virginica",
    }


def test_since_filter_and_paging(servers):
    client = servers["alice@a"]
    for _ in range(3):
        client.call("POST", "/api/v1/predict", json={"instances": [ROW]})
    everything = api_json(client.call("GET", "/api/v1/history"))
    assert everything["total"] >= 3
    page = api_json(client.call("GET", "/api/v1/history", params={"limit": 2, "offset": 1}))
    assert [i["id"] for i in page["items"]] == [i["id"] for i in everything["items"][1:3]]
    later = api_json(client.call("GET", "/api/v1/history", params={"since": "2999-01-01"}))
    assert later["total"] == 0 and later["items"] == []


def test_with_history_off_nothing_is_recorded_and_the_lists_say_so(tmp_path):
    running = dashboard_server.start(tmp_path, {"HISTORY": "off"})
    try:
        client = Client(running.base, "unused")
        client.ready()
        answer = client.call("POST", "/api/v1/predict", json={"instances": [ROW]})
        assert "prediction_id" not in api_json(answer) and "X-Prediction-Id" not in answer.headers
        answer = client.call("GET", "/api/v1/history")
        assert answer.status_code == 404
        assert api_json(answer)["error"] == {
            "code": "history_off",
            "message": "prediction history is off on this server (HISTORY=off)",
        }
        assert not (tmp_path / "cache" / "history.sqlite3").exists()
    finally:
        SCANNED.append(("history-off server log", running.stop()))
