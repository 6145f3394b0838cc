"""Batch: CSV template, upload, validation report, progress, results table, chart, safe download."""

from __future__ import annotations

import hashlib
import time

import streamlit as st

from dashboard import service
from dashboard.common.logs import log, report
from dashboard.common.memory import release_memory
from dashboard.config import Settings
from dashboard.errors import DashboardError
from dashboard.history import Recorder
from dashboard.prediction.results import results_csv
from dashboard.prediction.scoring import BatchResult
from dashboard.service import Served, understand
from dashboard.ui import charts, image_batch, insight, session, words
from dashboard.ui.session import Upload
from dashboard.ui.words import md

SHOWN_ROWS = 5_000  # rows sent to the browser's table; the download always has every row


def show(
    settings: Settings, served: Served, who: str = "anonymous", recorder: Recorder | None = None
) -> BatchResult | None:
    """Draw the batch tab; returns the result for the uploaded file (None without a usable file)."""
    if served.schema.images:
        return image_batch.show(settings, served, who, recorder, _report, _chart)
    st.download_button(
        "Download CSV template",
        served.schema.template_csv(),
        key="batch-template",
        file_name=f"template-{served.label}.csv",
        mime="text/csv",
        help="A header with the expected columns and one example row.",
    )
    upload = st.file_uploader(
        "Upload a CSV file (comma, semicolon or tab separated)",
        type=["csv", "tsv", "txt"],
        key="batch-upload",
        max_upload_size=max(1, settings.csv_max_bytes // 1_000_000),
    )
    if upload is None:
        if session.upload() is not None:  # the file was removed: the Compare tab (its own fragment) must know
            session.keep_upload(None)
            st.rerun(scope="app")
        st.info(f"Expected columns: {md(', '.join(served.schema.names))}. Extra columns are kept in the results.")
        return None
    result = session.batch_result(upload.file_id, served)
    if result is None:
        result = _predicted(settings, served, upload, who, recorder)
        if result is None:
            return None
    _report(result)
    if st.checkbox(
        "Explain every row",
        key="batch-explain",
        help="Adds attribution_<input> columns: each input's contribution to the row's prediction, "
        "from the reference input (see Why this prediction under the form).",
    ):
        result = _explained(served, upload.file_id, result)
    probability = {
        c: st.column_config.NumberColumn(format="%.4f")
        for c in result.table.columns
        if str(c).startswith("probability")
    }
    shown = result.table if result.rows <= SHOWN_ROWS else result.table.head(SHOWN_ROWS)
    st.dataframe(
        shown, hide_index=True, key="batch-table", column_config=probability, column_order=answers_first(shown.columns)
    )
    if result.rows > SHOWN_ROWS:
        st.caption(f"Showing the first {SHOWN_ROWS:,} of {result.rows:,} rows; Download results has them all.")
    _chart(served, result)
    current = session.upload()
    if current is not None:
        insight.drift(served, current.table, result)
    table = result.table
    source = current.table if current is not None else None
    st.download_button(
        "Download results",
        lambda: results_csv(table, source),
        key="batch-download",
        type="primary",
        file_name=f"predictions-{served.label}.csv",
        mime="text/csv",
        help="Every row, in the uploaded file's separator and decimal mark, with formula-like text neutralised for "
        "spreadsheets. Built when you click.",
    )
    return result


def _predicted(settings: Settings, served: Served, upload, who: str, recorder: Recorder | None) -> BatchResult | None:
    """The upload read, validated and predicted with a progress bar, kept for this session and recorded (None when
    the file is refused: the page says why)."""
    bar = st.progress(0.0, text="Checking the file…")
    started = time.perf_counter()
    try:
        current = _read(settings, upload)
        result = service.predict_table(
            served,
            current.table,
            lambda done, total: bar.progress(done / total, text=f"Predicted {done:,} of {total:,} rows"),
        )
    except DashboardError as exc:
        report(exc, f"batch file {upload.name!r} refused")
        st.error(f"{md(upload.name)}: {md(words.with_template_hint(exc))}")
        return None
    finally:
        bar.empty()
    new_file = current is not session.upload_seen()
    session.keep_batch_result(upload.file_id, served, result)
    if recorder is not None:
        recorder.record(
            served,
            "batch",
            who,
            result.table,
            time.perf_counter() - started,
            keep_rows=settings.history_file_rows,
            file_name=upload.name,
            file_sha256=hashlib.sha256(upload.getvalue()).hexdigest(),
        )
    log.info("batch prediction by %s: %d of %d rows with version %s", who, result.predicted, result.rows, served.label)
    if result.rows >= 10_000:
        release_memory()
    if new_file:  # a new file: rerun the whole page once so the Compare tab (a fragment) offers it
        session.mark_upload_seen(current)
        st.rerun(scope="app")
    return result


def answers_first(columns) -> list[str]:
    """On screen the answer leads (a phone shows only the first columns): prediction, probabilities and error, then
    the inputs; the download keeps SPEC's order (inputs first)."""
    columns = [str(c) for c in columns]
    answers = [c for c in columns if c == "prediction" or c.startswith("probability") or c == "error"]
    return answers + [c for c in columns if c not in answers]


def _explained(served: Served, file_id: str, plain: BatchResult) -> BatchResult:
    """The upload's result with attribution columns, computed once per upload and version."""
    stored = session.explained_batch(file_id, served)
    if stored is not None:
        return stored
    current = session.upload()
    with st.spinner(f"Explaining {plain.predicted:,} rows…"):
        result = understand.explain_table(served, current.table).result
    session.keep_explained_batch(file_id, served, result)
    return result


def _read(settings: Settings, upload) -> Upload:
    """The uploaded file read once per upload (kept for the Compare tab); a refused file is forgotten."""
    current = session.upload()
    if current is not None and current.file_id == upload.file_id:
        return current
    session.keep_upload(None)
    current = Upload(upload.file_id, upload.name, service.read_csv(settings, upload.getvalue()))
    session.keep_upload(current)
    return current


def _report(result: BatchResult) -> None:
    ready, failed = st.columns(2)
    ready.metric("Rows ready", f"{result.predicted:,}", help=f"of {result.rows:,} rows in the file")
    failed.metric("Rows with errors", f"{result.failed:,}")
    if result.failed:
        lines = "\n".join(f"- {md(line)}" for line in result.first_errors)
        st.warning(
            f"{words.plural(result.failed, 'row')} could not be predicted; their reason is in the error column. "
            f"First ones:\n{lines}"
        )
    if result.warning_count:
        count = result.warning_count
        verb = "is" if count == 1 else "are"
        with st.expander(f"{words.plural(count, 'value')} {verb} outside the usual range (predicted anyway)"):
            st.markdown("\n".join(f"- {md(words.range_warning(w))}" for w in result.warnings))
    if result.extra_columns:
        st.caption(f"Not used by the model, kept in the results: {md(', '.join(result.extra_columns))}")


def _chart(served: Served, result: BatchResult) -> None:
    predicted = result.table.loc[result.good, "prediction"]
    if predicted.empty:
        return
    if served.schema.output.type == "regression":
        st.bar_chart(charts.histogram(predicted.to_numpy(float), "prediction"), x="prediction", y="rows", height=260)
    else:
        labels = list(served.schema.output.labels)
        counts = predicted.astype(str).value_counts().reindex(labels, fill_value=0)
        st.bar_chart(
            counts.rename("rows").rename_axis("prediction").reset_index(), x="prediction", y="rows", height=260
        )
