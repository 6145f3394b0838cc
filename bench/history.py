"""Prediction history benchmark (issue 17): `python -m bench.history [--quick]`. Prints figures beside their targets,
each against the same thing measured without recording in the same run, with SQLite and with PostgreSQL.

- form: the Single tab's path (understand.explain_row) with and without Recorder.record, p50 over many rows;
- API: single-row JSON at concurrency 32 (hey) against the dashboard with HISTORY=off, then with the history on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.api import hey, wait_ready
from tests.support import dashboard_server
from tests.support.postgres import AVAILABLE, start_postgres

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def line(figure: str, value: str, baseline: str = "", target: str = "") -> None:
    print(f"{figure:<52} {value:>14}  {baseline:<30} {target}", flush=True)


def form_figures(databases: dict[str, str], rows: int) -> None:
    from dashboard import history, service
    from dashboard.history import database
    from dashboard.service import understand

    settings = service.settings({"HOME": tempfile.mkdtemp()})
    served = service.load_version(settings, service.catalog(settings).default)
    for _ in range(20):
        understand.explain_row(served, ROW)
    for name, url in databases.items():
        recorder = history.Recorder(database.database_url(url, None))
        recorder.flush(30)
        plain, recording, record_only = [], [], []
        for i in range(rows):
            values = {**ROW, "sepal_length": 4.5 + (i % 30) / 10}
            started = time.perf_counter()
            explained = understand.explain_row(served, values)
            middle = time.perf_counter()
            recorder.record(served, "form", "bench", explained.result.table, middle - started, keep_rows=1)
            done = time.perf_counter()
            plain.append(middle - started)
            record_only.append(done - middle)
            recording.append(done - started)
        written = recorder.flush(60)
        p50 = statistics.median
        line(
            f"form prediction + record ({name}): p50",
            f"{p50(recording) * 1e3:.2f} ms",
            f"without recording {p50(plain) * 1e3:.2f} ms",
        )
        line(
            f"  added by recording ({name}): p50 / p99",
            f"{p50(record_only) * 1e3:.3f} ms",
            f"p99 {sorted(record_only)[int(len(record_only) * 0.99)] * 1e3:.3f} ms",
            f"target <= 1 ms p50: {'met' if p50(record_only) <= 1e-3 else 'NOT met'}",
        )
        status = recorder.status()
        line(f"  rows written ({name})", f"{status.written:,}", f"all flushed: {written}, dropped {status.dropped}")
        recorder.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children so far (/proc)."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    total = 0
    for process in [pid, *map(int, children)]:
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def api_figures(databases: dict[str, str], seconds: float, rounds: int) -> None:
    """The three servers run side by side (idle ones cost nothing); hey alternates between them, round after round,
    so drift in the machine's speed hits each alike. Medians of the rounds."""
    folder = Path(tempfile.mkdtemp(prefix="history-bench-"))
    body = folder / "row.json"
    body.write_text(json.dumps({"instances": [ROW]}))
    configs = {"HISTORY=off": {"HISTORY": "off"}, **{n: {"DATABASE_URL": u} for n, u in databases.items()}}
    servers = {}
    try:
        for name, env in configs.items():
            place = folder / name.replace("=", "-")
            place.mkdir()
            servers[name] = dashboard_server.start(place, env)
            wait_ready(servers[name].base)
            hey(servers[name].base + "/api/v1/predict", 2, 32, body)  # warm-up
        results: dict[str, list[dict]] = {name: [] for name in servers}
        for _ in range(rounds):
            for name, running in servers.items():
                before = cpu_seconds(running.process.pid)
                found = hey(running.base + "/api/v1/predict", seconds, 32, body)
                requests_done = sum(int(n) for n in found["codes"].values())
                found["cpu_us"] = (cpu_seconds(running.process.pid) - before) / max(requests_done, 1) * 1e6
                results[name].append(found)
    finally:
        for running in servers.values():
            running.stop()
        shutil.rmtree(folder, ignore_errors=True)
    median = {name: statistics.median(r["rps"] for r in found) for name, found in results.items()}
    p50 = {name: statistics.median(r["p50"] for r in found) for name, found in results.items()}
    cpu = {name: statistics.median(r["cpu_us"] for r in found) for name, found in results.items()}
    spread = {name: (min(r["rps"] for r in found), max(r["rps"] for r in found)) for name, found in results.items()}
    off = median.pop("HISTORY=off")
    line(
        "API single-row JSON, c=32 (HISTORY=off): req/s",
        f"{off:.0f}",
        f"p50 {p50['HISTORY=off']:.1f} ms; rounds {spread['HISTORY=off'][0]:.0f}-{spread['HISTORY=off'][1]:.0f}",
    )
    line("  server CPU per request (HISTORY=off)", f"{cpu['HISTORY=off']:.0f} us", f"median of {rounds} round(s)")
    for name, rps in median.items():
        change = rps / off - 1
        line(
            f"API single-row JSON, c=32 ({name}): req/s",
            f"{rps:.0f}",
            f"{change:+.1%} vs off; rounds {spread[name][0]:.0f}-{spread[name][1]:.0f}",
            f"target >= -5%: {'met' if change >= -0.05 else 'NOT met'}",
        )
        line(
            f"  server CPU per request ({name})",
            f"{cpu[name]:.0f} us",
            f"{cpu[name] - cpu['HISTORY=off']:+.0f} us vs off (the writer, its database driver included)",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rows and shorter load (a smoke run)")
    parser.add_argument("--api-only", action="store_true", help="only the API figures")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="history-bench-db-"))
    databases = {"SQLite": f"sqlite:///{folder / 'history.sqlite3'}"}
    postgres = start_postgres() if AVAILABLE else None
    if postgres is not None:
        databases["PostgreSQL"] = postgres.url
    else:
        print("PostgreSQL binaries not found: SQLite figures only")
    try:
        if not args.api_only:
            form_figures(databases, 100 if args.quick else 1000)
        if shutil.which("hey"):
            api_figures(databases, 3 if args.quick else 5, 1 if args.quick else 6)
        else:
            print("API figures skipped: hey is not installed (apt-get install hey)")
    finally:
        if postgres is not None:
            postgres.remove()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
