"""Benchmark: `python -m bench.bench [--quick]`. Builds its own model and data, prints a table of figures.

Each figure runs several times; the table shows min / median / max and the ratio to the baseline
measured in the same run, and whether the target of issue 6 is met. Memory figures run in child
processes so one measurement cannot inflate another. Standard library + project dependencies only.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import REPO, rss_mb

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from tests.support.helpers import NO_TENSORFLOW as LEAN_BLOCK

FEATURES = [f"f{i}" for i in range(10)]
ROWS = []  # (figure, unit, min, median, max, baseline median, ratio text, target text, met)


class PeakRss:
    """Samples this process's RSS every few ms while active; .peak is the highest seen, in MB."""

    def __init__(self) -> None:
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.002)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def timed(fn, repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def record(
    name: str, unit: str, values: list[float], baseline: float | None, target: str, met: bool, ratio: str = ""
) -> None:
    median = statistics.median(values)
    if baseline is not None and not ratio:
        ratio = f"{baseline / median:.1f}x faster" if median < baseline else f"{median / baseline:.2f}x the baseline"
    ROWS.append((name, unit, min(values), median, max(values), baseline, ratio, target, met))


def build_model(folder: Path, hidden: int = 64, name: str = "bench") -> Path:
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((len(FEATURES),), name="features")
    h = keras.layers.Dense(hidden, activation="relu")(inputs)
    h = keras.layers.Dense(hidden, activation="relu")(h)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(h))
    path = folder / f"{name}.keras"
    model.save(path)
    return path


def store_for(folder: Path, paths: list[Path]) -> Path:
    """A manifest listing the given model files as versions 1.0.0, 2.0.0, ..."""
    from dashboard.store.fetch import sha256_of

    schema = {
        "features": [{"name": f, "min": -4, "max": 4} for f in FEATURES],
        "output": {"type": "classification", "labels": ["a", "b", "c"]},
    }
    versions = [
        {"version": f"{i + 1}.0.0", "url": p.name, "sha256": sha256_of(p), "schema": schema}
        for i, p in enumerate(paths)
    ]
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps({"name": "bench", "versions": versions[::-1]}))
    return manifest


def settings_for(folder: Path, manifest: Path, **extra: str):
    from dashboard.config import load_settings

    return load_settings(
        {"MODEL_MANIFEST_URL": str(manifest), "MODEL_CACHE_DIR": str(folder / "cache"), **extra}, secrets={}
    )


def bench_single(folder: Path, quick: bool) -> None:
    import numpy as np

    from dashboard import service

    manifest = store_for(folder, [build_model(folder)])
    settings = settings_for(folder, manifest)
    served = service.load_version(settings, service.catalog(settings).default)
    keras_model = served.model.model
    row = {f: 0.5 for f in FEATURES}
    x = np.full((1, len(FEATURES)), 0.5, dtype="float32")
    repeats = 30 if quick else 200
    baseline = timed(lambda: keras_model.predict(x, verbose=0), 10 if quick else 50)
    direct = timed(lambda: keras_model(x, training=False), repeats)
    form = timed(lambda: service.predict_row(served, row), repeats)
    base = statistics.median(baseline)
    record("single row: model.predict (baseline)", "ms", [t * 1e3 for t in baseline], None, "", True)
    record("single row: model(x) direct call", "ms", [t * 1e3 for t in direct], base * 1e3, "", True)
    p50 = statistics.median(form)
    record(
        "single row: the form's path (validate+predict+assemble)",
        "ms",
        [t * 1e3 for t in form],
        base * 1e3,
        "p50 <= 2 ms and >= 20x",
        p50 <= 0.002 and base / p50 >= 20,
    )


def bench_batch(folder: Path, quick: bool) -> None:
    import numpy as np
    import pandas as pd

    from dashboard import service
    from dashboard.common.csv_export import safe_csv

    rows = 10_000 if quick else 100_000
    manifest = store_for(folder, [build_model(folder, name="batch")])
    settings = settings_for(folder, manifest)
    served = service.load_version(settings, service.catalog(settings).default)
    keras_model = served.model.model
    data = pd.DataFrame(np.random.default_rng(0).normal(size=(rows, len(FEATURES))).round(5), columns=FEATURES)
    raw = data.to_csv(index=False).encode()

    def floor() -> None:
        frame = pd.read_csv(io.BytesIO(raw))
        out = np.asarray(keras_model(frame.to_numpy(dtype="float32"), training=False))
        frame[["a", "b", "c"]] = out
        frame.to_csv(index=False)

    def ours() -> None:
        result = service.predict_csv(settings, served, raw)
        safe_csv(result.table)

    repeats = 3 if quick else 5
    base = timed(floor, repeats, warmup=1)
    mine = timed(ours, repeats, warmup=1)
    b = statistics.median(base)
    record(
        f"batch {rows:,} rows: read_csv + one model call + to_csv (floor)",
        "ms",
        [t * 1e3 for t in base],
        None,
        "",
        True,
    )
    ratio = statistics.median(mine) / b
    record(
        f"batch {rows:,} rows end to end (read, validate, predict, safe CSV)",
        "ms",
        [t * 1e3 for t in mine],
        b * 1e3,
        "<= 1.5x floor",
        ratio <= 1.5,
        ratio=f"{ratio:.2f}x the floor",
    )


