"""The st.cache_resource wrappers and per-session memory: settings, catalog, the pool of loaded models."""

from __future__ import annotations

import ctypes
import gc
import logging
import sys
import time
from dataclasses import dataclass

import streamlit as st

from dashboard import service
from dashboard.config import Settings
from dashboard.errors import DashboardError, describe
from dashboard.registry import Catalog, ModelVersion
from dashboard.service import ModelPool, Served

log = logging.getLogger("dashboard")


@dataclass(frozen=True)
class Failure:
    """A version that could not be served, and why (already redacted)."""

    label: str
    message: str


def configure_logging() -> None:
    """Send the dashboard's log lines to the server's stderr once per process."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def report(exc: BaseException, context: str) -> None:
    """Log the full redacted error on the server (never in the page)."""
    log.warning("%s: %s", context, describe(exc))


@st.cache_resource(show_spinner=False)
def pool(size: int) -> ModelPool:
    """The process-wide pool of loaded versions (shared by every browser tab)."""
    return ModelPool(size)


@st.cache_resource(show_spinner=False, max_entries=8)
def _catalog(_settings: Settings, settings_key: str, period: int, refreshes: int) -> Catalog:
    return service.catalog(_settings)


def settings() -> Settings:
    """The settings (read on every run, so a secrets change is seen without a restart)."""
    return service.settings()


def catalog(settings: Settings) -> tuple[Catalog | None, str | None]:
    """The versions (re-read every MODEL_REFRESH_SECONDS or on Refresh); on failure the last good list and why."""
    period = int(time.time() // settings.refresh_seconds)
    refreshes = st.session_state.get("refreshes", 0)
    try:
        found = _catalog(settings, repr(settings), period, refreshes)
    except DashboardError as exc:
        report(exc, "reading the versions failed")
        return st.session_state.get("last-catalog"), exc.message
    st.session_state["last-catalog"] = found
    return found, None


def refresh() -> None:
    """Forget the cached version list (and remembered failures) so the next run reads the sources again."""
    st.session_state["refreshes"] = st.session_state.get("refreshes", 0) + 1
    st.session_state.pop("failed", None)
    _catalog.clear()


def retry() -> None:
    """Forget the remembered failure so the next run tries the chosen version again."""
    st.session_state.pop("failed", None)


def load(settings: Settings, version: ModelVersion, box=None) -> Served:
    """The version from the pool, showing download and load progress in box (a placeholder) while it is fetched."""
    models = pool(settings.cached_versions)
    ready = models.peek(settings, version)
    if ready is not None:
        return models.get(settings, version)
    box = box if box is not None else st.empty()
    started = time.monotonic()

    def progress(stage: str, done: int, total: int | None) -> None:
        if stage == "load":
            box.progress(1.0, text=f"Loading version {version.label} (TensorFlow starts on first use)…")
        elif total:
            box.progress(min(done / total, 1.0),
                         text=f"Version {version.label}: {stage} — {_mb(done)} of {_mb(total)} ({done / total:.0%})")
        else:
            box.progress(0.0, text=f"Version {version.label}: {stage} — {_mb(done)}")

    box.progress(0.0, text=f"Fetching version {version.label}…")
    try:
        return models.get(settings, version, progress)
    finally:
        box.empty()
        log.info("version %s ready after %.2f s", version.label, time.monotonic() - started)


def serve(settings: Settings, catalog: Catalog, label: str, box=None) -> tuple[Served | None, Failure | None]:
    """Load the chosen version; if that fails, keep serving the last version that worked in this session.

    A failure is remembered until Retry or Refresh, so later clicks do not wait on a broken source again.
    """
    version = catalog.get(label)
    failed = st.session_state.get("failed")
    if failed and failed[:2] == (label, version.digest):
        return st.session_state.get("last-good"), Failure(label, failed[2])
    try:
        served = load(settings, version, box)
    except DashboardError as exc:
        report(exc, f"version {label} could not be served")
        st.session_state["failed"] = (label, version.digest, exc.message)
        return st.session_state.get("last-good"), Failure(label, exc.message)
    st.session_state["last-good"] = served
    return served, None


def release_memory() -> None:
    """After a large batch: collect garbage and hand freed heap pages back to the OS (glibc malloc_trim)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} KB"
