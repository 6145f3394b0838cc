"""The suite-wide secret scan (case 22 of the reliability matrix), as a pytest plugin.

Every message, log line, rendered page and captured output produced by the whole suite is collected and scanned
for secrets at the end of the session; any hit fails the run. conftest.py imports the hooks; the scan itself is
proven able to fail by tests/test_secretscan.py, which plants a secret in a separate pytest run.
"""

from __future__ import annotations

import logging
import os

SECRET_PATTERNS = (
    "X-Amz-Signature",
    "X-Amz-Credential",
    "X-Goog-Signature",
    "sig=",
    "user:password@",
    "-do-not-leak",
)  # the sign-in tests' client and cookie secrets end with this
WATCHED: list[str] = []  # secrets made while the tests run (API tokens, ID tokens): watch(secret) adds one
EXTRA = tuple(p for p in os.environ.get("SECRET_SCAN_EXTRA", "").split(",") if p)  # planted by the self-test
SCANNED: list[tuple[str, str]] = []


def watch(secret: str) -> None:
    """Scan every text of the run for this secret too (reported by position, never printed)."""
    WATCHED.append(secret)


def find_secrets(texts) -> list[tuple[str, str]]:
    """(where, the pattern) for every text that holds a secret pattern."""
    patterns = SECRET_PATTERNS + EXTRA + tuple(WATCHED)
    return [(where, pattern) for where, text in texts for pattern in patterns if pattern in text]


class _Collect(logging.Handler):
    def emit(self, record):
        try:
            SCANNED.append((f"log {record.name}", self.format(record)))
        except Exception:  # never let the scan break logging
            pass


def pytest_sessionstart(session):
    from streamlit.testing.v1 import AppTest

    from dashboard import errors

    handler = _Collect()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    for name in ("", "dashboard"):
        logging.getLogger(name).addHandler(handler)
    original_init = errors.DashboardError.__init__

    def recording_init(self, message):
        original_init(self, message)
        SCANNED.append((f"error {type(self).__name__}", str(self)))

    errors.DashboardError.__init__ = recording_init
    original_run = AppTest.run

    def recording_run(self, *args, **kwargs):
        result = original_run(self, *args, **kwargs)
        SCANNED.append(("page", repr(result._tree)))
        return result

    AppTest.run = recording_run


def pytest_runtest_logreport(report):
    SCANNED.append((f"output of {report.nodeid}", report.capstdout + report.capstderr + report.caplog))


def pytest_sessionfinish(session, exitstatus):
    hits = find_secrets(SCANNED)
    chars = sum(len(text) for _, text in SCANNED)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    line = (
        f"secret scan: {len(SCANNED)} messages, log lines, pages and outputs ({chars:,} characters), {len(hits)} hits"
    )
    if reporter is not None:
        reporter.write("\n")
        reporter.write_line(line)
        for where, pattern in hits[:20]:  # the pattern's position, not the pattern: this line is scanned too
            reporter.write_line(
                f"  secret pattern #{(SECRET_PATTERNS + EXTRA + tuple(WATCHED)).index(pattern)} in {where}"
            )
    if hits:
        session.exitstatus = 1
