"""The model picker: with MODEL_CATALOG_URL, the sidebar's first choice (name, description), above the version
picker; `?model=NAME` in a link picks it. A person sees only the models open to them. Single-model settings show no
picker: they are a catalog of one."""

from __future__ import annotations

import streamlit as st

from dashboard import service
from dashboard.config import Settings
from dashboard.ui import cached, session
from dashboard.ui.words import md


def pick(settings: Settings, viewer: str) -> tuple[Settings, bool]:
    """(the chosen model's settings, whether it is the catalog's default model); draws the picker. Stops the run
    when the catalog cannot be read or no model is open to `viewer`."""
    if not settings.catalog_url:
        return settings, True
    everything, error = cached.models(settings)
    if everything is None:
        st.error(f"The catalog of models could not be read: {md(error)}")
        st.button("Try again", key="models-retry")
        st.stop()
    catalog = everything.visible(viewer)
    if not catalog.entries:
        st.title("Predictions")
        st.info("No model in this dashboard is open to you. Ask its owner to add you to a model.")
        st.stop()
    if error:
        st.sidebar.error(f"Could not re-read the catalog: {md(error)} Showing the last one that worked.")
    names = catalog.names
    if st.session_state.get("model") not in names:
        wanted = st.query_params.get("model") if not session.model_link_read() else None
        session.mark_model_link_read()
        st.session_state["model"] = wanted if wanted in names else catalog.default
        if wanted and wanted not in names:
            st.sidebar.warning(f"There is no model {md(wanted[:64])} here; showing {md(catalog.default)}.")
    described = {e.name: e.description for e in catalog.entries}
    name = st.sidebar.selectbox(
        "Model",
        names,
        key="model",
        on_change=_model_changed,
        format_func=lambda n: f"{n} — {described[n]}" if described[n] else n,
        help="Every model this dashboard serves to you; each has its own versions below.",
    )
    if described[name]:
        st.sidebar.caption(md(described[name]))
    if len(catalog.entries) == len(everything.entries):  # a refused entry may name a model kept from others
        for problem in everything.problems:
            st.sidebar.warning(f"A catalog entry was skipped: {md(problem)}")
    if st.query_params.get("model") != name:
        st.query_params["model"] = name
    return service.for_model(settings, everything, name), name == everything.default


def _model_changed() -> None:
    """Another model: its own versions, starting from its default (a version picked for the last one means nothing)."""
    st.session_state.pop("version", None)
    session.forget_model_choices()
