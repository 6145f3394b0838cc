"""The benchmark's quick mode still runs and prints every figure (no timing is asserted here)."""

from __future__ import annotations

import subprocess
import sys

from tests.support.helpers import REPO


def quick(script: str, *extra: str) -> str:
    """What `python -m bench.SCRIPT --quick` prints (from the repository's root, as the docs say); it must exit 0."""
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{script}", "--quick", *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def require_hey() -> None:
    import os
    import shutil

    import pytest

    if shutil.which("hey") is None:
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("hey is required here (apt-get install hey)")
        print("API bench skipped: hey not installed (apt-get install hey)")
        pytest.skip("hey not installed")


def test_benchmark_quick_mode_prints_every_figure():
    stdout = quick("core")
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
        assert figure in stdout
    assert "20/20 identical, 0 errors" in stdout


def test_api_benchmark_quick_mode_prints_every_figure():
    """bench/api.py --quick: the dashboard and the seed-style Flask app under hey (a smoke run of the bench)."""
    require_hey()
    stdout = quick("api")
    for figure in (
        "single-row JSON, concurrency 1, keep-alive: p50",
        "single-row JSON, concurrency 32: requests/s",
        "ratio to the seed-style Flask app",
        "text/csv request end to end",
        "server RSS over 2,000 requests",
        "dashboard form prediction while the API is under load",
        "open-inference: c=32 single-row req/s vs hand-written FastAPI",
        "mcp: c=32 single-row req/s vs hand-written FastAPI",
        "mcp: one 1,000-row tool call",
    ):
        assert figure in stdout, stdout
    others = next(line for line in stdout.splitlines() if "answers other than 200" in line)
    assert others.split()[-1] == "none", others


def test_history_benchmark_quick_mode_prints_every_figure():
    """bench/history.py --quick: recording's cost on the form and the API, SQLite and PostgreSQL (issue 17)."""
    require_hey()
    stdout = quick("history")
    for figure in (
        "added by recording (SQLite): p50",
        "added by recording (PostgreSQL): p50",
        "API single-row JSON, c=32 (HISTORY=off): req/s",
        "API single-row JSON, c=32 (SQLite): req/s",
        "API single-row JSON, c=32 (PostgreSQL): req/s",
    ):
        assert figure in stdout, stdout
    assert "all flushed: True, dropped 0" in stdout


def test_spark_benchmark_quick_mode_prints_every_figure():
    """bench/spark.py --quick: the single-process CLI and Spark local[2] on the same file (issue 18)."""
    stdout = quick("spark")
    for figure in (
        "Spark local[2]: wall",
        "peak RSS of one Python worker",
        "rows/s per core, steady state: Spark local[2]",
    ):
        assert figure in stdout, stdout
    outputs = next(line for line in stdout.splitlines() if line.startswith("outputs row for row"))
    assert outputs.split()[4] == "identical", outputs


def test_drift_and_version_cycling_benchmarks_quick_mode_print_every_figure():
    """bench/drift.py (issue 22) and bench/versions.py (issue 23) still run and print their figures."""
    drift = quick("drift")
    for figure in (
        "false alarms (training distribution), n=   30",
        "detection of a 1 sd shift, n=  200",
        "demo sample.csv",
    ):
        assert figure in drift
    cycling = quick("versions")
    assert "gc.freeze once (now)" in cycling and "gc.freeze after every load (before)" in cycling
    assert cycling.count("default still loaded: True") == 2


def test_image_benchmark_quick_mode_prints_every_figure():
    """bench/images.py (issue 26): the CLI on a folder of JPEGs beside the Pillow + predict_on_batch floor, peak
    memory at two folder sizes, the API's single image beside a hand-written FastAPI endpoint, the occlusion cost."""
    stdout = quick("images")
    for figure in (
        "CLI: 100 JPEGs 640×480 -> 96×96 CNN, end to end",
        "peak memory (max RSS)",
        "CLI peak memory, 25 vs 100 images",
        "API: one 640×480 JPEG (raw body), c=1 keep-alive p50",
        "occlusion map of one 96×96 image",
    ):
        assert figure in stdout, figure
    assert "65 forward passes, one call" in stdout


def test_catalog_memory_benchmark_quick_mode_prints_every_figure():
    stdout = quick("catalog")
    for figure in (
        "store: 5 models x 3 versions",
        "baseline (default model only",
        "rss at",
        "loads ",
        "slope ",
        "peak RSS",
    ):
        assert figure in stdout, figure


def test_monitor_benchmark_quick_mode_prints_every_figure():
    stdout = quick("monitor", "--rows", "3000")  # the figures, not the scale: 3,000 predictions on each database
    for database in ("SQLite", "PostgreSQL"):
        assert f"\n{database}\n" in stdout, database
    for figure in (
        "predictions in the history / hourly count rows",
        "seeding through records.insert",
        "monitor of the week, cold (best of 3)",
        "drift verdicts over the week",
        "Monitor tab opens (AppTest page run, tab open, cold)",
        "baseline: volume + mean latency from the predictions table",
        "baseline: the inputs read into pandas for drift",
    ):
        assert stdout.count(figure) == 2, figure
    assert stdout.count("3,000  ") >= 2 and "NOTE" not in stdout
