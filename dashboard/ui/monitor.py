"""The Monitor tab: is the served version answering, how fast, on what kind of inputs, and is it still right — read
from the history's hourly counts (service.monitor), as charts with the numbers behind each one downloadable."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import streamlit as st

from dashboard.common.csv_export import safe_csv
from dashboard.common.logs import report
from dashboard.config import Settings
from dashboard.errors import DashboardError
from dashboard.history import Recorder
from dashboard.history.monitoring import Monitor, default_range
from dashboard.service import monitor as watch
from dashboard.service.load import Served
from dashboard.ui.history import readable
from dashboard.ui.words import md

RANGES = {"Last 24 hours": 1, "Last 7 days": 7, "Last 30 days": 30, "Pick dates": 0}
TOO_FEW = "too few values"  # under drift.MIN_ROWS recorded values: no verdict


def monitor_tab(settings: Settings, recorder: Recorder | None, served: Served, default_model: bool) -> None:
    """The Monitor tab of the served version (see the module docstring)."""
    if not readable(settings, recorder, "the Monitor reads the prediction history, so there is nothing to show."):
        return
    scope = _scope(served, default_model)
    if scope is None:
        return
    try:
        found = watch.figures(recorder, served, scope)
    except DashboardError as exc:
        report(exc, "reading the monitor failed")
        st.warning(f"The history cannot be read right now: {md(exc.message)}")
        return
    if not found.totals["predictions"]:
        st.info(
            f"No predictions of version {md(served.label)} were recorded in this range. Predictions from the form, "
            "a CSV, the API, the command line and assistants are counted here as they are recorded."
        )
        return
    _headline(found)
    _volume(found)
    _latency(found)
    _outputs(found)
    _drift(found)
    _feedback(found)


def _scope(served: Served, default_model: bool):
    left, right = st.columns([2, 1])
    chosen = left.radio("Range", list(RANGES), index=1, horizontal=True, key="monitor-range")
    bucket = right.radio("Per", ["day", "hour"], index=0, horizontal=True, key="monitor-bucket")
    since = until = None
    if RANGES[chosen]:
        until = default_range()[1]
        since = until - timedelta(days=RANGES[chosen])
    else:
        today = datetime.now(UTC).date()
        picked = st.date_input("Dates (UTC)", (today - timedelta(days=6), today), max_value=today, key="monitor-dates")
        if not isinstance(picked, tuple) or len(picked) != 2:
            st.info("Pick the first and the last day of the range.")
            return None
        since, until = _midnight(picked[0]), _midnight(picked[1]) + timedelta(days=1)
    try:
        return watch.scope_of(served, since, until, bucket, default_model)
    except DashboardError as exc:
        st.warning(md(exc.message))
        return None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _headline(found: Monitor) -> None:
    totals = found.totals
    major = sorted({d["feature"] for d in found.drift if d["time"] == "all" and d["verdict"] == "major"})
    columns = st.columns(5)
    columns[0].metric("Predictions", f"{totals['predictions']:,}")
    columns[1].metric("Rows", f"{totals['rows']:,}")
    columns[2].metric("Rows refused", f"{totals['refused_share']:.1%}", help="Rows that could not be predicted.")
    agreement = totals["agreement"]
    change = totals["agreement_change"]
    columns[3].metric(
        "Agreement",
        "—" if agreement is None else f"{agreement:.1%}",
        delta=None if not change else f"{100 * change:+.1f} pts",
        help="Share of predicted rows nobody reported as a wrong answer; the change compares the later half of the "
        "range with the earlier half.",
    )
    columns[4].metric(
        "Features drifting",
        len(major),
        help="Features whose recorded inputs differ a lot (major) from the training data over the range.",
    )
    for note in found.notes:
        st.caption(md(note))


def _frame(records: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(records)
    if "time" in frame.columns and len(frame):
        frame["time"] = pd.to_datetime(frame["time"].where(frame["time"] != "all"), utc=True)
    return frame


def _download(records: list[dict], name: str, key: str) -> None:
    st.download_button(
        f"Download {name} (CSV)",
        safe_csv(pd.DataFrame(records)),
        file_name=f"monitor-{key}.csv",
        mime="text/csv",
        key=f"monitor-download-{key}",
    )


def _volume(found: Monitor) -> None:
    st.subheader("Predictions by door")
    frame = _frame(found.volume)
    st.bar_chart(frame, x="time", y="predictions", color="door")
    _download(found.volume, "predictions by door", "volume")


def _latency(found: Monitor) -> None:
    st.subheader("Latency (ms per call)")
    frame = _frame(found.latency)
    st.line_chart(frame, x="time", y=["p50_ms", "p90_ms", "p99_ms"])
    st.caption("Milliseconds from a call's arrival to its answer, as recorded; percentiles within 1 ms up to 10 ms.")
    _download(found.latency, "latency", "latency")


def _outputs(found: Monitor) -> None:
    if not found.outputs:
        st.subheader("Answers")
        st.caption("No answers in this range: every row sent was refused (see Rows refused).")
        return
    frame = _frame(found.outputs)
    if found.output_type == "regression":
        st.subheader("Predicted values")
        st.line_chart(frame, x="time", y=["p5", "p25", "p50", "p75", "p95"])
        st.caption("Quantiles of the predicted values (within ±5%).")
    else:
        st.subheader("Answers")
        st.bar_chart(frame, x="time", y="share", color="label")
        st.caption("Share of each class among the predicted rows.")
    _download(found.outputs, "answers", "outputs")


def _drift(found: Monitor) -> None:
    st.subheader("Inputs against the training data")
    if not found.drift:
        st.caption("No drift measured: " + ("; ".join(found.notes) or "no recorded inputs in this range."))
        return
    overall = [d for d in found.drift if d["time"] == "all"]
    table = pd.DataFrame(  # the Batch tab's columns (ui/insight.drift), for the whole range
        {
            "input": [d["feature"] for d in overall],
            "verdict": [d["verdict"] or TOO_FEW for d in overall],
            "PSI": [round(d["psi"], 3) for d in overall],
            "moderate from": [d["moderate_at"] for d in overall],
            "major from": [d["major_at"] for d in overall],
            "outside the training range": [f"{d['outside_share']:.1%}" for d in overall],
            "values": [d["rows"] for d in overall],
        }
    )
    st.dataframe(table, hide_index=True, key="monitor-drift-table")
    # per day: only days with enough values for a verdict (a few values give a large PSI by chance)
    daily = _frame([d for d in found.drift if d["time"] != "all" and d["verdict"] is not None])
    if len(daily):
        st.line_chart(daily, x="time", y="psi", color="feature")
    st.caption(
        "Population stability index of the recorded inputs per day against the published reference, with the "
        "Batch tab's thresholds for that many values (a sample from the training data reads stable)."
    )
    _download(found.drift, "drift", "drift")


def _feedback(found: Monitor) -> None:
    st.subheader("Wrong-answer reports")
    flagged = found.totals["flagged_rows"]
    if not flagged:
        st.caption("Nobody reported a wrong answer for predictions in this range.")
    else:
        frame = _frame(found.feedback)
        st.line_chart(frame, x="time", y="agreement")
        st.caption(f"{flagged:,} row(s) reported wrong; agreement is the share of rows nobody reported.")
        if found.corrected:
            st.dataframe(
                pd.DataFrame(found.corrected).rename(
                    columns={"answer": "answered", "corrected_to": "corrected to", "reports": "reports"}
                ),
                hide_index=True,
                key="monitor-corrected",
            )
    _download(found.feedback, "reports per period", "feedback")
