"""Compare versions: run a second version on the uploaded CSV; agreement or differences, and where."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import service
from dashboard.config import Settings
from dashboard.errors import DashboardError
from dashboard.predict import Comparison, compare
from dashboard.registry import Catalog
from dashboard.service import Served
from dashboard.ui import state
from dashboard.ui.batch import stored_result


def show(settings: Settings, catalog: Catalog, served: Served) -> Comparison | None:
    """Draw the comparison tab; returns the comparison once run."""
    others = [label for label in catalog.labels if label != served.label]
    if not others:
        st.info("Only one version is published, so there is nothing to compare with.")
        return None
    uploaded = st.session_state.get("batch-data")
    other = st.selectbox("Compare version " + served.label + " with", others, key="compare-version")
    if uploaded is None:
        st.info("Upload a CSV in the Batch tab first; both versions are run on that file.")
        return None
    key = (served.label, other, uploaded.file_id)
    if st.button("Compare", key="compare-run", type="primary"):
        try:
            second = state.load(settings, catalog.get(other))
            data = uploaded.getvalue()
            first_result = stored_result(uploaded.file_id, served) or service.predict_csv(settings, served, data)
            second_result = service.predict_csv(settings, second, data)
            result = compare(first_result, second_result, served.schema.output, second.schema.output,
                             served.label, second.label)
        except DashboardError as exc:
            state.report(exc, f"comparing {served.label} with {other} failed")
            st.error(f"Could not compare with version {other}: {exc.message}")
            return None
        st.session_state["compare-result"] = (key, result)
    stored = st.session_state.get("compare-result")
    if not stored or stored[0] != key:
        return None
    result = stored[1]
    _show(result, served.label, other)
    return result


def _show(result: Comparison, first: str, second: str) -> None:
    st.caption(f"{result.compared:,} rows predicted by both versions.")
    if result.kind == "labels":
        st.metric("Agreement", f"{result.agreement:.1%}" if result.agreement is not None else "–",
                  help=f"Share of rows where {first} and {second} predict the same label.")
    else:
        diffs = result.differences
        columns = st.columns(3)
        columns[0].metric("Mean difference", f"{diffs.mean():.4g}" if diffs.size else "–",
                          help=f"{second} minus {first}")
        columns[1].metric("Mean absolute difference", f"{np.abs(diffs).mean():.4g}" if diffs.size else "–")
        columns[2].metric("Largest difference", f"{np.abs(diffs).max():.4g}" if diffs.size else "–")
        if diffs.size:
            counts, edges = np.histogram(diffs, bins=min(30, max(5, diffs.size // 10)))
            st.bar_chart(pd.DataFrame({"difference": [f"{(a + b) / 2:.3g}" for a, b in zip(edges[:-1], edges[1:])],
                                       "rows": counts}), x="difference", y="rows", height=240)
    st.subheader("Rows where the versions differ most")
    st.dataframe(result.rows, hide_index=True, key="compare-table")
