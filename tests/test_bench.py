"""The benchmark's quick mode still runs and prints every figure (no timing is asserted here)."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO


def test_benchmark_quick_mode_prints_every_figure():
    done = subprocess.run(
        [sys.executable, "bench/bench.py", "--quick"], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for figure in (
        "single row: model.predict (baseline)",
        "single row: the form's path",
        "batch 10,000 rows end to end",
        "20 threads predicting at once",
        "RSS after 10 switches",
        "RSS rise while downloading",
        "RSS added by a 10,000-row batch",
        "server start to /_stcore/health",
    ):
        assert figure in done.stdout
    assert "20/20 identical, 0 errors" in done.stdout


def test_api_benchmark_quick_mode_prints_every_figure():
    """bench/api.py --quick: the dashboard and the seed-style Flask app under hey (a smoke run of the bench)."""
    import os
    import shutil

    import pytest

    if shutil.which("hey") is None:
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("hey is required here (apt-get install hey)")
        print("API bench skipped: hey not installed (apt-get install hey)")
        pytest.skip("hey not installed")
    done = subprocess.run(
        [sys.executable, "bench/api.py", "--quick"], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for figure in (
        "single-row JSON, concurrency 1, keep-alive: p50",
        "single-row JSON, concurrency 32: requests/s",
        "ratio to the seed-style Flask app",
        "text/csv request end to end",
        "server RSS over 2,000 requests",
        "dashboard form prediction while the API is under load",
    ):
        assert figure in done.stdout, done.stdout
    others = next(line for line in done.stdout.splitlines() if "answers other than 200" in line)
    assert others.split()[-1] == "none", others
