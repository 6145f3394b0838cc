"""Prediction history and feedback (issue 17) on a real PostgreSQL server and on SQLite: URLs, Alembic upgrades,
recording and reading back, the write queue through a database outage, two writers at once, the CLI's records."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from dashboard import history, service
from dashboard.cli import main as cli
from dashboard.cli import predicting
from dashboard.errors import ConfigError, InputError
from dashboard.history import Filters, UnknownPredictionError
from dashboard.history import database as historydb
from dashboard.history.spool import Spool
from dashboard.history.tables import predictions
from tests.support.helpers import DEMO, REPO
from tests.support.postgres import new_database, postgres_or_skip, running_postgres, start_postgres
from tests.support.secretscan import SCANNED, watch

SAMPLE = DEMO / "sample.csv"


@pytest.fixture(scope="module")
def postgres():
    yield from running_postgres("PostgreSQL server log")


@pytest.fixture(scope="module")
def served():
    """The demo store's default version, loaded (the recorder takes its version, schema and runtime)."""
    settings = service.settings({"HOME": "/nonexistent"})
    return service.load_version(settings, service.catalog(settings).default)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, tmp_path):
    """A fresh, empty database: an SQLite file, or a new database on the module's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite3'}"
    return new_database(request.getfixturevalue("postgres"))


def make_recorder(url: str, bound: int = 10_000) -> history.Recorder:
    return history.Recorder(historydb.database_url(url, None), bound=bound)


def predicted(served, rows: list[dict]) -> pd.DataFrame:
    return service.predict_frame(served, pd.DataFrame(rows, columns=served.schema.names)).table


ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@pytest.mark.parametrize(
    "given, driver",
    [
        ("postgres://u:pw@db.example.com:5432/d", "postgresql+psycopg"),
        ("postgresql://u:pw@db.example.com/d", "postgresql+psycopg"),
        ("postgresql+psycopg2://u:pw@db.example.com/d", "postgresql+psycopg"),
        ("sqlite:////tmp/x.sqlite3", "sqlite"),
    ],
)
def test_database_url_as_heroku_sets_it(given, driver):
    url = historydb.database_url(given, None)
    assert url.drivername == driver
    assert "pw" not in historydb.shown(url) and "pw" not in repr(url)


def test_no_database_url_is_sqlite_in_the_cache_folder(tmp_path):
    url = historydb.database_url(None, tmp_path)
    assert url.database == str(tmp_path / "history.sqlite3")
    assert historydb.shown(url) == f"SQLite file {tmp_path / 'history.sqlite3'}"


@pytest.mark.parametrize(
    "given, message",
    [
        ("mysql://u:pw@h/d", "DATABASE_URL uses 'mysql'; use postgres://…, postgresql://… or sqlite:///PATH"),
        (
            "not a url",
            "DATABASE_URL is not a database URL; use postgres://… (as Heroku Postgres sets it) or sqlite:///PATH",
        ),
    ],
)
def test_a_bad_database_url_is_one_clear_error_without_the_password(given, message):
    with pytest.raises(ConfigError) as caught:
        historydb.database_url(given, None)
    assert caught.value.message == message


def test_history_settings(tmp_path):
    settings = service.settings({"HOME": str(tmp_path), "HISTORY": "off", "HISTORY_SCOPE": "own"})
    assert settings.history is False and settings.history_scope == "own"
    assert history.recorder(settings) is None
    assert "secret" not in repr(service.settings({"HOME": str(tmp_path), "DATABASE_URL": "postgres://u:secret@h/d"}))
    with pytest.raises(ConfigError, match="HISTORY_SCOPE='mine' is not one of all, own"):
        service.settings({"HOME": str(tmp_path), "HISTORY_SCOPE": "mine"})


def test_alembic_upgrades_from_empty_and_from_the_previous_revision(database, served):
    engine = historydb.create(historydb.database_url(database, None))
    historydb.upgrade_to(engine, "0001")  # the first schema: predictions only
    assert "feedback" not in sa.inspect(engine).get_table_names()
    row = {
        "id": "a" * 32,
        "created_at": datetime.now(UTC),
        "user": "old@example.com",
        "source": "form",
        "version": "1.0.0",
        "runtime": "keras",
        "output_type": "classification",
        "labels": ["setosa", "versicolor", "virginica"],
        "features": served.schema.names,
        "rows": 1,
        "errors": 0,
        "duration_ms": 3.0,
        "inputs": [ROW],
        "outputs": [{"prediction": "setosa", "error": ""}],
    }
    with engine.begin() as connection:
        connection.execute(predictions.insert(), [row])
    assert historydb.migrate(engine) == "0004"
    assert historydb.migrate(engine) == "0004"  # a second start changes nothing
    engine.dispose()
    recorder = make_recorder(database)
    try:
        old = recorder.prediction("a" * 32)
        assert old["user"] == "old@example.com" and old["inputs"] == [ROW] and old["model"] is None
        new = recorder.record(served, "form", "new@example.com", predicted(served, [ROW]), 0.004, keep_rows=1)
        assert recorder.flush(10)
        assert recorder.prediction(new)["model"] == served.version.model_name == "iris-classifier"
        # rows from before models had names count as the default model's, and as no other model's
        as_default = recorder.predictions(Filters(model="iris-classifier", model_is_default=True))
        assert {item["id"] for item in as_default.items} == {"a" * 32, new}
        assert {item["id"] for item in recorder.predictions(Filters(model="iris-classifier")).items} == {new}
        assert recorder.predictions(Filters(model="other")).total == 0
        stored = recorder.add_feedback("a" * 32, "me", label="versicolor")
        assert stored["label"] == "versicolor"
    finally:
        recorder.close()


def test_record_read_filter_and_page(database, served):
    recorder = make_recorder(database)
    try:
        form = recorder.record(served, "form", "ann@example.com", predicted(served, [ROW]), 0.004, keep_rows=1)
        rows = [ROW, {**ROW, "sepal_length": "abc"}, {**ROW, "petal_length": 6.0, "petal_width": 2.2}]
        api = recorder.record(served, "api", "ci-token", predicted(served, rows), 0.01, keep_rows=100)
        big = predicted(served, [ROW] * 150)
        batch = recorder.record(
            served, "batch", "bob@example.com", big, 0.2, keep_rows=0, file_name="f.csv", file_sha256="0" * 64
        )
        assert recorder.flush(10)
        everything = recorder.predictions(Filters(), details=True)
        assert everything.total == 3
        assert [i["id"] for i in everything.items] == [batch, api, form]  # newest first
        by_id = {i["id"]: i for i in everything.items}
        assert by_id[form]["inputs"] == [ROW] and by_id[form]["outputs"][0]["prediction"] == "setosa"
        assert by_id[form]["sha256"] == served.version.digest and by_id[form]["runtime"] == served.runtime
        assert by_id[api]["rows"] == 3 and by_id[api]["errors"] == 1
        assert by_id[api]["outputs"][1]["error"] == "sepal_length: 'abc' is not a number"
        assert by_id[api]["inputs"][1]["sepal_length"] == "abc"
        assert by_id[batch]["inputs"] is None and by_id[batch]["summary"] == {
            "predicted": 150,
            "counts": {"setosa": 150},
        }
        assert by_id[batch]["file_name"] == "f.csv" and by_id[batch]["file_sha256"] == "0" * 64
        assert recorder.predictions(Filters(user="ci-token")).total == 1
        assert recorder.predictions(Filters(source="batch")).total == 1
        assert recorder.predictions(Filters(version=served.label)).total == 3
        assert recorder.predictions(Filters(version="0.0.1")).total == 0
        assert recorder.predictions(Filters(since=datetime.now(UTC) + timedelta(minutes=1))).total == 0
        assert recorder.predictions(Filters(since=datetime.now(UTC) - timedelta(minutes=1))).total == 3
        page = recorder.predictions(Filters(), limit=2, offset=2)
        assert page.total == 3 and [i["id"] for i in page.items] == [form]
        assert recorder.distinct("user") == ["ann@example.com", "bob@example.com", "ci-token"]
    finally:
        recorder.close()


def test_feedback_checks_what_it_corrects_and_exports_training_rows(database, served):
    recorder = make_recorder(database)
    try:
        rows = [ROW, {**ROW, "petal_length": 6.0, "petal_width": 2.2}]
        pid = recorder.record(served, "api", "ci-token", predicted(served, rows), 0.01, keep_rows=100)
        with pytest.raises(UnknownPredictionError, match="no prediction 'nope' in the history"):
            recorder.add_feedback("nope", "me", label="setosa")
        with pytest.raises(InputError) as caught:
            recorder.add_feedback(pid, "me", label="rose")
        assert caught.value.message == "label 'rose' is not one of this version's labels: setosa, versicolor, virginica"
        with pytest.raises(InputError, match="row 2 is not in prediction"):
            recorder.add_feedback(pid, "me", label="setosa", row=2)
        with pytest.raises(InputError, match="send the right answer as label"):
            recorder.add_feedback(pid, "me", value=1.0)
        with pytest.raises(UnknownPredictionError):  # HISTORY_SCOPE=own: someone else's prediction
            recorder.add_feedback(pid, "me", label="setosa", scope_user="me")
        stored = recorder.add_feedback(pid, "me", label="virginica", comment="  long petals ", row=1)
        assert stored["comment"] == "long petals" and stored["row"] == 1
        listing = recorder.feedback(Filters())
        assert listing.total == 1
        item = listing.items[0]
        assert item["version"] == served.label and item["inputs"]["petal_length"] == 6.0
        assert item["predicted"]["prediction"] in ("versicolor", "virginica")
        assert recorder.feedback(Filters(user="someone else")).total == 0
        agreement = recorder.agreement(Filters())
        assert agreement.to_dict(orient="records") == [
            {"version": served.label, "predictions": 1, "rows": 2, "flagged": 1, "flagged_share": 0.5}
        ]
        training = recorder.training_rows(Filters())
        assert list(training.columns) == [*served.schema.names, "label"]
        assert training.iloc[0].to_dict() == {**rows[1], "label": "virginica"}
    finally:
        recorder.close()


def test_the_database_stops_mid_run_and_nothing_within_the_queue_bound_is_lost(served, caplog, tmp_path):
    postgres_or_skip()
    server = start_postgres()  # its own server: this test stops it
    watch(server.password)
    recorder = make_recorder(server.url, bound=30)
    caplog.set_level(logging.INFO, logger="dashboard")
    try:
        table = predicted(served, [ROW])
        before = [recorder.record(served, "form", "ann", table, 0.001, keep_rows=1) for _ in range(5)]
        assert recorder.flush(20)
        server.stop()
        started = time.perf_counter()
        during = [recorder.record(served, "form", "ann", table, 0.001, keep_rows=1) for _ in range(40)]
        assert time.perf_counter() - started < 0.5  # recording never waits for the database
        deadline = time.monotonic() + 20
        while recorder.status().paused is None and time.monotonic() < deadline:
            time.sleep(0.1)
        status = recorder.status()
        assert status.paused and "Connection refused" in status.paused
        assert status.waiting == 30 and status.dropped == 10
        server.start()
        assert recorder.flush(60)
        kept = {i["id"] for i in recorder.predictions(Filters(), limit=500).items}
        assert set(before) <= kept and set(during[:30]) <= kept and not set(during[30:]) & kept
        assert recorder.status().paused is None and recorder.status().written == 35
    finally:
        recorder.close()
        SCANNED.append(("PostgreSQL outage log", (server.folder / "server.log").read_text(errors="replace")))
        server.remove()
    lines = [r.getMessage() for r in caplog.records]
    assert any(
        "history: the queue is full (PostgreSQL" in line and "0 record(s) kept on disk in no spool, 1 dropped" in line
        for line in lines
    )
    assert len([line for line in lines if "the queue is full" in line]) == 1  # one line per cause, not per record
    assert any("writing the history failed; the records wait and are retried" in line for line in lines)
    assert any("reachable again" in line for line in lines)
    assert all(server.password not in line for line in lines)


WRITER = """
import sys
import pandas as pd
from dashboard import history, service
from dashboard.history import database as historydb
settings = service.settings()
served = service.load_version(settings, service.catalog(settings).default)
table = service.predict_frame(served, pd.DataFrame([[5.1, 3.5, 1.4, 0.2]], columns=served.schema.names)).table
recorder = history.Recorder(historydb.database_url(sys.argv[1], None))
print("ready", flush=True)
sys.stdin.readline()
for i in range(int(sys.argv[2])):
    recorder.record(served, "api", sys.argv[3], table, 0.001, keep_rows=1)
