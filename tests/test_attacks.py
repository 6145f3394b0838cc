"""Hostile and unlucky input, round three (issue 23), against the real server: one caller never hurts the others,
big bodies neither freeze nor bloat the server, values beyond float32 are row errors, the small doors that were
open are shut; and the allow-list and DATABASE_URL rules, without a server."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from dashboard.access import Access
from dashboard.history.database import database_url, explain, shown
from tests.support import dashboard_server
from tests.support.helpers import DEMO, api_json
from tests.support.secretscan import SCANNED

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
POISON = b'{"instances": [{"sepal_length": "\\ud800", "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}'
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    running = dashboard_server.start(
        tmp_path_factory.mktemp("attacks"), {"MODEL_MANIFEST_URL": str(DEMO / "manifest.json"), "HISTORY": "off"}
    )
    running.wait_ready()
    yield running.base
    SCANNED.append(("attacks server log", running.stop()))


def test_a_poisoned_row_fails_only_itself_in_every_door(api):
    """1: a lone surrogate sent alongside good calls: every good call answers, the poisoned row is its own error."""

    def good(_):
        answer = requests.post(api + "/api/v1/predict", json={"instances": [ROW]}, timeout=60)
        return answer.status_code, (api_json(answer) or {}).get("predictions", [{}])[0].get("prediction")

    def poisoned(_):
        answer = requests.post(api + "/api/v1/predict", data=POISON, headers=JSON, timeout=60)
        return answer.status_code, api_json(answer)["predictions"][0]["error"]

    with ThreadPoolExecutor(16) as pool:
        goods = [pool.submit(good, i) for i in range(60)]
        bads = [pool.submit(poisoned, i) for i in range(20)]
        assert [f.result() for f in goods] == [(200, "setosa")] * 60
        for future in bads:
            status, error = future.result()
            assert status == 200 and error.startswith("sepal_length: the value is not valid text")
    for door in ("/invocations", "/v1/models/iris-classifier:predict"):
        answer = requests.post(api + door, data=POISON, headers=JSON, timeout=60)
        assert answer.status_code == 400, (door, answer.text)  # these doors refuse a request with a bad row
        assert "not valid text" in answer.text


def test_big_json_bodies_are_refused_or_parsed_off_the_event_loop(api):
    """2: over API_MAX_JSON_BYTES: 413 before parsing, saying to send CSV; an allowed big body does not stop others."""
    huge = b'{"instances": [' + b",".join([b"[5.1, 3.5, 1.4, 0.2]"] * 450_000) + b"]}"  # ~9.5 MB
    answer = requests.post(api + "/api/v1/predict", data=huge, headers=JSON, timeout=120)
    assert answer.status_code == 413 and "API_MAX_JSON_BYTES" in api_json(answer)["error"]["message"]
    too_many = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]] * 100_001}).encode()  # under the bytes, over the rows
    answer = requests.post(api + "/api/v1/predict", data=too_many, headers=JSON, timeout=120)
    assert answer.status_code == 413 and api_json(answer)["error"]["code"] == "too_many_rows"
    big = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]] * 90_000}).encode()
    done: dict[str, float] = {}

    def send_big():
        answer = requests.post(api + "/api/v1/predict", data=big, headers=JSON, timeout=300)
        assert answer.status_code == 200
        done["big"] = time.monotonic()

    worker = threading.Thread(target=send_big)
    worker.start()
    time.sleep(0.3)
    for _ in range(5):
        assert api_json(requests.get(api + "/api/v1/health", timeout=60)) == {"status": "ok"}
    done["health"] = time.monotonic()
    worker.join()
    assert done["health"] < done["big"], "health waited for the big body"


def test_explain_is_bounded_per_request(api):
    """6: rows x inputs over API_EXPLAIN_MAX_CELLS is refused before any work; a small explain still answers."""
    rows = {"instances": [[5.1, 3.5, 1.4, 0.2]] * 30_000}  # 120,000 cells
    answer = requests.post(api + "/api/v1/predict?explain=true", json=rows, timeout=60)
    assert answer.status_code == 413
    assert "API_EXPLAIN_MAX_CELLS" in api_json(answer)["error"]["message"]
    answer = requests.post(api + "/api/v1/predict?explain=true", json={"instances": [ROW] * 100}, timeout=120)
    assert answer.status_code == 200 and len(api_json(answer)["predictions"]) == 100
    assert set(api_json(answer)["predictions"][0]["attributions"]) == set(ROW)


@pytest.mark.parametrize("value", [1e39, -1e300, "3.5e38", "1e400"])
def test_values_beyond_float32_are_row_errors(api, value):
    """7: never a 500, never a label with empty probabilities."""
    rows = [{**ROW, "sepal_width": value}, ROW]
    answer = requests.post(api + "/api/v1/predict", json={"instances": rows}, timeout=60)
    assert answer.status_code == 200, answer.text
    first, second = api_json(answer)["predictions"]
    assert first["prediction"] is None
    assert "sepal_width:" in first["error"]
    assert "beyond the largest number" in first["error"] or "not a finite number" in first["error"]
    assert second["prediction"] == "setosa"
    csv = "sepal_length,sepal_width,petal_length,petal_width\n5.1,1e39,1.4,0.2\n"
    answer = requests.post(api + "/api/v1/predict", data=csv, headers={"Content-Type": "text/csv"}, timeout=60)
    assert answer.headers["content-type"].startswith("text/csv") and "beyond the largest number" in answer.text


def test_an_endless_version_string_is_a_404_on_every_door(api):
    """15: 4,301 digits (Python refuses to read such a number) is an unknown version, not a 500."""
    spec = "1" * 4301
    answer = requests.post(api + f"/api/v1/predict?version={spec}", json={"instances": [ROW]}, timeout=60)
    assert answer.status_code == 404 and "4,301 characters" in api_json(answer)["error"]["message"]
    answer = requests.get(api + f"/api/v1/models/{spec}", timeout=60)
    assert answer.status_code == 404 and api_json(answer)["error"]["code"] == "unknown_version"
    answer = requests.post(
        api + f"/v1/models/iris-classifier/versions/{spec}:predict", json={"instances": [ROW]}, timeout=60
    )
    assert answer.status_code == 404 and "4,301 characters" in api_json(answer)["error"]  # TF Serving's shape
    answer = requests.post(api + f"/invocations?version={spec}", json={"instances": [ROW]}, timeout=60)
    assert answer.status_code == 404 and api_json(answer)["error_code"] == "UNKNOWN_VERSION"  # MLflow's shape


def test_the_tf_serving_door_takes_json_only(api):
    """15: a text/plain or form POST (what any web page may send cross-site) is refused."""
    body = json.dumps({"instances": [list(ROW.values())]})
    for kind in ("text/plain", "application/x-www-form-urlencoded"):
        answer = requests.post(
            api + "/v1/models/iris-classifier:predict", data=body, headers={"Content-Type": kind}, timeout=60
        )
        assert answer.status_code == 415, kind
    answer = requests.post(api + "/v1/models/iris-classifier:predict", data=body, headers=JSON, timeout=60)
    assert answer.status_code == 200 and len(api_json(answer)["predictions"]) == 1


def test_a_duplicated_dataframe_split_column_is_refused(api):
    body = {"dataframe_split": {"columns": [*ROW, "sepal_length"], "data": [[5.1, 3.5, 1.4, 0.2, 9.9]]}}
    answer = requests.post(api + "/invocations", json=body, timeout=60)
    assert answer.status_code == 400 and "'sepal_length' more than once" in answer.text


# ---- 12, 13: who is allowed, and the database URL, without a server


@pytest.mark.parametrize(
    "claims, why",
    [
        ({"email": "ann@company.com"}, "not verified"),
        ({"email": "ann@company.com", "email_verified": "true"}, "not verified"),
        ({"email": "ann@company.com", "email_verified": 0}, "not verified"),
        ({"email": "ann@company.com", "email_verified": "false"}, "not verified"),
        ({"email": "eve@evil.io@company.com", "email_verified": True}, "not one plain address"),
        ({"email": "eve@evil.io\n@company.com", "email_verified": True}, "not one plain address"),
        ({"email": "\u212aim@company.com", "email_verified": True}, "not one plain address"),
        ({"email": ["ann@company.com"], "email_verified": True}, "no email address"),
    ],
)
def test_the_allow_list_trusts_only_a_plain_verified_address(claims, why):
    access = Access(allowed_domains=frozenset({"company.com"}))
    allowed, reason = access.allows(claims)
    assert not allowed and why in reason
    assert "\n" not in reason and "\u212a" not in reason
    assert access.allows({"email": "Ann@Company.com", "email_verified": True}) == (True, "")


def test_a_password_with_an_at_sign_never_leaks_its_tail():
    url = database_url("postgres://bob:p@ss@w0rd@db.example:5432/history", DEMO)
    assert url.password == "p@ss@w0rd" and url.host == "db.example"
    assert shown(url) == "PostgreSQL db.example:5432/history"
    assert "w0rd" not in explain(RuntimeError("connection to p@ss@w0rd@db.example failed"), url)


# ---- 10: a stalled history database never reaches predictions


def _postgres_processes(database) -> list[int]:
    """The cluster's postmaster and every backend it started."""
    import subprocess

    pid = int((database.folder / "data" / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid, *map(int, children)]


def test_a_frozen_database_never_slows_predictions(tmp_path):
    import os
    import signal

    from dashboard.access import new_token
    from tests.support.postgres import postgres_or_skip, start_postgres
    from tests.support.secretscan import watch

    postgres_or_skip()
    database = start_postgres()
    watch(database.password)
    token, line = new_token("reader")
    running = dashboard_server.start(tmp_path, {"DATABASE_URL": database.url, "API_TOKENS": line})
    auth = {"Authorization": f"Bearer {token}"}
    frozen: list[int] = []
    try:
        running.wait_ready(headers=auth)
        assert api_json(requests.get(running.base + "/api/v1/history", headers=auth, timeout=60))["total"] == 0
        frozen = _postgres_processes(database)
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        reads: list[tuple[int, float]] = []

        def read(_):
            answer = requests.get(running.base + "/api/v1/history", headers=auth, timeout=120)
            reads.append((answer.status_code, time.monotonic()))

        with ThreadPoolExecutor(8) as pool:
            pending = [pool.submit(read, i) for i in range(8)]
            time.sleep(0.5)
            predicted = []
            for _ in range(40):
                answer = requests.post(
                    running.base + "/api/v1/predict", json={"instances": [ROW]}, headers=auth, timeout=60
                )
                predicted.append(answer.status_code)
            finished = time.monotonic()
            for future in pending:
                future.result()
        assert predicted == [200] * 40
        assert all(status == 503 for status, _ in reads), reads  # given up on, with a message, not hung
        assert min(when for _, when in reads) > finished, "the predictions waited for the history reads"
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        SCANNED.append(("frozen database server log", running.stop()))
        database.remove()


# ---- 8: SIGTERM while the database is down loses nothing


def test_a_restart_while_the_database_is_down_keeps_every_record(tmp_path):
    from dashboard.access import new_token
    from dashboard.history.spool import Spool
    from tests.support.postgres import postgres_or_skip, start_postgres
    from tests.support.secretscan import watch

    postgres_or_skip()
    database = start_postgres()
    watch(database.password)
    token, line = new_token("writer")
    auth = {"Authorization": f"Bearer {token}"}
    env = {"DATABASE_URL": database.url, "API_TOKENS": line}
    running = dashboard_server.start(tmp_path, env)
    try:
        running.wait_ready(headers=auth)
        assert api_json(requests.get(running.base + "/api/v1/history", headers=auth, timeout=60))["total"] == 0
        database.stop()
        for _ in range(200):
            answer = requests.post(
                running.base + "/api/v1/predict", json={"instances": [ROW]}, headers=auth, timeout=60
            )
            assert answer.status_code == 200
    finally:
        log = running.stop()  # SIGTERM, as a platform's restart sends
        SCANNED.append(("restart server log", log))
    spooled = sum(
        len(Spool(folder, 1 << 30).read(p))
        for folder in (tmp_path / "cache" / "history-spool").iterdir()
        for p in Spool(folder, 1 << 30).files()
    )
    assert spooled == 200, log[-2000:]
    assert "stopping with records unwritten" in log and database.password not in log
    database.start()
    again = dashboard_server.start(tmp_path, env)
    try:
        again.wait_ready(headers=auth)
        deadline, total = time.monotonic() + 60, 0
        while time.monotonic() < deadline and total < 200:
            total = requests.get(again.base + "/api/v1/history", headers=auth, timeout=60).json()["total"]
            time.sleep(0.5)
        assert total == 200
    finally:
        SCANNED.append(("restarted server log", again.stop()))
        database.remove()


# ---- 5: half-sent requests are timed out, one address holds a bounded number of connections


def test_half_sent_requests_are_closed_and_the_server_stays_reachable(tmp_path):
    import socket

    running = dashboard_server.start(
        tmp_path,
        {
            "MODEL_MANIFEST_URL": str(DEMO / "manifest.json"),
            "HISTORY": "off",
            "SERVER_IDLE_SECONDS": "2",
            "SERVER_CONNECTIONS_PER_CLIENT": "100",
        },
    )
    port = int(running.base.rsplit(":", 1)[1])
    held = []
    try:
        for i in range(300):  # half a request each, never finished
            connection = socket.create_connection(("127.0.0.1", port), timeout=10)
            connection.sendall(b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\n" if i % 2 else b"GET / HTTP/1.1\r\nHo")
            held.append(connection)
        refused = 0
        for connection in held:  # past 100 from this address: closed at once
            connection.settimeout(10)
            try:
                if connection.recv(1) == b"":
                    refused += 1
            except (ConnectionResetError, TimeoutError):
                refused += 1
        assert refused >= 200
        deadline = time.monotonic() + 30
        answer = None
        while time.monotonic() < deadline:  # the half-sent ones are closed after 2 s of silence
            try:
                answer = requests.get(running.base + "/api/v1/health", timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.5)
        assert answer is not None and api_json(answer) == {"status": "ok"}
    finally:
        for connection in held:
            connection.close()
        log = running.stop()
        SCANNED.append(("half-open server log", log))
    assert 1 <= log.count("refused a connection: one address holds more than 100") <= 2  # once per cause (a minute)
    assert 1 <= log.count("closed a connection that sent nothing") <= 2
    assert len(log) < 100_000


# ---- 7 and 15 in the page; 14: the default version stays loaded


def test_the_page_survives_an_endless_version_link_and_a_value_beyond_float32(env):
    from streamlit.testing.v1 import AppTest

    from tests.support.helpers import REPO

    at = AppTest.from_file(str(REPO / "dashboard" / "ui" / "page.py"), default_timeout=120)
    at.query_params["version"] = "1" * 4301
    at.run()
    assert not at.exception
    assert any("4,301 characters" in w.value for w in at.warning)
    at.number_input(key="single-sepal_width").set_value(1e39)  # the field holds at most 2**53: never nan%
    at.button(key="single-submit").click().run()
    assert not at.exception
    assert not [c for c in at.caption if "nan" in c.value.lower()]


def test_the_default_version_stays_loaded_while_others_are_cycled(tmp_path):
    from dashboard import service
    from dashboard.service.batching import MicroBatcher
    from dashboard.service.publish import publish
    from dashboard.service.serving import Serving

    for label, model in (("1.0.0", "iris-1.0.0"), ("1.1.0", "iris-1.1.0"), ("1.2.0", "iris-1.0.0")):
        publish(DEMO / f"{model}.keras", label, str(tmp_path / "store"))
    settings = service.settings(
        {
            "MODEL_MANIFEST_URL": str(tmp_path / "store" / "manifest.json"),
            "MODEL_CACHE_DIR": str(tmp_path / "cache"),
            "MODEL_CACHE_VERSIONS": "1",
        }
    )
    server = Serving(settings=settings, batcher=MicroBatcher())
    catalog = server.catalog()
    server._load(catalog.default)
    for version in [v for v in catalog.versions if v is not catalog.default] * 3:
        server._load(version)
        assert server.pool.peek(settings, catalog.default) is not None
    assert server._frozen