def bench_concurrency(folder: Path, quick: bool) -> None:
    import numpy as np
    import pandas as pd

    from dashboard import service

    manifest = store_for(folder, [build_model(folder, name="threads")])
    settings = settings_for(folder, manifest)
    served = service.load_version(settings, service.catalog(settings).default)
    frames = [
        pd.DataFrame(np.random.default_rng(i).normal(size=(500, len(FEATURES))), columns=FEATURES) for i in range(20)
    ]
    serial = [service.predict_frame(served, f).table for f in frames]
    results: list = [None] * 20
    failures: list = []

    def work(i: int) -> None:
        try:
            results[i] = service.predict_frame(served, frames[i]).table
        except Exception as exc:  # counted, reported below
            failures.append(exc)

    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    same = sum(r is not None and r.equals(s) for r, s in zip(results, serial))
    record(
        "20 threads predicting at once (500 rows each)",
        "ms",
        [elapsed * 1e3],
        None,
        "same as serial, no errors",
        same == 20 and not failures,
        ratio=f"{same}/20 identical, {len(failures)} errors",
    )


CHILD = r"""
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
from bench import core
from pathlib import Path
print(json.dumps(core.{function}(Path({folder!r}), {quick!r})))
"""


def in_child(function: str, folder: Path, quick: bool) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    code = CHILD.format(function=function, folder=str(folder), quick=quick)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{function} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_switching(folder: Path, quick: bool) -> dict:
    """RSS with two versions loaded, then after ten switches among four (pool of two)."""
    import gc

    from dashboard import service

    paths = [build_model(folder, hidden=3072, name=f"switch{i}") for i in range(4)]  # ~38 MB of weights each
    settings = settings_for(folder, store_for(folder, paths))
    versions = list(service.catalog(settings).versions)
    pool = service.ModelPool(2)
    row = {f: 0.1 for f in FEATURES}
    for v in versions[:2]:
        service.predict_row(pool.get(settings, v), row)
    gc.collect()
    two = rss_mb()
    for i in range(10):
        service.predict_row(pool.get(settings, versions[i % 4]), row)
    gc.collect()
    return {"two": two, "after": rss_mb(), "loaded": len(pool.loaded())}