assert recorder.close(60)
print("done", flush=True)
"""


def test_two_writers_at_once_lose_nothing(database, tmp_path):
    count = 400
    environ = {"HOME": str(tmp_path), "MODEL_RUNTIME": "litert", "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, database, str(count), name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ,
            cwd=tmp_path,
        )
        for name in ("writer-a", "writer-b")
    ]
    for writer in writers:  # both loaded (and past the migration) before either writes
        assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
    for writer in writers:
        writer.stdin.write("go\n")
        writer.stdin.flush()
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        SCANNED.append(("history writer", err))
        assert writer.returncode == 0 and out.strip() == "done", err
    recorder = make_recorder(database)
    try:
        assert recorder.predictions(Filters(user="writer-a")).total == count
        assert recorder.predictions(Filters(user="writer-b")).total == count
    finally:
        recorder.close()


def test_the_command_line_records_its_run(env, tmp_path):
    out = tmp_path / "out.csv"
    assert cli.main(["predict", "--input", str(SAMPLE), "--output", str(out)]) == 0
    settings = service.settings()
    recorder = history.recorder(settings)
    listing = recorder.predictions(Filters(source="cli"), details=True)
    assert listing.total == 1
    item = listing.items[0]
    assert item["file_name"] == "sample.csv" and item["rows"] == 30 and item["errors"] == 0
    assert item["file_sha256"] == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    assert item["user"] == history.local_user() and item["inputs"] is None
    assert item["summary"]["counts"] == {"setosa": 10, "versicolor": 10, "virginica": 10}


def test_the_command_line_warns_when_the_database_is_down_and_still_predicts(env, tmp_path, capsys, monkeypatch):
    postgres_or_skip()
    monkeypatch.setattr(predicting, "HISTORY_WAIT", 2.0)
    env.setenv("DATABASE_URL", "postgres://u:hunter2-secret@127.0.0.1:1/nothing")
    out = tmp_path / "out.csv"
    assert cli.main(["predict", "--input", str(SAMPLE), "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: this run was not recorded in the prediction history: PostgreSQL 127.0.0.1:1/nothing:" in err
    assert "hunter2-secret" not in err
    assert len(pd.read_csv(out)) == 30


def test_a_regression_is_corrected_with_a_value(models, tmp_path):
    settings = service.settings({"HOME": str(tmp_path), "MODEL_URL": str(models["folder"] / "regression.keras")})
    served = service.load_version(settings, service.catalog(settings).default)
    recorder = make_recorder(f"sqlite:///{tmp_path / 'h.sqlite3'}")
    try:
        table = predicted(served, [{"x0": 1.0, "x1": 2.0}, {"x0": "oops", "x1": 1.0}])
        pid = recorder.record(served, "form", "ann", table, 0.001, keep_rows=10)
        with pytest.raises(InputError, match="this version predicts a value: send the right one as value"):
            recorder.add_feedback(pid, "ann", label="high")
        with pytest.raises(InputError, match="value nan is not a finite number"):
            recorder.add_feedback(pid, "ann", value=float("nan"))
        recorder.add_feedback(pid, "ann", value=12.5, comment="measured")
        item = recorder.prediction(pid)
        assert item["output_type"] == "regression" and item["labels"] is None and item["errors"] == 1
        assert item["summary"]["predicted"] == 1 and item["summary"]["min"] == item["summary"]["max"]
        training = recorder.training_rows(Filters())
        assert training.to_dict(orient="records") == [{"x0": 1.0, "x1": 2.0, "label": 12.5}]
    finally:
        recorder.close()


def test_records_past_the_bounds_and_at_a_stop_wait_on_disk_and_are_written_later(served, tmp_path, caplog):
    """Issue 23: the database down, the queue over its bound in records and in bytes: the rest goes to the spool;
    stopping the recorder spools what still waits; a new recorder (the restarted process) writes it all."""
    postgres_or_skip()
    server = start_postgres()
    watch(server.password)
    url = historydb.database_url(server.url, None)
    spool = Spool(tmp_path / "spool", 10 << 20)
    caplog.set_level(logging.INFO, logger="dashboard")
    try:
        first = history.Recorder(url, bound=20, bound_bytes=1 << 20, spool=spool)
        table = predicted(served, [ROW])
        assert first.flush(20)
        server.stop()
        ids = [first.record(served, "api", "ann", table, 0.001, keep_rows=1) for _ in range(50)]
        big = predicted(served, [ROW] * 20_000)  # 20,000 rows x 9 columns: over the 1 MiB queue bound
        ids.append(first.record(served, "batch", "ann", big, 0.1, keep_rows=0))
        assert first.status().waiting <= 20
        assert not first.close(timeout=1)  # the database is down: nothing written, all of it spooled
        assert first.dropped == 0 and first.spooled == 51
        assert sum(len(spool.read(p)) for p in spool.files()) == 51
        server.start()
        second = history.Recorder(url, spool=spool)
        second.start()
        deadline = time.monotonic() + 60
        while spool.files() and time.monotonic() < deadline:
            time.sleep(0.2)
        kept = {i["id"] for i in second.predictions(Filters(), limit=500).items}
        assert set(ids) <= kept and not spool.files()
        second.close()
    finally:
        SCANNED.append(("PostgreSQL spool log", (server.folder / "server.log").read_text(errors="replace")))
        server.remove()
    lines = [r.getMessage() for r in caplog.records]
    assert any("the queue is full" in line and "kept on disk" in line for line in lines)
    assert any("stopping with records unwritten" in line for line in lines)
    assert any("spooled record(s) written" in line for line in lines)


def test_one_refused_record_never_takes_the_others_along(served, postgres, tmp_path):
    """Issue 23: PostgreSQL refuses a NUL in text; the batch falls back to one by one (it crashed on the second try
    before) and writes every other record."""
    url = historydb.database_url(postgres.url, None)
    recorder = history.Recorder(url)
    try:
        table = predicted(served, [ROW])
        good = [recorder.record(served, "api", "ann", table, 0.001, keep_rows=1) for _ in range(5)]
        bad = recorder.record(served, "batch", "ann", table, 0.001, keep_rows=1, file_name="bad\x00name.csv")
        good += [recorder.record(served, "api", "ann", table, 0.001, keep_rows=1) for _ in range(5)]
        assert recorder.flush(30)
        kept = {i["id"] for i in recorder.predictions(Filters(), limit=500).items}
        assert set(good) <= kept and bad not in kept
        assert recorder.dropped == 1
    finally:
        recorder.close()


def test_stored_rows_and_reports_are_bounded(served, tmp_path):
    recorder = make_recorder(f"sqlite:///{tmp_path / 'h.sqlite3'}")
    try:
        wide = predicted(served, [{**ROW, "sepal_length": "x" * 5_000}] * 90)  # 90 rows of 5 KB error cells
        big = recorder.record(served, "api", "ann", wide, 0.01, keep_rows=100)
        small = recorder.record(served, "form", "ann", predicted(served, [ROW]), 0.01, keep_rows=1)
        stored = recorder.prediction(big)
        assert stored["inputs"] is None and "over the 262,144 kept per prediction" in stored["summary"]["rows_not_kept"]
        for _ in range(history.MAX_REPORTS):
            recorder.add_feedback(small, "ann", label="versicolor")
        with pytest.raises(InputError, match="already has 100 reports"):
            recorder.add_feedback(small, "ann", label="virginica")
    finally:
        recorder.close()


def test_retention_deletes_old_predictions_and_their_reports(served, tmp_path):
    url = historydb.database_url(f"sqlite:///{tmp_path / 'h.sqlite3'}", None)
    recorder = history.Recorder(url, retention_days=30)
    try:
        table = predicted(served, [ROW])
        old = recorder.record(served, "form", "ann", table, 0.01, keep_rows=1)
        recent = recorder.record(served, "form", "ann", table, 0.01, keep_rows=1)
        assert recorder.flush(20)
        recorder.add_feedback(old, "ann", label="versicolor")
        with recorder.engine.begin() as connection:
            connection.execute(
                predictions.update()
                .where(predictions.c.id == old)
                .values(created_at=datetime.now(UTC) - timedelta(days=40))
            )
        recorder._pruned_at = 0.0
        recorder._prune()
        kept = {i["id"] for i in recorder.predictions(Filters(), limit=50).items}
        assert kept == {recent}
        assert recorder.feedback(Filters()).total == 0
    finally:
        recorder.close()


def test_a_spool_on_a_full_disk_keeps_nothing_and_never_raises(tmp_path):
    """A spool that cannot be written (here: its folder is a file) says it kept nothing; the recorder counts the
    loss (at exit too, where an exception would only be printed)."""
    blocker = tmp_path / "spool"
    blocker.write_text("not a folder")
    spool = Spool(blocker / "inner", 1 << 20)
    assert spool.add([{"id": "x", "created_at": datetime.now(UTC)}]) == 0
    assert spool.files() == []
