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
