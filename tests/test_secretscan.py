"""The suite-wide secret scan can fail: a separate pytest run that logs a planted secret must end in failure."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.helpers import REPO

PLANTED = "PLANTED" + "-CANARY-SECRET"  # split, so this file's own text never holds the planted pattern whole


def run_inner(tmp_path, body: str) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(
        "from tests.support.secretscan import (  # noqa\n"
        "    pytest_runtest_logreport, pytest_sessionfinish, pytest_sessionstart)\n"
    )
    (tmp_path / "test_inner.py").write_text(body)
    environ = {**os.environ, "PYTHONPATH": str(REPO), "SECRET_SCAN_EXTRA": PLANTED}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_planted_secret_in_a_log_line_fails_the_run(tmp_path):
    done = run_inner(
        tmp_path,
        "import logging\n\n\ndef test_leaks():\n"
        f"    logging.getLogger('dashboard').warning('https://h/m.keras?t=' + {PLANTED!r})\n",
    )
    assert done.returncode == 1, done.stdout[-1500:]
    assert "1 passed" in done.stdout
    assert "secret pattern #6 in log dashboard" in done.stdout and ", 0 hits" not in done.stdout


def test_a_planted_secret_in_an_error_message_fails_the_run_and_a_clean_run_passes(tmp_path):
    leaky = (
        "from dashboard.errors import ModelSourceError\n\n\ndef test_leaks():\n"
        f"    ModelSourceError('cannot read ' + {PLANTED!r})\n"
    )
    done = run_inner(tmp_path, leaky)
    assert done.returncode == 1 and "secret pattern #6 in error ModelSourceError" in done.stdout, done.stdout[-1500:]
    clean = run_inner(tmp_path, "def test_quiet():\n    assert True\n")
    assert clean.returncode == 0 and ", 0 hits" in clean.stdout, clean.stdout[-1500:]
