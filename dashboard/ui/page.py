"""The page: page config and wiring of the ui/ pieces, nothing else (app.py serves it beside the HTTP API)."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

if __package__ in (None, ""):  # run as a script by `streamlit run`: make `dashboard` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dashboard import history
from dashboard.common.logs import configure_logging, log
from dashboard.errors import DashboardError, describe
from dashboard.ui import batch, cached, compare, fallback, models, monitor, sidebar, signin, single
from dashboard.ui import history as history_ui
from dashboard.ui.words import md

st.set_page_config(page_title="Keras prediction dashboard", page_icon="🔮", layout="wide")
configure_logging()


def main() -> None:
    """Draw the page for this run."""
    try:
        settings = cached.settings()
        recorder = history.recorder(settings)
    except DashboardError as exc:
        st.error(f"The configuration cannot be used: {md(exc.message)}")
        st.stop()
    who = signin.gate(settings.access)  # strangers and the refused stop here, before anything about the model
    settings, default_model = models.pick(settings, signin.viewer(settings.access, who))
    catalog, catalog_error = cached.catalog(settings)
    if catalog is None:
        st.error(f"No model versions could be read: {md(catalog_error)}")
        st.button("Try again", key="catalog-retry")
        st.stop()
    if sidebar.link_names_unknown_version(catalog):  # published after the last catalog read: read it again, once
        catalog, catalog_error = cached.reread_for_link(settings)
        if catalog is None:
            st.error(f"No model versions could be read: {md(catalog_error)}")
            st.stop()
    label, refresh = sidebar.show(settings, catalog, catalog_error)
    signin.show_who(settings.access, who)
    history_ui.sidebar_status(recorder)
    if refresh:
        cached.refresh()
        st.rerun()
    st.title("Predictions")
    progress = st.empty()  # always here, so the page keeps its layout whether or not a model is loading
    served, failure = fallback.serve(settings, catalog, label, progress)
    sidebar.show_card(settings, served, failure)
    if served is None:
        st.error(f"Version {failure.label} could not be loaded: {md(failure.message)}")
        st.info(
            "Pick another version in the sidebar, or press Retry once the problem is fixed."
            if failure.retryable
            else "Pick another version in the sidebar: this one cannot be served as it is published."
        )
        return
    if failure is not None:
        st.warning(
            f"Showing predictions of version {served.label}: version {failure.label} could not be loaded "
            "(details in the sidebar)."
        )
    st.markdown(intro(catalog, served))
    tab_single, tab_batch, tab_compare, tab_history, tab_feedback, tab_monitor = st.tabs(
        ["Predict", "Batch", "Compare", "History", "Feedback", "Monitor"], key="tab", on_change="rerun"
    )
    with tab_single:
        single_tab(served, who, recorder)
    with tab_batch:
        batch_tab(settings, served, who, recorder)
    with tab_compare:
        compare_tab(settings, catalog, served)
    # History, Feedback and Monitor read the database: only when open, so they are fresh when opened and cost
    # nothing else
    model = (served.version.model_name, default_model)
    if tab_history.open:
        with tab_history:
            history_tab(settings, recorder, who, model)
    if tab_feedback.open:
        with tab_feedback:
            feedback_tab(settings, recorder, who, model)
    if tab_monitor.open:
        with tab_monitor:
            monitor_tab(settings, recorder, served, default_model)


# Each tab is a fragment: pressing Predict, uploading a file or comparing reruns that tab only, not the page
# (sidebar, catalog, the other tabs). Typing in the form reruns nothing; switching tabs reruns the page once (so
# History and Feedback, drawn only while open, show what was just predicted).
@st.fragment
def single_tab(served, who: str, recorder) -> None:
    single.show(served, who, recorder)


@st.fragment
def batch_tab(settings, served, who: str, recorder) -> None:
    batch.show(settings, served, who, recorder)


@st.fragment
def compare_tab(settings, catalog, served) -> None:
    compare.show(settings, catalog, served)


@st.fragment
def history_tab(settings, recorder, who: str, model) -> None:
    history_ui.history_tab(settings, recorder, who, model)


@st.fragment
def feedback_tab(settings, recorder, who: str, model) -> None:
    history_ui.feedback_tab(settings, recorder, who, model)


@st.fragment
def monitor_tab(settings, recorder, served, default_model: bool) -> None:
    monitor.monitor_tab(settings, recorder, served, default_model)


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
    count = len(served.schema.features)
    if served.schema.images and count == 1:
        return (
            f"**{md(catalog.name)}** predicts {what} from an image: upload one (or take a photo) and press "
            "**Predict**, or upload many, or a zip, in **Batch**. Pick another version in the sidebar."
        )
    inputs = f"{count} input" if count == 1 else f"{count} inputs"
    return (
        f"**{md(catalog.name)}** predicts {what} from {inputs}: fill in the form and press **Predict**, or upload "
        f"a {'CSV' if not served.schema.images else 'CSV naming its images, with the images,'} in **Batch**. "
        "Pick another version in the sidebar."
    )


try:
    main()
except Exception as exc:  # the last line of defence: no traceback in the browser, a redacted one in the log
    log.error("unexpected error while drawing the page: %s", describe(exc))
    st.error("Something unexpected went wrong; the details are in the server log. Reload the page to try again.")
