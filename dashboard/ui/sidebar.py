"""Sidebar: where models come from, the version selector, the model card, Refresh."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.config import Settings
from dashboard.prediction.images import describe
from dashboard.service import Served
from dashboard.store.versions import Catalog
from dashboard.ui import cached, session, words
from dashboard.ui.session import Failure
from dashboard.ui.words import md


def show(settings: Settings, catalog: Catalog, catalog_error: str | None) -> tuple[str, bool]:
    """Draw source, selector and Refresh; returns (chosen version label, refresh clicked)."""
    st.sidebar.header(md(catalog.name))
    st.sidebar.caption(f"Models from: {md(catalog.source)}")
    if catalog_error:
        st.sidebar.error(f"Could not re-read the versions: {md(catalog_error)} Showing the last list that worked.")
    labels = catalog.labels
    if "version" not in st.session_state or st.session_state["version"] not in labels:
        st.session_state["version"] = _initial(catalog)
    elif not session.picked() and st.session_state["version"] != catalog.default.label:
        st.session_state["version"] = catalog.default.label  # nobody picked one: follow the default (hot swap)
    tags = {label: f"({', '.join(t)})" if t else "" for label, t in catalog.tags.items()}
    label = st.sidebar.selectbox(
        "Version",
        labels,
        key="version",
        on_change=_picked,
        format_func=lambda v: f"{v}  {tags[v]}".rstrip(),
        help="Every published version, newest first. Until you pick one, the page "
        "follows the default, so a newly published version is served on refresh.",
    )
    if catalog.warning:
        st.sidebar.warning(md(catalog.warning))
    if session.link_warning():
        st.sidebar.warning(md(session.link_warning()))
    if st.query_params.get("version") != label:
        st.query_params["version"] = label
    refresh = st.sidebar.button(
        "Refresh versions",
        key="refresh",
        help=f"Re-read the sources now (also done every {settings.refresh_seconds} s).",
    )
    with st.sidebar:
        _watch(settings, tuple(labels), catalog.default.label)
    return label, refresh


def _watch(settings: Settings, labels: tuple[str, ...], default: str) -> None:
    """Re-read the sources every MODEL_REFRESH_SECONDS and rerun the page when the versions changed."""

    @st.fragment(run_every=settings.refresh_seconds)
    def watch() -> None:
        found, _ = cached.catalog(settings)
        if found is not None and (tuple(found.labels) != labels or found.default.label != default):
            st.rerun(scope="app")

    watch()


def _inputs_table(schema) -> pd.DataFrame:
    """The model's inputs as a small scrollable two-column table that fits the sidebar: name, and its usual
    range with the unit (a number), its choices (a category) or "text"."""
    rows = []
    for f in schema.features:
        places = words.decimals(f.min, f.max)
        if f.type == "category":
            usual = "one of " + ", ".join(str(c) for c in f.choices)
        elif f.type == "text":
            usual = "text"
        elif f.type == "image":
            usual = "image: " + describe(f)
        elif f.min is not None or f.max is not None:
            low = f"{round(f.min, places):g}" if f.min is not None else "…"
            high = f"{round(f.max, places):g}" if f.max is not None else "…"
            usual = f"{low} – {high}"
        else:
            usual = "any number"
        rows.append({"input": f.name, "usual values": f"{usual} {f.unit}".strip()})
    return pd.DataFrame(rows, columns=["input", "usual values"])


def _picked() -> None:
    session.mark_picked()


def show_card(settings: Settings, served: Served | None, failure: Failure | None) -> None:
    """The model card of the version serving, and what failed if the chosen one could not be served."""
    if failure is not None:
        still = f" Still serving version {served.label}." if served is not None else ""
        st.sidebar.error(f"Version {failure.label} could not be loaded: {md(failure.message)}{still}")
        if failure.retryable:  # a download that failed may work later; a model that cannot be served will not
            st.sidebar.button("Retry", key="retry", on_click=cached.retry, help="Try this version again now.")
    if not settings.safe_mode:
        st.sidebar.warning(
            "Safe mode is OFF (MODEL_SAFE_MODE=false): model files may run code when loaded. "
            "Only use stores whose every file you trust."
        )
    if served is None:
        return
    schema, model = served.schema, served.model
    output = schema.output
    if output.type == "regression":
        gives = f"regression: {md(output.name)}" + (f" ({md(output.unit)})" if output.unit else "")
    else:
        gives = f"{output.type}: {md(', '.join(output.labels))}"
    lines = [
        f"**Version** {served.label}",
        f"**sha256** `{served.short_sha}`" + ("" if served.version.pinned else " (not pinned)"),
        f"**Format** {model.format} · runtime {served.runtime}",
        f"**Inputs** {len(schema.features)} (below)",
        f"**Output** {gives}",
        f"**Schema** {served.schema_source}",
        f"**Load time** {model.load_seconds:.2f} s",
    ]
    if served.version.created:
        lines.append(f"**Created** {md(served.version.created)}")
    with st.sidebar.container(border=True):
        st.markdown("  \n".join(lines))
        inputs = _inputs_table(schema)
        st.dataframe(
            inputs, hide_index=True, key="card-inputs", height=min(36 + 35 * len(inputs), 246), width="stretch"
        )
        if served.version.notes:
            st.caption(md(served.version.notes))


def link_names_unknown_version(catalog: Catalog) -> bool:
    """True on a session's first run when ?version= names an exact version the catalog does not have (yet)."""
    if session.link_read():
        return False
    wanted = st.query_params.get("version")
    if not wanted:
        return False
    _, warning = catalog.choose(wanted, asked_by="?version= in the link")
    return warning is not None and "does not exist" in warning


def _initial(catalog: Catalog) -> str:
    """?version= from a shared link on a session's first run, else the default version."""
    wanted = st.query_params.get("version") if session.take_link_once() else None
    if not wanted:
        return catalog.default.label
    chosen, warning = catalog.choose(wanted, asked_by="?version= in the link")
    session.set_link_warning(warning)
    session.mark_picked()
    return chosen.label
