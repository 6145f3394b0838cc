"""The dashboard's server log: one logger, set up once per process, and the one way an error is reported there."""

from __future__ import annotations

import logging
import sys

from dashboard.errors import describe

log = logging.getLogger("dashboard")


def configure_logging() -> None:
    """Send the dashboard's log lines to the server's stderr once per process."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def report(exc: BaseException, context: str) -> None:
    """Log the full redacted error on the server (never in the page or an answer)."""
    log.warning("%s: %s", context, describe(exc))
