"""Watching a model in production (issue 28): the hourly counts and the monitor on SQLite and a real PostgreSQL,
GET /api/v1/monitor and GET /metrics on a real server (scraped with prometheus-client's own parser), the Monitor tab
in AppTest, and alerts posted to a real local webhook receiver."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from dashboard import history, service
from dashboard.history import database as historydb
from dashboard.history import monitoring
from dashboard.history.monitoring import Scope
from dashboard.service.alerts import Alerts
from dashboard.service.serving import Serving
from tests.support import dashboard_server
from tests.support.apptest import start
from tests.support.helpers import REPO, api_json, free_port
from tests.support.monitor import (
    API_CALLS,
    API_ROWS,
    BATCH_ROWS,
    DAYS,
    DRIFT_FROM,
    FORMS,
    SHIFTED,
    copy_history,
    draw,
    seed_week,
    week_start,
)
from tests.support.postgres import new_database, running_postgres
from tests.support.secretscan import SCANNED, watch

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
PER_DAY = API_CALLS + FORMS + 1
ROWS_PER_DAY = API_CALLS * API_ROWS + FORMS + BATCH_ROWS


# ----- the arithmetic -----


@pytest.mark.parametrize(
    "ms, key", [(0.2, "1"), (1.0, "1"), (1.01, "2"), (9.5, "10"), (12.0, "15"), (9000, "10000"), (60_000, "inf")]
)
def test_latency_buckets_resolve_one_millisecond_up_to_ten(ms, key):
    assert monitoring.latency_key(ms) == key


def test_regression_values_are_bucketed_within_five_percent():
    for value in (-1234.5, -0.02, 0.0031, 1.0, 2.5, 333.0, 1e6):
        middle = monitoring.key_value(monitoring.value_key(value))
        assert abs(middle - value) <= 0.05 * abs(value), value
    assert monitoring.value_key(0.0) == "0" and monitoring.value_key(float("nan")) == "nan"


def test_percentiles_from_the_latency_histogram_match_the_samples():
    rng = np.random.default_rng(1)
    samples = rng.gamma(4.0, 1.2, size=20_000)  # milliseconds, mostly 2-10
    counts = [0] * len(monitoring.LATENCY_MS)
    for ms in samples:
        counts[monitoring.LATENCY_MS.index(float(monitoring.latency_key(ms)))] += 1
    # within a bucket's width: 1 ms up to 10 ms, 5 ms from 10 to 15
    for q, width in ((0.5, 1.0), (0.9, 1.0), (0.99, 5.0)):
        assert abs(monitoring.histogram_quantile(q, counts) - np.quantile(samples, q)) < width


def test_drift_thresholds_are_simulated_on_a_coarse_grid_that_never_raises_them():
    seen = {monitoring.coarse_rows(n) for n in range(30, 100_000, 7)}
    assert len(seen) < 40
    assert all(monitoring.coarse_rows(n) <= n for n in range(30, 5000))
    assert monitoring.coarse_rows(29) == 29


# ----- the counts and the monitor, on both databases -----


@pytest.fixture(scope="module")
def postgres():
    yield from running_postgres("PostgreSQL server log (monitor)")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def seeded(request, tmp_path_factory):
    """A recorder on a fresh database (SQLite, PostgreSQL) holding the drifting week that ended 3 days ago."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('monitor') / 'history.sqlite3'}"
    else:
        url = new_database(request.getfixturevalue("postgres"))
    recorder = history.Recorder(historydb.database_url(url, None))
    week = seed_week(recorder, week_start(DAYS + 3))
    yield recorder, week
    recorder.close()


@pytest.fixture(scope="module")
def served():
    settings = service.settings({"HOME": "/nonexistent"})
    return service.load_version(settings, service.catalog(settings).default)


def week_monitor(recorder, week, served, bucket="day"):
    scope = Scope(served.version.model_name, served.label, week.start, week.until, True, bucket)
    return recorder.monitor(scope, served.schema.output.type, served.version.reference)


