"""Compare versions: run a second version on the uploaded CSV; agreement or differences, and where."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import service
from dashboard.common.logs import report
from dashboard.config import Settings
from dashboard.errors import DashboardError
from dashboard.prediction.scoring import Comparison, compare
from dashboard.service import Served
from dashboard.store.versions import Catalog
from dashboard.ui import cached, charts, session
from dashboard.ui.words import md


def show(settings: Settings, catalog: Catalog, served: Served) -> Comparison | None:
    """Draw the comparison tab; returns the comparison once run."""
    others = [label for label in catalog.labels if label != served.label]
    if not others:
        st.info("Only one version is published, so there is nothing to compare with.")
        return None
    uploaded = session.upload()
    other = st.selectbox("Compare version " + served.label + " with", others, key="compare-version")
    if uploaded is None:
        st.info("Upload a CSV in the Batch tab first; both versions are run on that file.")
        return None
    key = (served.label, other, uploaded.file_id)
    if st.button("Compare", key="compare-run", type="primary"):
        try:
            second = cached.load(settings, catalog.get(other))
            first_result = session.batch_result(uploaded.file_id, served) or service.predict_table(
                served, uploaded.table
            )
            second_result = service.predict_table(second, uploaded.table)
            result = compare(
                first_result, second_result, served.schema.output, second.schema.output, served.label, second.label
            )
        except DashboardError as exc:
            report(exc, f"comparing {served.label} with {other} failed")
            st.error(f"Could not compare with version {other}: {md(exc.message)}")
            return None
        session.keep_comparison(key, result)
    result = session.comparison(key)
    if result is None:
        return None
    _show(result, served.label, other)
    return result


def _show(result: Comparison, first: str, second: str) -> None:
    st.caption(f"{result.compared:,} rows predicted by both versions.")
    if result.kind == "labels":
        st.metric(
            "Agreement",
            f"{result.agreement:.1%}" if result.agreement is not None else "–",
            help=f"Share of rows where {first} and {second} predict the same label.",
        )
    else:
        diffs = result.differences
        columns = st.columns(3)
        columns[0].metric(
            "Mean difference", f"{diffs.mean():.4g}" if diffs.size else "–", help=f"{second} minus {first}"
        )
        columns[1].metric("Mean absolute difference", f"{np.abs(diffs).mean():.4g}" if diffs.size else "–")
        columns[2].metric("Largest difference", f"{np.abs(diffs).max():.4g}" if diffs.size else "–")
        if diffs.size:
            st.bar_chart(charts.histogram(diffs, "difference"), x="difference", y="rows", height=240)
    st.subheader("Rows where the versions differ most")
    added = [c for c in result.rows.columns if c.startswith(("prediction_", "probability_change", "difference"))]
    order = added + [c for c in result.rows.columns if c not in added]  # the versions' answers first (phones)
    st.dataframe(result.rows, hide_index=True, key="compare-table", column_order=order)