def child_download(folder: Path, quick: bool) -> dict:
    """RSS increase while fetching a large file from a loopback server in another process."""
    import socket

    from dashboard.config import load_settings
    from dashboard.store import fetch

    size = (20 if quick else 200) * 1024 * 1024
    served_dir = folder / "served"
    served_dir.mkdir(exist_ok=True)
    with open(served_dir / "big.keras", "wb") as handle:
        block = os.urandom(1 << 20)
        for _ in range(size // len(block)):
            handle.write(block)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(served_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import requests

        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.05)
        settings = load_settings({"MODEL_CACHE_DIR": str(folder / "dl-cache")}, secrets={})
        before = rss_mb()
        with PeakRss() as peak:
            start = time.perf_counter()
            path = fetch.fetch(f"http://127.0.0.1:{port}/big.keras", settings)
            seconds = time.perf_counter() - start
        return {
            "mb": size / 2**20,
            "before": before,
            "peak": peak.peak,
            "seconds": seconds,
            "ok": path.stat().st_size == size,
        }
    finally:
        server.terminate()
        server.wait()


def child_batch_memory(folder: Path, quick: bool) -> dict:
    """RSS increase while a 100k-row CSV goes through the whole batch path."""
    import numpy as np
    import pandas as pd

    from dashboard import service
    from dashboard.common.csv_export import safe_csv

    rows = 10_000 if quick else 100_000
    settings = settings_for(folder, store_for(folder, [build_model(folder, name="mem")]))
    served = service.load_version(settings, service.catalog(settings).default)
    service.predict_row(served, {f: 0.0 for f in FEATURES})
    raw = (
        pd.DataFrame(np.random.default_rng(0).normal(size=(rows, len(FEATURES))).round(5), columns=FEATURES)
        .to_csv(index=False)
        .encode()
    )
    before = rss_mb()
    with PeakRss() as peak:
        out = safe_csv(service.predict_csv(settings, served, raw).table)
    return {"rows": rows, "before": before, "peak": peak.peak, "csv_mb": len(raw) / 1e6, "out_mb": len(out) / 1e6}


def bench_memory(folder: Path, quick: bool) -> None:
    switching = in_child("child_switching", folder / "switch", quick)
    growth = switching["after"] - switching["two"]
    record(
        "RSS after 10 switches among 4 versions vs 2 loaded",
        "MB",
        [growth],
        None,
        "<= +50 MB",
        growth <= 50,
        ratio=f"{switching['two']:.0f} -> {switching['after']:.0f} MB, {switching['loaded']} kept",
    )
    download = in_child("child_download", folder / "download", quick)
    rise = download["peak"] - download["before"]
    record(
        f"RSS rise while downloading a {download['mb']:.0f} MB model",
        "MB",
        [rise],
        None,
        "<= 30 MB",
        rise <= 30 and download["ok"],
        ratio=f"{download['mb'] / download['seconds']:.0f} MB/s",
    )
    batch = in_child("child_batch_memory", folder / "batchmem", quick)
    added = batch["peak"] - batch["before"]
    record(
        f"RSS added by a {batch['rows']:,}-row batch",
        "MB",
        [added],
        None,
        "<= 100 MB",
        added <= 100,
        ratio=f"CSV {batch['csv_mb']:.1f} MB in, {batch['out_mb']:.1f} MB out",
    )


def child_runtime(folder: Path, quick: bool, runtime: str = "keras") -> dict:
    """Single-row and batch figures and RSS for one runtime, serving the demo store's default version."""
    import numpy as np
    import pandas as pd

    from dashboard import service
    from dashboard.common.csv_export import safe_csv
    from dashboard.config import load_settings

    settings = load_settings(
        {"MODEL_CACHE_DIR": str(folder / f"cache-{runtime}"), "MODEL_RUNTIME": runtime}, secrets={}
    )
    served = service.load_version(settings, service.catalog(settings).default)
    row = {"sepal_length": 5.0, "sepal_width": 3.4, "petal_length": 1.5, "petal_width": 0.2}
    single = timed(lambda: service.predict_row(served, row), 30 if quick else 300)
    loaded_rss = rss_mb()
    rows = 10_000 if quick else 100_000
    raw = (
        pd.DataFrame(np.random.default_rng(0).uniform(0.1, 7.0, size=(rows, 4)).round(2), columns=list(row))
        .to_csv(index=False)
        .encode()
    )
    batch = timed(lambda: safe_csv(service.predict_csv(settings, served, raw).table), 3, warmup=1)
    return {
        "single": single,
        "batch": batch,
        "rows": rows,
        "loaded_rss": loaded_rss,
        "after_rss": rss_mb(),
        "modules": sorted({m.split(".")[0] for m in sys.modules} & {"tensorflow", "keras"}),
    }


def child_lean(folder: Path, quick: bool) -> dict:
    exec(LEAN_BLOCK, {})
    return child_runtime(folder, quick, "litert")


def child_keras(folder: Path, quick: bool) -> dict:
    return child_runtime(folder, quick, "keras")


def bench_lean(folder: Path, quick: bool) -> None:
    keras_run = in_child("child_keras", folder / "keras", quick)
    lean_run = in_child("child_lean", folder / "lean", quick)
    k1 = statistics.median(keras_run["single"])
    record("lean: single row, form path, Keras runtime", "ms", [t * 1e3 for t in keras_run["single"]], None, "", True)
    record(
        "lean: single row, form path, LiteRT runtime (no TensorFlow)",
        "ms",
        [t * 1e3 for t in lean_run["single"]],
        k1 * 1e3,
        "",
        True,
    )
    kb = statistics.median(keras_run["batch"])
    rows = lean_run["rows"]
    record(
        f"lean: {rows:,}-row batch end to end, Keras runtime",
        "ms",
        [t * 1e3 for t in keras_run["batch"]],
        None,
        "",
        True,
    )
    record(
        f"lean: {rows:,}-row batch end to end, LiteRT runtime",
        "ms",
        [t * 1e3 for t in lean_run["batch"]],
        kb * 1e3,
        "",
        True,
    )
    record(
        "lean: RSS with the model loaded, Keras runtime",
        "MB",
        [keras_run["loaded_rss"]],
        None,
        "",
        True,
        ratio=f"after the batch {keras_run['after_rss']:.0f} MB",
    )
    record(
        "lean: RSS with the model loaded, LiteRT runtime",
        "MB",
        [lean_run["loaded_rss"]],
        None,
        f"<= 250 MB after a {rows:,}-row batch, TensorFlow never imported",
        lean_run["after_rss"] <= 250 and not lean_run["modules"],
        ratio=f"after the batch {lean_run['after_rss']:.0f} MB; imported: {','.join(lean_run['modules']) or 'no TF'}",
    )


def bench_stacks(venvs: list[str]) -> None:
    """Installed and compressed size of each stack's site-packages (given as venv folders)."""
    import tarfile

    for venv in venvs:
        name, _, path = venv.partition("=")
        site = next(Path(path).glob("lib/python3*/site-packages"))
        installed = sum(f.stat().st_size for f in site.rglob("*") if f.is_file() and not f.is_symlink())
        with tempfile.TemporaryFile() as handle:
            with tarfile.open(fileobj=handle, mode="w:gz", compresslevel=6) as archive:
                archive.add(site, arcname="site-packages")
            compressed = handle.tell()
        record(
            f"stack {name}: installed / compressed (tar.gz)",
            "MB",
            [installed / 2**20],
            None,
            "compressed <= 500 MB (Heroku slug)",
            compressed / 2**20 <= 500,
            ratio=f"{compressed / 2**20:.0f} MB compressed",
        )


def bench_startup(folder: Path, quick: bool) -> None:
    import socket

    import requests

    times, tf_loaded, rss = [], [], []
    for _ in range(1 if quick else 3):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_")}
        environ["MODEL_CACHE_DIR"] = str(folder / "startup-cache")
        start = time.perf_counter()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(REPO / "dashboard" / "app.py"),
                "--server.port",
                str(port),
                "--server.headless",
                "true",
            ],
            cwd=REPO,
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).text == "ok":
                        break
                except requests.RequestException:  # not listening yet, or too busy starting to answer in 1 s
                    time.sleep(0.02)
                if time.perf_counter() - start > 60:
                    raise RuntimeError("the server did not answer /_stcore/health within 60 s")
            times.append(time.perf_counter() - start)
            maps = Path(f"/proc/{process.pid}/maps").read_text()
            tf_loaded.append("libtensorflow" in maps)
            status = Path(f"/proc/{process.pid}/status").read_text()
            rss.append(int(next(l for l in status.splitlines() if l.startswith("VmRSS:")).split()[1]) / 1024)
        finally:
            process.terminate()
            process.wait(15)
    record(
        "server start to /_stcore/health",
        "s",
        times,
        None,
        "<= 5 s, TensorFlow not yet imported",
        max(times) <= 5 and not any(tf_loaded),
        ratio=f"TF imported: {'yes' if any(tf_loaded) else 'no'}, RSS {statistics.median(rss):.0f} MB",
    )