def test_the_monitor_counts_a_seeded_week_by_day_and_door(seeded, served):
    recorder, week = seeded
    found = week_monitor(recorder, week, served)
    assert found.totals["predictions"] == DAYS * PER_DAY
    assert found.totals["rows"] == DAYS * ROWS_PER_DAY
    assert found.totals["refused_rows"] == DAYS
    volume = {(v["time"], v["door"]): (v["predictions"], v["rows"]) for v in found.volume}
    assert volume == {(week.day(day), door): counts for (day, door), counts in week.counts.items()}
    api = next(v for v in found.volume if v["door"] == "api")
    assert api["refused_rows"] == 1 and api["mean_ms"] == pytest.approx(4.0)  # 2, 3, 4, 5, 6 ms in turn
    # by hour: the same totals, spread over the hours
    hourly = week_monitor(recorder, week, served, "hour")
    assert sum(v["predictions"] for v in hourly.volume) == DAYS * PER_DAY
    assert len({v["time"] for v in hourly.volume}) > DAYS * 10


def test_latency_percentiles_and_answers_per_day(seeded, served):
    recorder, week = seeded
    found = week_monitor(recorder, week, served)
    assert [entry["time"] for entry in found.latency] == [week.day(d) for d in range(DAYS)]
    for entry in found.latency:
        assert entry["calls"] == PER_DAY
        # 30 API calls of 2-6 ms, 10 forms of 3 ms, one batch of 50 ms
        assert 2.0 <= entry["p50_ms"] <= 5.0 and 5.0 <= entry["p90_ms"] <= 7.0 and entry["p99_ms"] >= 10.0
    for day in range(DAYS):
        shares = [o for o in found.outputs if o["time"] == week.day(day)]
        assert sum(o["count"] for o in shares) == ROWS_PER_DAY - 1
        assert math.isclose(sum(o["share"] for o in shares), 1.0)
        assert {o["label"] for o in shares} <= {"setosa", "versicolor", "virginica"}


def test_drift_of_the_recorded_inputs_turns_major_when_they_shift(seeded, served):
    recorder, week = seeded
    found = week_monitor(recorder, week, served)
    daily = {(d["time"], d["feature"]): d for d in found.drift if d["time"] != "all"}
    for day in range(DAYS):
        shifted = daily[(week.day(day), SHIFTED)]
        assert shifted["rows"] == ROWS_PER_DAY - 1
        assert shifted["verdict"] == ("major" if day >= DRIFT_FROM else "stable"), (day, shifted)
        assert shifted["moderate_at"] < shifted["major_at"]
        for name in ("sepal_length", "sepal_width", "petal_width"):
            assert daily[(week.day(day), name)]["verdict"] != "major", (day, name)
    overall = {d["feature"]: d for d in found.drift if d["time"] == "all"}
    assert overall[SHIFTED]["verdict"] == "major" and overall[SHIFTED]["rows"] == DAYS * (ROWS_PER_DAY - 1)
    assert overall[SHIFTED]["outside_share"] > 0.05  # shifted past the training maximum
    assert [overall[n]["verdict"] for n in ("sepal_length", "sepal_width", "petal_width")].count("major") == 0


def test_reports_give_the_agreement_per_day_and_the_most_corrected_answers(seeded, served):
    recorder, week = seeded
    found = week_monitor(recorder, week, served)
    per_day = {entry["time"]: entry for entry in found.feedback}
    for day in range(DAYS):
        entry = per_day[week.day(day)]
        flagged = week.flagged.get(day, 0)
        assert entry["flagged"] == flagged and entry["rows"] == ROWS_PER_DAY
        assert entry["agreement"] == round(1 - flagged / ROWS_PER_DAY, 4)
    assert found.totals["flagged_rows"] == sum(week.flagged.values()) > 0
    early = 1 - sum(week.flagged.get(d, 0) for d in range(3)) / (3 * ROWS_PER_DAY)
    late = 1 - sum(week.flagged.get(d, 0) for d in range(3, DAYS)) / (4 * ROWS_PER_DAY)
    assert found.totals["agreement_change"] == round(late - early, 4) < 0  # reports came in the last days
    assert {c["corrected_to"] for c in found.corrected} == {"virginica"}
    assert sum(c["reports"] for c in found.corrected) == found.totals["flagged_rows"]
    assert all(c["answer"] in ("setosa", "versicolor", "virginica") for c in found.corrected)


