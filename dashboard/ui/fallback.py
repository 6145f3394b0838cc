"""The last good version keeps serving: when the chosen version cannot be loaded, the page says why and goes on
with the version that worked before, and the failure is remembered until Retry or Refresh."""

from __future__ import annotations

from dashboard.common.logs import report
from dashboard.config import Settings
from dashboard.errors import DashboardError, ModelSourceError
from dashboard.service import Served
from dashboard.store.versions import Catalog
from dashboard.ui import cached, session
from dashboard.ui.session import Failure


def serve(settings: Settings, catalog: Catalog, label: str, box=None) -> tuple[Served | None, Failure | None]:
    """Load the chosen version; if that fails, keep serving the last version that worked in this session.

    A failure is remembered until Retry or Refresh, so later clicks do not wait on a broken source again.
    """
    version = catalog.get(label)
    good = session.last_good()
    if good is not None and good.version.model_name != version.model_name:  # another model's answers: never
        good = None
    failed = session.failure()
    if failed is not None and (failed.label, failed.identity) == (label, version.identity):
        return good, failed
    try:
        served = cached.load(settings, version, box)
    except DashboardError as exc:
        report(exc, f"version {label} could not be served")
        failed = Failure(label, version.identity, exc.message, retryable=isinstance(exc, ModelSourceError))
        session.remember_failure(failed)
        return good, failed
    session.remember_good(served)
    return served, None