def print_table() -> bool:
    header = ("figure", "unit", "min", "median", "max", "baseline", "ratio", "target", "met")
    lines = [header]
    for name, unit, low, mid, high, base, ratio, target, met in ROWS:
        lines.append(
            (
                name,
                unit,
                f"{low:.3g}",
                f"{mid:.3g}",
                f"{high:.3g}",
                "" if base is None else f"{base:.3g}",
                ratio,
                target,
                "" if not target else ("yes" if met else "NO"),
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for i, line in enumerate(lines):
        print("  ".join(str(cell).ljust(widths[j]) for j, cell in enumerate(line)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    return all(row[-1] for row in ROWS if row[7])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (a CI smoke run)")
    parser.add_argument(
        "--only",
        choices=["single", "batch", "concurrency", "memory", "startup", "lean"],
        action="append",
        help="run only these groups",
    )
    parser.add_argument(
        "--venvs",
        nargs="*",
        default=[],
        metavar="NAME=VENV",
        help="also measure the installed and compressed size of these stacks, e.g. keras=.venv lean=.venv-lean",
    )
    args = parser.parse_args()
    groups = {
        "single": bench_single,
        "batch": bench_batch,
        "concurrency": bench_concurrency,
        "memory": bench_memory,
        "startup": bench_startup,
        "lean": bench_lean,
    }
    with tempfile.TemporaryDirectory(prefix="dashboard-bench-") as tmp:
        for name, function in groups.items():
            if args.only and name not in args.only:
                continue
            folder = Path(tmp) / name
            folder.mkdir()
            function(folder, args.quick)
    if args.venvs:
        bench_stacks(args.venvs)
    print(
        f"\nkeras-dashboard benchmark ({'quick' if args.quick else 'full'}), {os.cpu_count()} cores, "
        f"python {sys.version.split()[0]}"
    )
    every_target_met = print_table()
    print("\nall targets met" if every_target_met else "\nsome targets were NOT met (see the 'met' column)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
