"""The dashboard's server log: one logger, set up once per process, and the one way an error is reported there."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable

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


class Tally:
    """Something frequent (API predictions: thousands a second under load) logged as one line per period instead of
    one per event: the first event at once, then what each key did since, at most every `period` seconds."""

    def __init__(self, what: str, period: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.what, self.period, self.clock = what, period, clock
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}  # key -> [events, rows]
        self._since = -period  # the first event is logged at once

    def add(self, key: str, rows: int) -> None:
        """Count one event of `rows` rows for key (such as "alice, version 1.1.0"); log the period's line when due."""
        now = self.clock()
        with self._lock:
            counts = self._counts.setdefault(key, [0, 0])
            counts[0] += 1
            counts[1] += rows
            if now - self._since < self.period:
                return
            done, self._counts, self._since = self._counts, {}, now
        events = sum(c[0] for c in done.values())
        top = sorted(done.items(), key=lambda item: -item[1][0])[:5]
        parts = "; ".join(f"{key}: {c[0]:,} ({c[1]:,} rows)" for key, c in top)
        more = f"; {len(done) - len(top)} more" if len(done) > len(top) else ""
        log.info("%s: %s request(s) since the last line: %s%s", self.what, f"{events:,}", parts, more)
