"""The st.cache_resource wrappers: settings, the version list and the process-wide pool of loaded models."""

from __future__ import annotations

import time

import streamlit as st

from dashboard import service
from dashboard.common.files import format_bytes
from dashboard.common.logs import log, report
from dashboard.config import Settings
from dashboard.errors import DashboardError
from dashboard.service import ModelPool, Served
from dashboard.store.catalog import ModelCatalog
from dashboard.store.versions import Catalog, ModelVersion
from dashboard.ui import session


def pool(settings: Settings) -> ModelPool:
    """The process-wide pool of loaded versions (shared by every browser tab and the HTTP API)."""
    return service.process_pool(settings)


@st.cache_resource(show_spinner=False, max_entries=32)  # a few per model of a catalog
def _catalog(_settings: Settings, settings_key: str, period: int, refreshes: int) -> Catalog:
    return service.catalog(_settings)


def settings() -> Settings:
    """The settings (read on every run, so a secrets change is seen without a restart)."""
    return service.settings()


@st.cache_resource(show_spinner=False, max_entries=4)
def _models(_settings: Settings, settings_key: str, period: int, refreshes: int) -> ModelCatalog:
    return service.models(_settings)


def catalog(settings: Settings) -> tuple[Catalog | None, str | None]:
    """The versions (re-read every MODEL_REFRESH_SECONDS or on Refresh); on failure the last good list and why."""
    return _kept(_catalog, settings, "the versions", session.remember_catalog, session.last_catalog)


def models(settings: Settings) -> tuple[ModelCatalog | None, str | None]:
    """The catalog of models (MODEL_CATALOG_URL), kept and re-read as the versions are."""
    return _kept(_models, settings, "the catalog", session.remember_models, session.last_models)


def _kept(read, settings: Settings, what: str, remember, last) -> tuple:
    """read's value for this refresh period (MODEL_REFRESH_SECONDS, or Refresh); on failure the last good one and
    why."""
    period = int(time.time() // settings.refresh_seconds)
    try:
        found = read(settings, repr(settings), period, session.refreshes())
    except DashboardError as exc:
        report(exc, f"reading {what} failed")
        return last(), exc.message
    remember(found)
    return found, None


def refresh() -> None:
    """Forget the cached version list (and remembered failures) so the next run reads the sources again."""
    session.count_refresh()
    session.forget_failure()
    _catalog.clear()  # (the catalog of models is keyed by the refresh count: read again too)


_LINK_REREAD = [0.0]  # when a shared link last made the catalog be read again (process-wide)


def reread_for_link(settings: Settings) -> tuple[Catalog | None, str | None]:
    """The catalog read again because a link names a version it lacks: at most once every 10 s in this process, so
    links to versions that do not exist cannot make every new visitor re-read the store."""
    if time.monotonic() - _LINK_REREAD[0] >= 10:
        _LINK_REREAD[0] = time.monotonic()
        refresh()
    return catalog(settings)


def retry() -> None:
    """Forget the remembered failure so the next run tries the chosen version again."""
    session.forget_failure()


def load(settings: Settings, version: ModelVersion, box=None) -> Served:
    """The version from the pool, showing download and load progress in box (a placeholder) while it is fetched."""
    models = pool(settings)
    ready = models.peek(settings, version)
    if ready is not None:
        return models.get(settings, version)
    box = box if box is not None else st.empty()
    started = time.monotonic()

    def progress(stage: str, done: int, total: int | None) -> None:
        if stage == "load":
            box.progress(1.0, text=f"Loading version {version.label} (TensorFlow starts on first use)…")
        elif total:
            box.progress(
                min(done / total, 1.0),
                text=f"Version {version.label}: {stage} — "
                f"{format_bytes(done)} of {format_bytes(total)} ({done / total:.0%})",
            )
        else:
            box.progress(0.0, text=f"Version {version.label}: {stage} — {format_bytes(done)}")

    box.progress(0.0, text=f"Fetching version {version.label}…")
    try:
        return models.get(settings, version, progress)
    finally:
        box.empty()
        log.info("version %s ready after %.2f s", version.label, time.monotonic() - started)
