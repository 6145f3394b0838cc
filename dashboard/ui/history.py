"""History and Feedback: the recorded predictions (filters, pages, a row's inputs and outputs, CSV export), the
"Report a wrong answer" form under a single prediction, and the reports with agreement per version."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, time

import pandas as pd
import streamlit as st

from dashboard import history
from dashboard.common.csv_export import safe_csv
from dashboard.common.logs import report
from dashboard.config import Settings
from dashboard.errors import DashboardError
from dashboard.history import Filters, Recorder
from dashboard.service import Served
from dashboard.ui.words import md

EXPORT_ROWS = 100_000  # rows in one Download of the history
ANY = "(any)"


def sidebar_status(recorder: Recorder | None) -> None:
    """One sidebar line: where history goes, and whether recording is paused."""
    if recorder is None:
        st.sidebar.caption("History is off (HISTORY=off): predictions are not recorded.")
        return
    status = recorder.status()
    if status.paused:
        st.sidebar.warning(
            f"History is paused: the database cannot be reached ({md(status.paused)}). Predictions still work; "
            f"{status.waiting:,} record(s) wait and will be written when it is back."
        )
    if status.dropped:
        st.sidebar.caption(f"{status.dropped:,} prediction(s) could not be recorded (see the server log).")
    if status.local:
        st.sidebar.caption(
            "History is kept in a local SQLite file on this server: it is lost when the server's disk is wiped "
            "(a Heroku dyno's is, at every restart). Set DATABASE_URL to keep it elsewhere."
        )


def report_form(recorder: Recorder | None, served: Served, prediction_id: str | None, who: str) -> None:
    """'Report a wrong answer' under a single prediction: the right label or value and a comment."""
    if recorder is None or prediction_id is None:
        return
    output = served.schema.output
    with st.expander("Report a wrong answer"):
        with st.form("feedback-form", border=False):
            if output.type == "regression":
                value = st.number_input(f"The right {md(output.name)}", value=None, key="feedback-value")
                label = None
            else:
                label = st.selectbox("The right answer", list(output.labels), index=None, key="feedback-label")
                value = None
            comment = st.text_area("Comment (optional)", key="feedback-comment", max_chars=2000)
            sent = st.form_submit_button("Send report", key="feedback-submit")
        if not sent:
            return
        if label is None and value is None:
            st.warning("Pick the right answer first, then press Send report.")
            return
        try:
            recorder.add_feedback(prediction_id, who, label=label, value=value, comment=comment)
        except DashboardError as exc:
            report(exc, "feedback could not be stored")
            st.error(f"The report could not be stored: {md(exc.message)}")
            return
        right = label if label is not None else f"{value:g}"
        st.success(f"Thanks: reported as {md(right)}. It is listed in the Feedback tab.")


def _filters(settings: Settings, recorder: Recorder, who: str, prefix: str, model: Model) -> Filters:
    """The filter row (version, person, source, since) for the model on the page; HISTORY_SCOPE=own fixes the
    person to who."""
    columns = st.columns(4)
    version = columns[0].selectbox("Version", [ANY, *recorder.distinct("version")], key=f"{prefix}-version")
    if settings.history_scope == "own":
        columns[1].text_input("Person", value=who, disabled=True, key=f"{prefix}-user")
        user = who
    else:
        user = columns[1].selectbox("Person", [ANY, *recorder.distinct("user")], key=f"{prefix}-user")
    source = columns[2].selectbox("Source", [ANY, *history.SOURCES], key=f"{prefix}-source")
    since = columns[3].date_input("Since", value=None, key=f"{prefix}-since")
    return Filters(
        model=model[0],
        model_is_default=model[1],
        version=None if version == ANY else version,
        user=None if user == ANY else user,
        source=None if source == ANY else source,
        since=datetime.combine(since, time.min, tzinfo=UTC) if since else None,
    )


Model = tuple[str, bool]  # the model on the page, and whether it is the default one (rows from before names are)


def _paged(read, filters: Filters, key: str) -> tuple[history.Listing, int]:
    """The page of read(filters) chosen in a "Page (of N)" box (shown when there is more than one page)."""
    pages = max(1, math.ceil(read(filters, limit=1).total / history.PAGE_ROWS))
    offset = 0
    if pages > 1:
        page = st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, step=1, key=key)
        offset = (int(page) - 1) * history.PAGE_ROWS
    return read(filters, offset=offset), offset


def _answer(item: dict) -> str:
    summary = item.get("summary") or {}
    if "counts" in summary:
        return ", ".join(f"{label} {count:,}" for label, count in summary["counts"].items())
    if "mean" in summary:
        return f"{summary['mean']:.4g}" if item["rows"] == 1 else f"mean {summary['mean']:.4g}"
    return ""


def _listing_frame(items: list[dict]) -> pd.DataFrame:
    columns = ["time", "person", "source", "version", "rows", "errors", "answer", "file", "runtime", "id"]
    rows = [
        {
            "time": item["created_at"].replace("T", " ")[:19],
            "person": item["user"],
            "source": item["source"],
            "version": item["version"],
            "rows": item["rows"],
            "errors": item["errors"],
            "answer": _answer(item),
            "file": item["file_name"] or "",
            "runtime": item["runtime"],
            "id": item["id"],
        }
        for item in items
    ]
    return pd.DataFrame(rows, columns=columns)


def closed(settings: Settings) -> bool:
    """With API tokens but no sign-in the page is open to anyone while the history holds what token holders sent:
    nobody on the page can be told apart, so nobody reads it here (says so, and how to open it)."""
    access = settings.access
    if access.sign_in is not None or not access.tokens:
        return False
    st.info(
        "The history is not shown on this page: it is open to anyone (no sign-in), and the history holds what "
        "API token holders sent. Set the AUTH_* variables so people sign in, or read it with a token at "
        "/api/v1/history."
    )
    return True


def readable(settings: Settings, recorder: Recorder | None, off: str) -> bool:
    """Whether a tab may read the history here; says why not (off: the words for HISTORY=off) when it may not."""
    if recorder is None:
        st.info(f"History is off on this server (HISTORY=off): {off}")
        return False
    return not closed(settings)


def history_tab(settings: Settings, recorder: Recorder | None, who: str, model: Model) -> None:
    """The latest predictions, newest first, filtered and paged; one opens; Download exports the filtered list."""
    if not readable(settings, recorder, "predictions are not recorded."):
        return
    try:
        filters = _filters(settings, recorder, who, "history", model)
        listing, offset = _paged(recorder.predictions, filters, "history-page")
    except DashboardError as exc:
        report(exc, "reading the history failed")
        st.warning(f"The history cannot be read right now: {md(exc.message)}")
        return
    if not listing.total:
        st.info(
            "No predictions recorded yet for these filters. Predictions from the form, a CSV, the API and the "
            "command line appear here."
        )
        return
    st.caption(
        f"{listing.total:,} prediction(s), newest first; showing {offset + 1:,}–{offset + len(listing.items):,}."
    )
    st.dataframe(_listing_frame(listing.items), hide_index=True, key="history-table")
    chosen = st.selectbox(
        "Open a prediction",
        [item["id"] for item in listing.items],
        index=None,
        key="history-open",
        format_func=lambda pid: _label(listing.items, pid),
        placeholder="Pick one to see its inputs and outputs",
    )
    if chosen:
        _details(recorder, chosen)
    st.download_button(
        "Download history (CSV)",
        lambda: _export(recorder, filters),
        key="history-download",
        file_name="prediction-history.csv",
        mime="text/csv",
        help=f"Every prediction matching the filters (up to {EXPORT_ROWS:,}), without their rows.",
    )


def _label(items: list[dict], prediction_id: str) -> str:
    item = next(i for i in items if i["id"] == prediction_id)
    return f"{item['created_at'][:19].replace('T', ' ')} · {item['source']} · {item['version']} · {_answer(item)}"


def _details(recorder: Recorder, prediction_id: str) -> None:
    try:
        item = recorder.prediction(prediction_id)
    except DashboardError as exc:
        st.warning(f"This prediction cannot be read right now: {md(exc.message)}")
        return
    if item is None:
        st.info("This prediction is not in the history any more.")
        return
    facts = [
        f"**Version** {md(item['version'])} · sha256 `{(item['sha256'] or 'not pinned')[:12]}` · runtime "
        f"{item['runtime']}",
        f"**By** {md(item['user'])} from {item['source']} at {item['created_at'][:19].replace('T', ' ')} UTC · "
        f"{item['duration_ms']:.1f} ms",
    ]
    if item["file_name"]:
        facts.append(f"**File** {md(item['file_name'])} (sha256 `{(item['file_sha256'] or '')[:12]}`)")
    st.markdown("  \n".join(facts))
    if item["inputs"] is None:
        st.caption(f"{item['rows']:,} rows; only the summary is kept for files ({_answer(item)}).")
        return
    inputs, outputs = pd.DataFrame(item["inputs"]), pd.DataFrame(item["outputs"] or [])
    st.dataframe(shown_cells(pd.concat([inputs, outputs], axis=1)), hide_index=True, key="history-rows")


def shown_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """A stored call's rows as a table can show them: what an API caller sent may be an object, a list or a
    400-digit number, which the browser's table cannot hold; those are shown as their JSON text."""
    shown = frame.copy()
    for column in shown.columns:
        if shown[column].dtype == object:
            shown[column] = shown[column].map(_cell)
    return shown


