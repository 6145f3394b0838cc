"""Single prediction: a form generated from the schema, one click, the result and its chart."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from dashboard import understand
from dashboard.history import Recorder
from dashboard.logs import log
from dashboard.predict import BatchResult
from dashboard.schema import Feature
from dashboard.service import Served
from dashboard.ui import history, insight, session, words
from dashboard.ui.words import md


def show(served: Served, who: str = "anonymous", recorder: Recorder | None = None) -> BatchResult | None:
    """Draw the form; returns the last result for this version (None before the first click)."""
    schema = served.schema
    with st.form("single-form", border=True):
        values = {}
        features = list(schema.features)
        for start in range(0, len(features), 2):  # row by row, so a phone's single column keeps the schema order
            for column, feature in zip(st.columns(2), features[start : start + 2], strict=False):
                with column:
                    values[feature.name] = _field(feature)
        submitted = st.form_submit_button("Predict", key="single-submit", type="primary")
    if submitted:
        started = time.perf_counter()
        explained = understand.explain_row(served, values)
        if recorder is not None:
            seconds = time.perf_counter() - started
            prediction_id = recorder.record(served, "form", who, explained.result.table, seconds, keep_rows=1)
            session.keep_prediction_id(served, prediction_id)
        session.keep_single_result(served, explained.result)
        session.keep_explained(served, (explained, dict(values)))
        log.info("form prediction by %s with version %s", who, served.label)
    result = session.single_result(served)
    if result is None:
        return None
    _result(served, result)
    if not result.table["error"].iloc[0]:
        history.report_form(recorder, served, session.prediction_id(served), who)
    stored = session.explained(served)
    if stored is not None and not result.table["error"].iloc[0]:
        explained, asked = stored
        insight.why(served, explained, asked)
        insight.what_if(served, asked)
    return result


def _field(feature: Feature):
    key = f"single-{feature.name}"
    if feature.type == "category":
        choices = list(feature.choices)
        return st.selectbox(md(feature.name), choices, index=choices.index(feature.initial), key=key)
    if feature.type == "text":
        return st.text_input(md(feature.name), value=str(feature.initial or ""), key=key)
    label = md(f"{feature.name} ({feature.unit})" if feature.unit else feature.name)
    places = words.decimals(feature.min, feature.max, feature.default)
    usual = ""
    if feature.min is not None or feature.max is not None:
        low = f"{round(feature.min, places):g}" if feature.min is not None else "…"
        high = f"{round(feature.max, places):g}" if feature.max is not None else "…"
        usual = f"Usual range {low} to {high}."
    span = (feature.max - feature.min) if feature.min is not None and feature.max is not None else 0.0
    step = 10.0**-places if places else (1.0 if span >= 10 else 0.1)  # one unit of the last digit people type
    places = max(places, words.decimals(step))
    return st.number_input(
        label,
        value=round(float(feature.initial), places),
        step=step,
        format=f"%.{places}f",  # the precision a person would type, derived from the schema's own values
        key=key,
        help=usual or None,
    )


def _result(served: Served, result: BatchResult) -> None:
    row = result.table.iloc[0]
    if row["error"]:
        st.error(f"This row cannot be predicted: {md(row['error'])}. Correct the value and press Predict again.")
        return
    for warning in result.warnings:
        st.warning(md(words.range_warning(warning, with_row=False)) + " — the prediction may be unreliable.")
    output = served.schema.output
    if output.type == "regression":
        unit = f" {output.unit}" if output.unit else ""
        st.metric(md(output.name), f"{row['prediction']:.4g}{unit}")
        return
    if output.type == "binary":
        probabilities = pd.Series({output.labels[1]: row["probability"], output.labels[0]: 1 - row["probability"]})
    else:
        probabilities = pd.Series({label: row[f"probability_{label}"] for label in output.labels})
    st.metric("Prediction", str(row["prediction"]), help=f"Version {served.label}")
    st.caption(f"{probabilities[str(row['prediction'])]:.1%} probability · version {served.label}")
    chart = probabilities.rename("probability").rename_axis("class").reset_index()
    st.bar_chart(chart, x="class", y="probability", horizontal=True, height=60 + 30 * len(chart))
