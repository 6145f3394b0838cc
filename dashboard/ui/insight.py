"""Why this prediction, what if a value changed, and is this file like the training data: the charts and the
sentences (the numbers come from dashboard.understand)."""

from __future__ import annotations

import numbers

import altair as alt
import pandas as pd
import streamlit as st

from dashboard.prediction import drift as reference
from dashboard.prediction.reading.table import InputTable
from dashboard.prediction.scoring import BatchResult
from dashboard.service import Served, understand
from dashboard.ui import charts
from dashboard.ui.words import md

BARELY = 0.005  # a change in the explained output smaller than this (a probability, or relative) reads "barely moved"


def why(served: Served, explained: understand.Explained, values: dict) -> None:
    """The attribution chart under the single prediction, with one sentence in plain words."""
    found = explained.attributions
    st.subheader("Why this prediction")
    if found is None:
        st.info("A row with errors cannot be explained: correct the values and press Predict again.")
        return
    names = served.schema.names
    frame = pd.DataFrame({"input": names, "contribution": found.values[0], "value": [values.get(n) for n in names]})
    frame = frame.reindex(frame["contribution"].abs().sort_values(ascending=False).index)
    target = found.target[0]
    source = "the training medians" if served.version.reference else "the schema's defaults"
    prediction, base = float(found.prediction[0]), float(found.reference[0])
    scale = 1.0 if served.schema.output.type != "regression" else max(abs(prediction), abs(base), 1e-9)
    reach = max(float(frame["contribution"].abs().max()), 0.05 * scale)  # never a ±0.0001 axis drawn full width
    chart = (
        alt.Chart(frame, title=f"Contribution of each input to {target}")
        .mark_bar()
        .encode(
            x=alt.X(
                "contribution:Q",
                title=f"change in {target} (from the reference input)",
                scale=alt.Scale(domain=[-reach, reach]),
            ),
            y=alt.Y("input:N", sort=None, title="input"),
            color=alt.condition("datum.contribution > 0", alt.value("#3d5afe"), alt.value("#e8590c")),
            tooltip=["input", "value", alt.Tooltip("contribution:Q", format="+.4f")],
        )
    )
    st.altair_chart(chart, width="stretch")
    top = frame.iloc[0]
    if abs(prediction - base) < BARELY * scale:
        st.markdown(
            f"**{md(target)} barely moved**: {_number(prediction)} for this row and {_number(base)} for the "
            f"reference input ({source}), so no input changed it noticeably; the model is as sure here as there."
        )
    else:
        verb = "raised" if top["contribution"] >= 0 else "lowered"
        st.markdown(
            f"**{md(top['input'])} {md(shown_value(top['value']))} {verb} {md(target)} by "
            f"{_number(abs(top['contribution']))}** — from {_number(base)} for the reference input ({source}) to "
            f"{_number(prediction)} for this row; the bars add up to that difference."
        )
    if not found.exact:
        st.caption(
            f"Estimated from sampled orderings of the inputs (largest standard error "
            f"{found.errors[0].max():.3f}); the sum is exact."
        )
    outside = [
        n
        for n in names
        if isinstance(values.get(n), (int, float))
        and reference.outside_range(served.version.reference, n, float(values[n]))
    ]
    for name in outside:
        stats = served.version.reference["features"][name]
        st.warning(
            f"{md(name)} {values[name]:g} is outside the training range "
            f"{stats['min']:g} – {stats['max']:g}: the model never saw such a value."
        )


