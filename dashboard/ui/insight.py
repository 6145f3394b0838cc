"""Why this prediction, what if a value changed, and is this file like the training data: the charts and the
sentences (the numbers come from dashboard.understand)."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import reference, understand
from dashboard.csvio import CsvTable
from dashboard.predict import BatchResult
from dashboard.service import Served
from dashboard.ui.words import md


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
    chart = (
        alt.Chart(frame, title=f"Contribution of each input to {target}")
        .mark_bar()
        .encode(
            x=alt.X("contribution:Q", title=f"change in {target} (from the reference input)"),
            y=alt.Y("input:N", sort=None, title="input"),
            color=alt.condition("datum.contribution > 0", alt.value("#3d5afe"), alt.value("#e8590c")),
            tooltip=["input", "value", alt.Tooltip("contribution:Q", format="+.4f")],
        )
    )
    st.altair_chart(chart, width="stretch")
    top = frame.iloc[0]
    verb = "raised" if top["contribution"] >= 0 else "lowered"
    st.markdown(
        f"**{md(top['input'])} {md(_value(top['value']))} {verb} {md(target)} by {abs(top['contribution']):.2f}** "
        f"— from {found.reference[0]:.2f} for the reference input ({source}) to {found.prediction[0]:.2f} for "
        "this row; the bars add up to that difference."
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
    names = served.schema.names
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
            color="output:N",
        )
    else:
        line = base.mark_line().encode(
            x=alt.X(f"{feature}:Q", title=feature),
            y=alt.Y("value:Q", title=y_title),
            color=alt.Color("output:N", title=None),
        )
        current = (
            alt.Chart(pd.DataFrame({feature: [values.get(feature)]}))
            .mark_rule(strokeDash=[4, 4])
            .encode(x=f"{feature}:Q")
        )
        chart = line + current
    st.altair_chart(chart, width="stretch")
    st.caption(f"The dashed line marks the form's value, {md(_value(values.get(feature)))}.")


def drift(served: Served, table: CsvTable, result: BatchResult) -> None:
    """Per-feature drift of the uploaded file against the training data, and a histogram for one feature."""
    st.subheader("Like the training data?")
    found = understand.drift(served, table, result)
    if isinstance(found, str):
        st.caption(md(found))
        return
    report = pd.DataFrame(
        {
            "input": [d.feature for d in found],
            "PSI": [round(d.psi, 3) for d in found],
            "outside the training range": [f"{d.outside:.1%}" for d in found],
            "verdict": [d.verdict for d in found],
        }
    )
    st.dataframe(report, hide_index=True, key="drift-table")
    st.caption("Population stability index per input: stable < 0.1 ≤ moderate < 0.25 ≤ major.")
    feature = st.selectbox("Compare the distribution of", report["input"].tolist(), key="drift-feature")
    chosen = next(d for d in found if d.feature == feature)
    if chosen.edges:
        edges = (
            ["below " + f"{chosen.edges[0]:g}"]
            + [f"{a:g} – {b:g}" for a, b in zip(chosen.edges[:-1], chosen.edges[1:], strict=True)]
            + [f"{chosen.edges[-1]:g} and above"]
        )
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
            color=alt.Color("data:N"),
        )
    )
    st.altair_chart(chart, width="stretch")


def _value(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