def _cell(value: object) -> object:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)) and abs(value) < 1e15:
        return value
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 200 else text[:200] + "…"


def _export(recorder: Recorder, filters: Filters) -> bytes:
    listing = recorder.predictions(filters, limit=EXPORT_ROWS)
    frame = _listing_frame(listing.items)
    frame.insert(len(frame.columns) - 1, "sha256", [i["sha256"] or "" for i in listing.items])
    frame.insert(len(frame.columns) - 1, "file_sha256", [i["file_sha256"] or "" for i in listing.items])
    return safe_csv(frame)


def feedback_tab(settings: Settings, recorder: Recorder | None, who: str, model: Model) -> None:
    """Agreement per version, the reports (newest first, paged), and the reports as training data."""
    if not readable(settings, recorder, "there is nothing to report on."):
        return
    try:
        filters = _filters(settings, recorder, who, "feedback", model)
        agreement = recorder.agreement(filters)
        listing, _ = _paged(recorder.feedback, filters, "feedback-page")
    except DashboardError as exc:
        report(exc, "reading the feedback failed")
        st.warning(f"The feedback cannot be read right now: {md(exc.message)}")
        return
    st.subheader("How often each version was flagged")
    st.dataframe(
        agreement.rename(columns={"flagged": "rows flagged", "flagged_share": "share flagged"}),
        hide_index=True,
        key="feedback-agreement",
        column_config={"share flagged": st.column_config.NumberColumn(format="percent")},
    )
    if not listing.total:
        st.info("No wrong answers reported yet. Under a single prediction, open **Report a wrong answer**.")
        return
    st.subheader(f"Reports ({listing.total:,})")
    rows = [
        {
            "time": item["created_at"][:19].replace("T", " "),
            "person": item["user"],
            "version": item["version"],
            "predicted": (item["predicted"] or {}).get("prediction"),
            "right answer": item["label"] if item["label"] is not None else item["value"],
            "comment": item["comment"] or "",
            "prediction id": item["prediction_id"],
        }
        for item in listing.items
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="feedback-table")
    st.download_button(
        "Download as training data (CSV)",
        lambda: safe_csv(recorder.training_rows(filters)),
        key="feedback-download",
        type="primary",
        file_name="feedback-training.csv",
        mime="text/csv",
        help="One row per report: the inputs of the corrected row, then label (the right answer).",
    )
    if settings.history_images == "thumbnails":
        st.download_button(
            "Download as training images (zip)",
            lambda: recorder.training_zip(filters),
            key="feedback-zip",
            file_name="feedback-training.zip",
            mime="application/zip",
            help="The corrected images in one folder per right answer, and labels.csv: ready for "
            "keras.utils.image_dataset_from_directory.",
        )
