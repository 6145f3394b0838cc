"""Single prediction: a form generated from the schema, one click, the result and its chart."""

from __future__ import annotations

import time

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import service
from dashboard.common.logs import log
from dashboard.history import Recorder
from dashboard.prediction.images import ImageFile, kept_table
from dashboard.prediction.schema import Feature
from dashboard.prediction.scoring import BatchResult
from dashboard.service import Served, understand
from dashboard.ui import charts, history, images, insight, session, words
from dashboard.ui.words import md


def show(served: Served, who: str = "anonymous", recorder: Recorder | None = None) -> BatchResult | None:
    """Draw the form; returns the last result for this version (None before the first click)."""
    schema = served.schema
    camera = bool(schema.images) and st.toggle("Take a photo with the camera", key="single-camera")
    with st.form("single-form", border=True):
        values = {}
        features = list(schema.features)
        for start in range(0, len(features), 2):  # row by row, so a phone's single column keeps the schema order
            for column, feature in zip(st.columns(2), features[start : start + 2], strict=False):
                with column:
                    values[feature.name] = (
                        images.field(feature, camera and feature is schema.images[0])
                        if feature.type == "image"
                        else _field(feature)
                    )
        submitted = st.form_submit_button("Predict", key="single-submit", type="primary")
    if submitted and schema.images:
        _predict_image(served, values, who, recorder)
    elif submitted:
        values, defaulted = _with_defaults(schema.features, values)
        session.keep_defaulted(served, defaulted)
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
    for name, value in session.defaulted(served):
        st.info(f"{md(name)} was empty, so its default {md(insight.shown_value(value))} was used.")
    if not result.table["error"].iloc[0]:
        history.report_form(recorder, served, session.prediction_id(served), who)
    stored = session.explained(served)
    if stored is not None and schema.images:
        images.seen(served, *stored)
    elif stored is not None and not result.table["error"].iloc[0]:
        explained, asked = stored
        insight.why(served, explained, asked)
        insight.what_if(served, asked)
    return result


def _predict_image(served: Served, values: dict, who: str, recorder: Recorder | None) -> None:
    """An image row: predicted, its first image explained by occlusion, kept for this session and recorded."""
    missing = [f.name for f in served.schema.images if values.get(f.name) is None]
    if missing:
        st.warning(f"Give an image for {md(', '.join(missing))} (upload a file or take a photo), then press Predict.")
        return
    values, defaulted = _with_defaults(served.schema.features, values)
    session.keep_defaulted(served, defaulted)
    started = time.perf_counter()
    with st.spinner("Predicting and finding what mattered…"):
        shown = understand.see_image(served, values)
    if recorder is not None:
        seconds = time.perf_counter() - started
        thumbnails = service.settings().history_images == "thumbnails"
        kept = kept_table(shown.result.table, served.schema.images, shown.result.frame, thumbnails)
        prediction_id = recorder.record(served, "form", who, kept, seconds, keep_rows=1)
        session.keep_prediction_id(served, prediction_id)
    session.keep_single_result(served, shown.result)
    session.keep_explained(served, (shown, {k: v for k, v in values.items() if isinstance(v, ImageFile)}))
    log.info("image prediction by %s with version %s", who, served.label)


def _field(feature: Feature):
    key = f"single-{feature.name}"
    if feature.type == "category":
        choices = list(feature.choices)
        return st.selectbox(md(feature.name), choices, index=choices.index(feature.initial), key=key)
    if feature.type == "text":
        return st.text_input(md(feature.name), value=str(feature.initial or ""), key=key)
    label = md(f"{feature.name} ({feature.unit})" if feature.unit else feature.name)
    places = words.decimals(feature.min, feature.max, feature.default)
    whole = places == 0 and all(v is None or float(v).is_integer() for v in (feature.min, feature.max, feature.initial))
    usual = ""
    if feature.min is not None or feature.max is not None:
        low = f"{round(feature.min, places):g}" if feature.min is not None else "…"
        high = f"{round(feature.max, places):g}" if feature.max is not None else "…"
        usual = f"Usual range {low} to {high}."
    span = (feature.max - feature.min) if feature.min is not None and feature.max is not None else 0.0
    step = 10.0**-places if places else (1.0 if span >= 10 or whole else 0.1)  # one unit of the last digit typed
    places = max(places, words.decimals(step))
    initial = int(feature.initial) if whole else round(float(feature.initial), places)
    if key not in st.session_state:  # the field starts at the default but may be emptied (value=None allows it)
        st.session_state[key] = initial
    return st.number_input(
        label,
        value=None,
        step=int(step) if whole else step,
        format="%d" if whole else f"%.{places}f",  # the precision a person would type, from the schema's values
        key=key,
        help=usual or None,
        placeholder=f"empty: the default {insight.shown_value(initial)} is used",
    )


def _with_defaults(features, values: dict) -> tuple[dict, tuple[tuple[str, object], ...]]:
    """The form's values with each emptied number field set to its default, and which were."""
    filled, defaulted = dict(values), []
    for feature in features:
        if feature.type == "number" and values.get(feature.name) is None:
            value = feature.initial
            filled[feature.name] = int(value) if float(value).is_integer() else value
            defaulted.append((feature.name, filled[feature.name]))
    return filled, tuple(defaulted)


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
    bars = (
        alt.Chart(chart)
        .mark_bar(color=charts.PAIR[1])
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),  # always 0–100 %
            y=alt.Y("class:N", sort=None, title=None),
            tooltip=["class", alt.Tooltip("probability:Q", format=".1%")],
        )
        .properties(height=40 + 30 * len(chart))
    )
    st.altair_chart(bars, width="stretch")