def test_the_monitor_is_read_again_once_something_new_is_written(seeded, served):
    recorder, _ = seeded
    now = datetime.now(UTC)
    scope = Scope(served.version.model_name, served.label, now - timedelta(hours=2), now + timedelta(hours=1))
    before = recorder.monitor(scope, "classification", served.version.reference).totals["predictions"]
    assert recorder.monitor(scope, "classification", None) is recorder.monitor(scope, "classification", None)
    table = service.predict_frame(served, pd.DataFrame([ROW])).table
    recorder.record(served, "form", "me", table, 0.002, keep_rows=1)
    recorder.monitor_cache_seconds = 0.0  # what is cached is kept until something is written, then read again
    try:
        assert recorder.monitor(scope, "classification", None).totals["predictions"] == before + 1
    finally:
        recorder.monitor_cache_seconds = 10.0


def test_two_writers_adding_to_the_same_hours_lose_no_count(seeded, served):
    recorder, _ = seeded
    other = history.Recorder(recorder.url)
    table = service.predict_frame(served, pd.DataFrame([ROW] * 3)).table
    when = week_start(40) + timedelta(hours=5)
    try:

        def write(writer, n):
            for _ in range(n):
                pending = history.records.of_table(served, "batch", "me", table, 0.004, 10)
                pending.fields["created_at"] = when
                writer.queue(pending)
            assert writer.flush(60)

        threads = [threading.Thread(target=write, args=(w, 150)) for w in (recorder, other)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    finally:
        other.close()
    scope = Scope(served.version.model_name, served.label, when, when + timedelta(hours=1))
    found = recorder.monitor(scope, "classification", served.version.reference)
    assert found.totals["predictions"] == 300 and found.totals["rows"] == 900
    assert sum(d["rows"] for d in found.drift if d["time"] == "all" and d["feature"] == SHIFTED) == 900


# ----- the server: /api/v1/monitor, /metrics, alerts -----


class Receiver:
    """A real local webhook: records each JSON body; answers 503 to the first `failures` posts."""

    def __init__(self, failures: int = 1) -> None:
        self.bodies: list[dict] = []
        self.raw: list[bytes] = []
        self.failures = failures
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.raw.append(body)
                if receiver.failures > 0:
                    receiver.failures -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T0/B0/s3cr3t-hook-path"

    def wait_for(self, predicate, seconds: float = 60) -> list[dict]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = [b for b in self.bodies if predicate(b)]
            if found:
                return found
            time.sleep(0.2)
        raise AssertionError(f"no such alert within {seconds} s; got {self.bodies}")

    def close(self) -> None:
        self.server.shutdown()


ADMIN, ANALYST = "mon-admin-5b1e9d2c7a41f0e3b6d8c2a9f7e1", "mon-analyst-0c8f3e6b1d92a4c7e5f3b8d1a6c0"


@pytest.fixture(scope="module")
def monitored(seeded_history, tmp_path_factory):
    """The dashboard on the demo store with the seeded week as its history, two tokens, alerts to a local webhook
    checked every second (refused rows alert over 20%)."""
    folder = tmp_path_factory.mktemp("monitored")
    path = copy_history(seeded_history[0], folder / "db")
    receiver = Receiver(failures=1)
    watch(ADMIN)
    watch(ANALYST)
    running = dashboard_server.start(
        folder,
        {
            "DATABASE_URL": f"sqlite:///{path}",
            "API_TOKENS": f"admin:{_hashed(ADMIN)},analyst:{_hashed(ANALYST)}",
            "MONITOR_WEBHOOK_URL": receiver.url,
            "MONITOR_CHECK_SECONDS": "1",
            "MONITOR_ERROR_RATE": "0.2",
        },
    )
    running.wait_ready({"Authorization": f"Bearer {ADMIN}"})
    yield running, seeded_history[1], receiver
    SCANNED.append(("monitored server log", running.stop()))
    receiver.close()


def _hashed(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


def auth(token=ADMIN) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_the_monitor_api_answers_the_seeded_week_behind_the_token(monitored):
    running, week, _ = monitored
    base = running.base + "/api/v1/monitor"
    refused = requests.get(base, timeout=30)
    assert refused.status_code == 401 and api_json(refused)["error"]["code"] == "missing_token"
    answer = requests.get(base, headers=auth(ANALYST), timeout=60)
    found = api_json(answer)
    assert answer.status_code == 200, found
    assert found["model"] == "iris-classifier" and found["version"] == "1.1.0" and found["bucket"] == "day"
    assert found["totals"]["predictions"] >= DAYS * PER_DAY  # the seeded week, and whatever the tests sent since
    overall = {d["feature"]: d["verdict"] for d in found["drift"] if d["time"] == "all"}
    assert overall[SHIFTED] == "major" and list(overall.values()).count("major") == 1
    assert found["totals"]["flagged_rows"] == sum(week.flagged.values())
    hourly = api_json(requests.get(base, params={"bucket": "hour"}, headers=auth(), timeout=60))
    assert sum(v["predictions"] for v in hourly["volume"]) == found["totals"]["predictions"]
    older = {"since": (week.start - timedelta(days=30)).isoformat(), "until": week.start.isoformat()}
    empty = api_json(requests.get(base, params=older, headers=auth(), timeout=60))
    assert empty["totals"]["predictions"] == 0 and empty["drift"] == []


@pytest.mark.parametrize(
    "params, status, message",
    [
        ({"since": "last week"}, 400, "since='last week' is not a date; use ISO 8601 such as 2026-11-30"),
        ({"bucket": "minute"}, 400, "bucket='minute' is not one of day, hour"),
        ({"since": "2026-01-01", "until": "2025-01-01"}, 400, "since (2026-01-01 00:00) must be before until"),
        ({"since": "2024-01-01", "bucket": "hour"}, 400, "a monitor covers at most 31 days by hour"),
        ({"until": "0001-01-01"}, 400, "since and until must be dates between the years 2 and 9998"),
        ({"model": "housing"}, 404, "there is no model housing"),
        ({"version": "9.9.9"}, 404, "9.9.9"),
    ],
)
def test_a_bad_monitor_request_says_what_to_send(monitored, params, status, message):
    running, _, _ = monitored
    answer = requests.get(running.base + "/api/v1/monitor", params=params, headers=auth(), timeout=60)
    assert answer.status_code == status
    assert message in api_json(answer)["error"]["message"]


def scrape(base: str) -> dict[tuple[str, tuple], float]:
    """GET /metrics parsed by prometheus-client: {(sample name, sorted labels): value}."""
    answer = requests.get(base + "/metrics", headers=auth(), timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def test_metrics_count_known_traffic_in_prometheus_format(monitored):
    running, _, _ = monitored
    refused = requests.get(running.base + "/metrics", timeout=30)
    assert refused.status_code == 401 and api_json(refused)["error"]["code"] == "missing_token"
    before = scrape(running.base)
    bad = {**ROW, "sepal_width": None}
    for _ in range(3):
        answer = requests.post(
            running.base + "/api/v1/predict", json={"instances": [ROW, bad]}, headers=auth(), timeout=60
        )
        assert answer.status_code == 200
    assert requests.post(running.base + "/api/v1/predict", json={"instances": [ROW]}, timeout=30).status_code == 401
    after = scrape(running.base)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    ok = {"door": "api", "model": "iris-classifier", "version": "1.1.0", "status": "200"}
    assert grew("keras_dashboard_requests_total", **ok) == 3
    assert grew("keras_dashboard_requests_total", door="api", model="", version="", status="401") == 1
    assert grew("keras_dashboard_request_seconds_count", door="api", model="iris-classifier") == 3
    fast = grew("keras_dashboard_request_seconds_bucket", door="api", model="iris-classifier", le="1.0")
    assert fast == 3  # every one answered within a second
    assert grew("keras_dashboard_rows_predicted_total", model="iris-classifier", version="1.1.0") == 3
    refused = {"model": "iris-classifier", "version": "1.1.0", "reason": "missing_value"}
    assert grew("keras_dashboard_rows_refused_total", **refused) == 3
    assert grew("keras_dashboard_batch_rows_count") == 3 and grew("keras_dashboard_batch_rows_sum") == 6
    assert after[("keras_dashboard_models_loaded", ())] >= 1
    assert after[("keras_dashboard_model_bytes", (("model", "iris-classifier"), ("version", "1.1.0")))] > 0
    loaded = (("model", "iris-classifier"), ("outcome", "loaded"), ("version", "1.1.0"))
    assert after[("keras_dashboard_model_loads_total", loaded)] >= 1
    assert after[("keras_dashboard_model_load_seconds_count", (("model", "iris-classifier"),))] >= 1
    # the history wrote the three calls (the writer lingers a quarter of a second)
    deadline = time.monotonic() + 30
    while grew("keras_dashboard_history_written_total") < 3 and time.monotonic() < deadline:
        time.sleep(0.3)
        after = scrape(running.base)
    assert grew("keras_dashboard_history_written_total") >= 3
    assert ("keras_dashboard_history_queue_depth", ()) in after
    assert grew("keras_dashboard_history_write_seconds_count") >= 1
    assert after[("keras_dashboard_history_dropped_total", ())] == 0


def test_drift_and_refused_rows_are_posted_once_to_the_webhook(monitored):
    running, _, receiver = monitored
    drift = receiver.wait_for(lambda b: b["cause"] == "drift")
    assert drift[0]["feature"] == SHIFTED and drift[0]["model"] == "iris-classifier"
    assert drift[0]["text"].startswith(f"keras-dashboard: input '{SHIFTED}' of iris-classifier 1.1.0 drifted (major)")
    assert receiver.raw[0] == receiver.raw[1]  # the first post was answered 503, and retried
    bad = {**ROW, "petal_width": "wide"}
    body = {"instances": [bad] * 200}
    answer = requests.post(running.base + "/api/v1/predict", json=body, headers=auth(), timeout=60)
    assert answer.status_code == 200
    refused = receiver.wait_for(lambda b: b["cause"] == "refused_rows")
    assert refused[0]["threshold"] == 0.2 and refused[0]["value"] > 0.2
    assert "MONITOR_ERROR_RATE is 20.0%" in refused[0]["text"]
    time.sleep(3)  # three more checks: the causes are still on, nothing more is sent
    assert [b["cause"] for b in receiver.bodies].count("drift") == 1
    assert [b["cause"] for b in receiver.bodies].count("refused_rows") == 1
    for raw in receiver.raw:
        assert ADMIN.encode() not in raw and b"s3cr3t-hook-path" not in raw
    log = running.log_path.read_text()
    assert "alerts go to the webhook at 127.0.0.1" in log and "s3cr3t-hook-path" not in log


def test_a_default_version_that_fails_to_load_is_alerted_without_secrets(tmp_path):
    receiver = Receiver(failures=0)
    try:
        signed = "https://bucket.s3.amazonaws.com/model.keras?X-Amz-Signature=deadbeefcafe&X-Amz-Credential=AKIA1"
        settings = service.settings(
            {
                "HOME": str(tmp_path),
                "MODEL_CACHE_DIR": str(tmp_path / "cache"),
                "MODEL_URL": signed.replace("https://bucket.s3.amazonaws.com", f"http://127.0.0.1:{free_port()}"),
                "MODEL_RETRIES": "0",
                "MONITOR_WEBHOOK_URL": receiver.url,
                "HISTORY": "off",
            }
        )
        from dashboard.service.alerts import alerts_for
        from dashboard.service.batching import MicroBatcher

        serving = Serving(settings=settings, batcher=MicroBatcher(), alerts=alerts_for(settings))
        serving.preload()
        found = receiver.wait_for(lambda b: b["cause"] == "load_failed", seconds=60)
        assert found[0]["text"].startswith("keras-dashboard: the default version ")
        assert "could not be loaded" in found[0]["text"]
        for raw in receiver.raw:
            assert b"deadbeefcafe" not in raw and b"AKIA1" not in raw
        first = found[0]
        # the same cause within the hour: nothing more is posted
        assert serving.alerts.load_failed(first["model"], first["version"], "again") == []
        assert len(receiver.bodies) == 1
    finally:
        receiver.close()


def test_metrics_of_several_processes_are_summed_in_multiprocess_mode(tmp_path):
    """PROMETHEUS_MULTIPROC_DIR: two worker processes count rows, a third exposes the sum."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder), "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    count = (
        "import sys; from dashboard.common import metrics; "
        "metrics.ROWS_PREDICTED.labels('iris', '1.0.0').inc(int(sys.argv[1])); metrics.MODELS_LOADED.inc()"
    )
    for rows in ("3", "4"):
        subprocess.run([sys.executable, "-c", count, rows], env=env, check=True, timeout=60)
    shown = subprocess.run(
        [sys.executable, "-c", "from dashboard.common import metrics; print(metrics.exposition()[0].decode())"],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(shown)
        for s in family.samples
    }
    assert samples[("keras_dashboard_rows_predicted_total", (("model", "iris"), ("version", "1.0.0")))] == 7


# ----- the Monitor tab -----


def test_the_monitor_tab_shows_the_week_as_charts_with_downloads(env, seeded_history, downloads, tmp_path):
    path = copy_history(seeded_history[0], tmp_path / "db")
    env.setenv("DATABASE_URL", f"sqlite:///{path}")
    at = start()
    at.session_state["tab"] = "Monitor"
    at.run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.main.metric}
    assert metrics["Predictions"] == f"{DAYS * PER_DAY:,}"
    assert metrics["Rows"] == f"{DAYS * ROWS_PER_DAY:,}"
    assert metrics["Features drifting"] == "1"
    assert metrics["Agreement"].endswith("%") and metrics["Agreement"] != "100.0%"
    titles = [s.value for s in at.main.subheader]
    assert titles == [
        "Predictions by door",
        "Latency (ms per call)",
        "Answers",
        "Inputs against the training data",
        "Wrong-answer reports",
    ]
    drift = next(d.value for d in at.main.dataframe if "verdict" in d.value.columns)
    verdicts = dict(zip(drift["input"], drift["verdict"], strict=True))
    assert verdicts[SHIFTED] == "major" and list(verdicts.values()).count("major") == 1
    buttons = {b.label: b for b in at.get("download_button")}
    volume = downloads(buttons["Download predictions by door (CSV)"]).decode()
    assert volume.splitlines()[0] == "time,door,predictions,rows,refused_rows,mean_ms"
    assert sum(int(line.split(",")[2]) for line in volume.splitlines()[1:]) == DAYS * PER_DAY
    drift_csv = downloads(buttons["Download drift (CSV)"]).decode()
    assert f"all,{SHIFTED}," in drift_csv and ",major" in drift_csv
    # by hour, and an older range with nothing in it
    at.radio(key="monitor-bucket").set_value("hour").run()
    assert not at.exception and at.main.metric[0].value == f"{DAYS * PER_DAY:,}"
    at.radio(key="monitor-range").set_value("Pick dates").run()
    long_ago = datetime.now(UTC).date() - timedelta(days=60)
    at.date_input(key="monitor-dates").set_value((long_ago, long_ago + timedelta(days=2))).run()
    assert not at.exception
    assert any("No predictions of version 1.1.0 were recorded in this range" in i.value for i in at.main.info)


def test_flagged_answers_over_the_threshold_are_posted_once(served, tmp_path):
    receiver = Receiver(failures=0)
    recorder = history.Recorder(historydb.database_url(f"sqlite:///{tmp_path / 'h.sqlite3'}", None))
    try:
        drawn = draw(served.version.reference, 40, np.random.default_rng(3))  # like the training data: no drift
        table = service.predict_frame(served, drawn).table
        ids = [recorder.record(served, "form", "ana", table.iloc[[i]], 0.003, keep_rows=1) for i in range(40)]
        assert recorder.flush(30)
        alerts = Alerts(receiver.url, error_rate=0.1, flag_rate=0.05)
        assert alerts.check(served, recorder) == []  # 0 of 40 reported
        for pid in ids[:4]:
            recorder.add_feedback(pid, "ana@example.com", label="virginica")
        posted = alerts.check(served, recorder)
        assert [m["cause"] for m in posted] == ["flagged_answers"]
        assert posted[0]["text"] == (
            "keras-dashboard: 10.0% of the answers of iris-classifier 1.1.0 in the last day were reported wrong "
            "(4 of 40; MONITOR_FLAG_RATE is 5.0%)"
        )
        assert posted[0]["value"] == 0.1 and posted[0]["threshold"] == 0.05
        assert alerts.check(served, recorder) == []  # still on: nothing more
        assert receiver.bodies == posted
    finally:
        recorder.close()
        receiver.close()


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"MONITOR_WEBHOOK_URL": "hooks.example.com/x"}, "MONITOR_WEBHOOK_URL must be an http:// or https:// URL"),
        ({"MONITOR_ERROR_RATE": "10%"}, "MONITOR_ERROR_RATE='10%' is not a share; use a number above 0 and at most 1"),
        ({"MONITOR_FLAG_RATE": "2"}, "MONITOR_FLAG_RATE='2' is not a share; use a number above 0 and at most 1"),
        ({"MONITOR_CHECK_SECONDS": "0.5"}, "MONITOR_CHECK_SECONDS must be at least 1, not 0.5"),
    ],
)
def test_bad_monitor_settings_say_what_to_write(environ, message):
    from dashboard.config import load_settings
    from dashboard.errors import ConfigError

    with pytest.raises(ConfigError) as raised:
        load_settings(environ, secrets={})
    assert raised.value.message.startswith(message)


def test_the_webhook_url_stays_out_of_the_settings_repr():
    from dashboard.config import load_settings

    settings = load_settings({"MONITOR_WEBHOOK_URL": "https://hooks.example.com/T0/B0/s3cr3t"}, secrets={})
    assert settings.monitor_webhook_url.endswith("s3cr3t") and "s3cr3t" not in repr(settings)


def test_a_regression_s_answers_are_shown_as_quantiles_within_five_percent():
    values = np.linspace(10.0, 200.0, 1000)
    digest = monitoring.digest(3.0, len(values), 0, "regression", values.tolist())
    hour = datetime(2026, 11, 30, 8, tzinfo=UTC)
    rows = [{"hour": hour, "key": key, "count": count} for metric, _, key, count, _ in digest if metric == "output"]
    (entry,) = monitoring._outputs(rows, "day", "regression")
    assert entry["count"] == 1000 and entry["time"] == "2026-11-30T00:00:00Z"
    for q in (5, 25, 50, 75, 95):
        assert entry[f"p{q}"] == pytest.approx(np.quantile(values, q / 100), rel=0.05)
