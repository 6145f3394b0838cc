"""The page: page config and wiring of the ui/ pieces, nothing else (app.py serves it beside the HTTP API)."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

if __package__ in (None, ""):  # run as a script by `streamlit run`: make `dashboard` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dashboard.errors import DashboardError, describe
from dashboard.logs import configure_logging, log
from dashboard.ui import batch, compare, serving, sidebar, signin, single, state
from dashboard.ui.words import md

st.set_page_config(page_title="Keras prediction dashboard", page_icon="🔮", layout="wide")
configure_logging()


def main() -> None:
    """Draw the page for this run."""
    try:
        settings = state.settings()
    except DashboardError as exc:
        st.error(f"The configuration cannot be used: {md(exc.message)}")
        st.stop()
    who = signin.gate(settings.access)  # strangers and the refused stop here, before anything about the model
    catalog, catalog_error = state.catalog(settings)
    if catalog is None:
        st.error(f"No model versions could be read: {md(catalog_error)}")
        st.button("Try again", key="catalog-retry")
        st.stop()
    label, refresh = sidebar.show(settings, catalog, catalog_error)
    signin.show_who(settings.access, who)
    if refresh:
        state.refresh()
        st.rerun()
    st.title("Predictions")
    progress = st.empty()  # always here, so the page keeps its layout whether or not a model is loading
    served, failure = serving.serve(settings, catalog, label, progress)
    sidebar.show_card(settings, served, failure)
    if served is None:
        st.error(f"Version {failure.label} could not be loaded: {md(failure.message)}")
        st.info("Pick another version in the sidebar, or press Retry once the problem is fixed.")
        return
    if failure is not None:
        st.warning(
            f"Showing predictions of version {served.label}: version {failure.label} could not be loaded "
            "(details in the sidebar)."
        )
    st.markdown(intro(catalog, served))
    tab_single, tab_batch, tab_compare = st.tabs(["Single prediction", "Batch (CSV)", "Compare versions"])
    with tab_single:
        single_tab(served, who)
    with tab_batch:
        batch_tab(settings, served, who)
    with tab_compare:
        compare_tab(settings, catalog, served)


# Each tab is a fragment: pressing Predict, uploading a file or comparing reruns that tab only, not the page
# (sidebar, catalog, the other tabs). Switching tabs and typing in the form rerun nothing.
@st.fragment
def single_tab(served, who: str) -> None:
    single.show(served, who)


@st.fragment
def batch_tab(settings, served, who: str) -> None:
    batch.show(settings, served, who)


@st.fragment
def compare_tab(settings, catalog, served) -> None:
    compare.show(settings, catalog, served)


def intro(catalog, served) -> str:
    """One line above the tabs: what this is and what to do here."""
    output = served.schema.output
    what = (
        f"one of {len(output.labels)} classes ({md(', '.join(output.labels))})"
        if output.type == "classification"
        else f"{md(output.labels[1])} or {md(output.labels[0])}"
        if output.type == "binary"
        else md(output.name)
    )
    return (
        f"**{md(catalog.name)}** predicts {what} from {len(served.schema.features)} inputs: fill in the form and "
        "press **Predict**, or upload a CSV in **Batch**. Pick another version in the sidebar."
    )


try:
    main()
except Exception as exc:  # the last line of defence: no traceback in the browser, a redacted one in the log
    log.error("unexpected error while drawing the page: %s", describe(exc))
    st.error("Something unexpected went wrong; the details are in the server log. Reload the page to try again.")