def what_if(served: Served, values: dict) -> None:
    """One input swept across its range, the others held at the form's values; the current value marked."""
    st.subheader("What if")
    names = [f.name for f in served.schema.features if f.type != "text"]  # free text has no range to sweep
    if not names:
        return
    feature = st.selectbox(
        "Change one input",
        names,
        key="whatif-feature",
        help="The chart shows the model's answer as this input varies; the others keep the form's values.",
    )
    try:
        frame = understand.what_if(served, values, feature)
    except ValueError:
        st.info("Correct the form's values first: a row with errors has no what-if.")
        return
    long = frame.melt(id_vars=[feature], var_name="output", value_name="value")
    y_title = "probability" if served.schema.output.type != "regression" else served.schema.output.name
    spec = next(f for f in served.schema.features if f.name == feature)
    base = alt.Chart(long, title=f"The model's answer as {feature} changes")
    if spec.type == "category":
        chart = base.mark_bar().encode(
            x=alt.X(f"{feature}:N", title=feature),
            xOffset="output:N",
            y=alt.Y("value:Q", title=y_title),
            color=alt.Color("output:N", title=None, scale=alt.Scale(scheme=charts.SERIES), legend=_below()),
        )
    else:
        line = base.mark_line().encode(
            x=alt.X(f"{feature}:Q", title=feature),
            y=alt.Y("value:Q", title=y_title),
            color=alt.Color("output:N", title=None, scale=alt.Scale(scheme=charts.SERIES), legend=_below()),
        )
        current = (
            alt.Chart(pd.DataFrame({feature: [values.get(feature)]}))
            .mark_rule(strokeDash=[4, 4])
            .encode(x=f"{feature}:Q")
        )
        chart = line + current
    st.altair_chart(chart, width="stretch")
    st.caption(f"The dashed line marks the form's value, {md(shown_value(values.get(feature)))}.")


def drift(served: Served, table: InputTable, result: BatchResult) -> None:
    """Per-feature drift of the uploaded file against the training data, and a histogram for one feature."""
    st.subheader("Like the training data?")
    found = understand.drift(served, table, result)
    if isinstance(found, str):
        st.caption(md(found))
        return
    report = pd.DataFrame(
        {
            "input": [d.feature for d in found],
            "verdict": [d.verdict for d in found],
            "PSI": [round(d.psi, 3) for d in found],
            "moderate from": [round(d.moderate_at, 3) for d in found],
            "major from": [round(d.major_at, 3) for d in found],
            "outside the training range": [f"{d.outside:.1%}" for d in found],
        }
    )
    st.dataframe(report, hide_index=True, key="drift-table")
    st.caption(
        f"Population stability index (PSI) of each input over the training data's bins, compared with thresholds "
        f"for a file of {found[0].rows:,} rows: the usual bands (moderate 0.1, major 0.25), raised where files this "
        "small drawn from the training data itself would cross them by chance more than 1 time in 100 (moderate) "
        "or 1 in 1,000 (major)."
    )
    feature = st.selectbox("Compare the distribution of", report["input"].tolist(), key="drift-feature")
    chosen = next(d for d in found if d.feature == feature)
    if chosen.edges:
        edges = charts.bin_labels(chosen.edges)
    else:
        edges = list(served.version.reference["features"][feature]["frequencies"])
    shares = pd.DataFrame(
        {
            "bin": edges * 2,
            "share": list(chosen.expected) + list(chosen.actual),
            "data": ["training"] * len(edges) + ["this file"] * len(edges),
        }
    )
    chart = (
        alt.Chart(shares, title=f"{feature}: training data and this file")
        .mark_bar()
        .encode(
            x=alt.X("bin:N", sort=None, title=feature),
            xOffset="data:N",
            y=alt.Y("share:Q", title="share of rows", axis=alt.Axis(format="%")),
            color=alt.Color(
                "data:N",
                title=None,
                scale=alt.Scale(domain=["training", "this file"], range=list(charts.PAIR)),
                legend=_below(),
            ),
        )
    )
    st.altair_chart(chart, width="stretch")


def shown_value(value: object) -> str:
    """A form value in a sentence: numbers as written (3, not 3.0), text quoted (a text value can be anything)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return f"{value:g}"
    return f"“{value}”"


def _number(value: float) -> str:
    """An output in a sentence: two decimals, more when the value is small (0.0004, not 0.00)."""
    return f"{value:.2f}" if value == 0 or abs(value) >= 0.01 else f"{value:.2g}"


def _below() -> alt.Legend:
    """A legend under the chart, so a phone's narrow chart keeps its width for the plot."""
    return alt.Legend(orient="bottom", direction="horizontal")
