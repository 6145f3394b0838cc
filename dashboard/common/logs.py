"""The dashboard's server log: one logger, set up once per process, and the one way an error is reported there."""

from __future__ import annotations

import logging
import sys

from dashboard.common.text import escaped
from dashboard.errors import describe

log = logging.getLogger("dashboard")


def configure_logging() -> None:
    """Send the dashboard's log lines to the server's stderr once per process."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(EscapeArguments())
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


class EscapeArguments(logging.Filter):
    """Text quoted into a log line (an email address, a file name, a version asked for) is someone else's: its
    control characters are escaped, so a newline cannot forge a second log line. Tracebacks keep their lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and not getattr(record, "traceback", False):
            record.args = tuple(escaped(a) if isinstance(a, str) else a for a in record.args)
        return True


def report(exc: BaseException, context: str) -> None:
    """Log the full redacted error on the server (never in the page or an answer)."""
    log.warning("%s: %s", escaped(context), describe(exc), extra={"traceback": True})
