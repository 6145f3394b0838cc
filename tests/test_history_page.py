"""The History and Feedback tabs and "Report a wrong answer" in AppTest (issue 17), on the demo store with the
default SQLite history in the cache folder: no configuration."""

from __future__ import annotations

import hashlib
import io

import pandas as pd

from tests.support.apptest import start
from tests.support.helpers import DEMO, shown

SAMPLE = (DEMO / "sample.csv").read_bytes()


def frame(at, column: str, last: bool = False) -> pd.DataFrame:
    """The page's (first or last) table that has this column (AppTest finds tables by position, not key)."""
    found = [d.value for d in at.main.dataframe if column in d.value.columns]
    return found[-1 if last else 0]


def open_tab(at, name: str):
    at.session_state["tab"] = name
    return at.run()


def test_predict_report_a_wrong_answer_and_export_it_as_training_data(env, downloads):
    at = start()
    assert any(
        "local SQLite file on this server: it is lost when the server's disk is wiped" in c.value
        for c in at.sidebar.caption
    )
    at.number_input(key="single-petal_length").set_value(4.3)
    at.button(key="single-submit").click().run()
    assert not at.exception
    predicted = at.metric[0].value
    right = next(label for label in ("setosa", "versicolor", "virginica") if label != predicted)
    at.selectbox(key="feedback-label").select(right)
    at.text_area(key="feedback-comment").input("=petals measured twice")
    at.button(key="feedback-submit").click().run()
    assert not at.exception
    assert [s.value for s in at.success] == [f"Thanks: reported as {right}. It is listed in the Feedback tab."]

    at = open_tab(at, "Feedback")
    assert not at.exception
    agreement = frame(at, "share flagged")
    assert agreement.to_dict(orient="records") == [
        {"version": "1.1.0", "predictions": 1, "rows": 1, "rows flagged": 1, "share flagged": 1.0}
    ]
    reports = frame(at, "right answer")
    assert reports[["person", "version", "predicted", "right answer"]].iloc[0].tolist() == [
        "anonymous",
        "1.1.0",
        predicted,
        right,
    ]
    training = pd.read_csv(io.BytesIO(downloads(at.get("download_button")[-1])))
    assert list(training.columns) == ["sepal_length", "sepal_width", "petal_length", "petal_width", "label"]
    assert training.iloc[0]["petal_length"] == 4.3 and training.iloc[0]["label"] == right


def test_history_lists_filters_opens_and_exports(env, downloads):
    at = start()
    at.button(key="single-submit").click().run()
    at.file_uploader(key="batch-upload").upload("flowers.csv", SAMPLE + b"abc,1,1,1,x\n", "text/csv").run()
    assert not at.exception
    at = open_tab(at, "History")
    assert not at.exception
    table = frame(at, "answer")
    assert table[["person", "source", "version", "rows", "errors", "file"]].values.tolist() == [
        ["anonymous", "batch", "1.1.0", 31, 1, "flowers.csv"],
        ["anonymous", "form", "1.1.0", 1, 0, ""],
    ]
    assert table["answer"].iloc[0] == "setosa 10, versicolor 10, virginica 10"
    at.selectbox(key="history-source").select("form").run()
    assert frame(at, "answer")["source"].tolist() == ["form"]
    at.selectbox(key="history-open").select_index(0).run()
    rows = frame(at, "sepal_length", last=True)
    assert list(rows.columns)[:4] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert "prediction" in rows.columns and len(rows) == 1
    at.selectbox(key="history-source").select("batch").run()
    at.selectbox(key="history-open").select_index(0).run()
    assert any("only the summary is kept for files" in c.value for c in at.caption)
    at.selectbox(key="history-source").select("(any)").run()
    exported = pd.read_csv(io.BytesIO(downloads(at.get("download_button")[-1])), keep_default_na=False)
    assert exported["source"].tolist() == ["batch", "form"] and (exported["sha256"].str.len() == 64).all()
    assert exported["file_sha256"].iloc[0] == hashlib.sha256(SAMPLE + b"abc,1,1,1,x\n").hexdigest()


def test_history_off_says_so_everywhere(env):
    env.setenv("HISTORY", "off")
    at = start()
    assert any("History is off (HISTORY=off)" in c.value for c in at.sidebar.caption)
    at.button(key="single-submit").click().run()
    assert not at.expander  # no "Report a wrong answer" without a history
    at = open_tab(at, "History")
    assert [shown(i.value) for i in at.info][-1].startswith("History is off on this server (HISTORY=off)")


def test_an_unreachable_database_pauses_history_and_predictions_go_on(env):
    env.setenv("DATABASE_URL", "postgres://u:hunter2-pw@127.0.0.1:1/none")
    at = start()
    at.button(key="single-submit").click().run()
    assert not at.exception and at.metric[0].value in ("setosa", "versicolor", "virginica")
    at = open_tab(at, "History")
    assert any(w.value.startswith("The history cannot be read right now") for w in at.warning)
    at.run()
    paused = [w.value for w in at.sidebar.warning if "History is paused" in w.value]
    assert paused and "Connection refused" in paused[0] and "hunter2" not in paused[0]


def test_a_stored_call_with_odd_values_opens_without_a_traceback(env):
    """Issue 23: an API call holding an object, a list and a 400-digit number is shown as text, not a crash."""
    from dashboard import history, service

    settings = service.settings()
    served = service.load_version(settings, service.catalog(settings).default)
    rows = [{"sepal_length": {"a": 1}, "sepal_width": [1, 2], "petal_length": 10**400, "petal_width": 0.2}]
    answers = [{"prediction": None, "error": "sepal_length: not a number"}]
    recorder = history.recorder(settings)
    prediction_id = recorder.record_answer(served, "token x", rows, answers, 0.01, keep_rows=100)
    assert recorder.flush(20)
    at = open_tab(start(), "History")
    at.selectbox(key="history-open").select(prediction_id).run()
    assert not at.exception
    table = frame(at, "sepal_length", last=True)
    assert table["sepal_length"].iloc[0] == '{"a": 1}' and table["petal_length"].iloc[0].startswith("1000")
