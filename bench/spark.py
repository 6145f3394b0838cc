"""Spark engine benchmark (issue 18): `python -m bench.spark [--quick] [--rows N]`.

1,000,000 rows x 10 features (a CSV of ~90 MB) through the single-process CLI (the baseline) and through
`--engine spark --master local[2]` on this machine, each as its own process tree: wall time, peak memory of the
driver (the Python driver plus its JVM) and of one Python worker, rows/s per core, and whether the outputs agree.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import REPO, rss_mb
from bench.core import FEATURES, build_model, store_for


def line(figure: str, value: str, note: str = "", target: str = "") -> None:
    print(f"{figure:<50} {value:>14}  {note:<40} {target}", flush=True)


def tree(pid: int) -> list[int]:
    """pid and every descendant (from /proc)."""
    found, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found.append(child)
            frontier.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def run_measured(command: list[str], env: dict[str, str]) -> dict:
    """Run command; wall time, and peak RSS of the driver (the process and its JVM) and of the largest Python
    worker (pyspark's daemon children), sampled every 0.1 s."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks = {"driver": 0.0, "worker": 0.0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            driver, workers = 0.0, 0.0
            for pid in tree(process.pid):
                if pid == process.pid or "java" in command_line(pid):
                    driver += rss_mb(pid)
            for entry in Path("/proc").iterdir():  # the daemon's workers are not always its children by then
                if entry.name.isdigit() and "pyspark.daemon" in command_line(int(entry.name)):
                    workers = max(workers, rss_mb(int(entry.name)))
            peaks["driver"] = max(peaks["driver"], driver)
            peaks["worker"] = max(peaks["worker"], workers)
            stop.wait(0.1)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    _, err = process.communicate()
    stop.set()
    watcher.join()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[:6])} failed:\n{err[-3000:]}")
    return {"seconds": time.perf_counter() - started, **peaks, "stderr": err}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="50,000 rows (a smoke run)")
    parser.add_argument("--rows", type=int, default=None)
    args = parser.parse_args()
    rows = args.rows or (50_000 if args.quick else 1_000_000)
    folder = Path(tempfile.mkdtemp(prefix="spark-bench-"))
    manifest = store_for(folder, [build_model(folder)])
    small_rows = rows // 10
    data = pd.DataFrame(np.random.default_rng(0).normal(size=(rows, len(FEATURES))).round(4), columns=FEATURES)
    source, small = folder / "input.csv", folder / "small.csv"
    data.to_csv(source, index=False)
    data.head(small_rows).to_csv(small, index=False)
    print(f"{rows:,} rows x {len(FEATURES)} features, {source.stat().st_size / 1e6:.0f} MB CSV; {os.cpu_count()} cores")
    env = {
        **os.environ,
        "MODEL_MANIFEST_URL": str(manifest),
        "MODEL_CACHE_DIR": str(folder / "cache"),
        "CSV_MAX_ROWS": str(rows + 1),
        "CSV_MAX_BYTES": str(4 << 30),
        "HISTORY": "off",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }

    def local_run(path: Path, name: str) -> dict:
        return run_measured([*cli, "--input", str(path), "--output", str(folder / name)], env)

    def spark_run(path: Path, name: str) -> dict:
        return run_measured(
            [*cli, "--input", str(path), "--output", str(folder / name), "--engine", "spark", "--master", "local[2]"],
            env,
        )

    cli = [sys.executable, "-m", "dashboard", "predict"]
    local, local_small = local_run(source, "local.csv"), local_run(small, "local-small.csv")
    spark, spark_small = spark_run(source, "spark"), spark_run(small, "spark-small")
    line("single-process CLI (baseline): wall", f"{local['seconds']:.1f} s", f"peak RSS {local['driver']:.0f} MB")
    line(
        "Spark local[2]: wall",
        f"{spark['seconds']:.1f} s",
        f"{spark['seconds'] / local['seconds']:.2f}x the single process",
        f"target <= 2x: {'met' if spark['seconds'] <= 2 * local['seconds'] else 'NOT met'}",
    )
    line("Spark local[2]: peak RSS of the driver (Python + JVM)", f"{spark['driver']:.0f} MB")
    line("Spark local[2]: peak RSS of one Python worker", f"{spark['worker']:.0f} MB")
    line("rows/s per core, end to end: single process (1 core)", f"{rows / local['seconds']:,.0f}")
    line("rows/s per core, end to end: Spark (rows / wall / 2)", f"{rows / spark['seconds'] / 2:,.0f}")
    # steady state: the rows between the small and the full run over the time they added (fixed costs cancel:
    # start-up, TensorFlow import, model load per worker)
    added = rows - small_rows
    local_rate = added / (local["seconds"] - local_small["seconds"])
    spark_rate = added / (spark["seconds"] - spark_small["seconds"]) / 2
    fixed = spark_small["seconds"] - small_rows / (spark_rate * 2)
    line("rows/s per core, steady state: single process", f"{local_rate:,.0f}", f"({rows:,} vs {small_rows:,} rows)")
    line(
        "rows/s per core, steady state: Spark local[2]",
        f"{spark_rate:,.0f}",
        f"{spark_rate / local_rate:.0%} of the single process",
        f"target >= 50%: {'met' if spark_rate >= 0.5 * local_rate else 'NOT met'}",
    )
    line(
        "Spark fixed cost (start, driver check, model loads)",
        f"{fixed:.1f} s",
        f"single process: {local_small['seconds'] - small_rows / local_rate:.1f} s",
    )
    parts = sorted((folder / "spark").glob("part-*.csv"))
    ours = pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)
    theirs = pd.read_csv(folder / "local.csv")
    same = len(ours) == len(theirs) and (ours["prediction"].to_numpy() == theirs["prediction"].to_numpy()).all()
    columns = [c for c in theirs.columns if c.startswith("probability_")]
    identical = same and np.array_equal(ours[columns].to_numpy(), theirs[columns].to_numpy())
    line("outputs row for row", "identical" if identical else "DIFFERENT", f"{len(ours):,} and {len(theirs):,} rows")
    print(spark["stderr"].strip().splitlines()[-1])


if __name__ == "__main__":
    main()
