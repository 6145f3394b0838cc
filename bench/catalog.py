"""Memory while a catalog's models are cycled (issue 27): `python -m bench.catalog [--quick] [--minutes M]`.

A store of 5 models x 3 versions (Keras MLPs of 0.2 to 2.6 MB of weights each, 16 MB in all), published with
`publish --model`, served by the real server (`streamlit run dashboard/app.py`, HISTORY=off) with MODEL_MEMORY_MB=12,
so about half the versions fit and every pass through the 15 loads and releases most of them. A client predicts
one row from each (model, version) in turn for M minutes (10; --quick: 0.25), waiting through the 503s while a
version loads. The baseline, in the same run and server: the default model alone for M/5 minutes first.

Prints the server's RSS every tenth of the run, the rise from the end of the first pass to the end (MB) and its
slope (MB per minute, least squares), the loads counted in the server log, and the peak RSS.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPO, rss_mb

MODELS = {"alpha": 64, "bravo": 128, "charlie": 256, "delta": 384, "echo": 512}  # hidden units: weights grow with it
VERSIONS = ("1.0.0", "1.1.0", "2.0.0")
FEATURES = 512
MEMORY_MB = 12


def build_store(folder: Path) -> Path:
    """5 models x 3 versions published with --model into folder/store; returns the catalog's path."""
    import keras

    from dashboard.service.publish import PublishOptions, publish

    for name, units in MODELS.items():
        for i, version in enumerate(VERSIONS):
            keras.utils.set_random_seed(i)
            inputs = keras.Input((FEATURES,), name="features")
            hidden = keras.layers.Dense(units * (i + 1) // 2 + units, activation="relu")(inputs)
            model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
            path = folder / f"{name}-{version}.keras"
            model.save(path)
            publish(path, version, str(folder / "store"), PublishOptions(model_name=name, description=f"{units} units"))
    return folder / "store" / "catalog.json"


def start_server(folder: Path, catalog: Path) -> tuple[subprocess.Popen, str, Path]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "HISTORY", "DATABASE_URL"))}
    environ.update(
        MODEL_CATALOG_URL=str(catalog),
        MODEL_MEMORY_MB=str(MEMORY_MB),
        MODEL_CACHE_DIR=str(folder / "cache"),
        HISTORY="off",
    )
    log = folder / "server.log"
    command = [sys.executable, "-m", "streamlit", "run", str(REPO / "dashboard" / "app.py")]
    command += ["--server.port", str(port), "--server.headless", "true"]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=REPO, env=environ, stdout=out, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}", log


def predict(session, base: str, model: str, version: str) -> None:
    """One row from (model, version); waits through 503 while the version loads."""
    row = {"instances": [[0.1] * FEATURES]}
    for _ in range(600):
        answer = session.post(f"{base}/api/v1/predict?model={model}&version={version}", json=row, timeout=60)
        if answer.status_code == 200:
            return
        if answer.status_code != 503:
            raise RuntimeError(f"{model} {version}: HTTP {answer.status_code} {answer.text[:300]}")
        time.sleep(0.05)
    raise RuntimeError(f"{model} {version} never loaded")


def slope(samples: list[tuple[float, float]]) -> float:
    """Least-squares MB per minute of (seconds, MB) samples."""
    n = len(samples)
    if n < 2:
        return float("nan")
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    den = sum((t - mean_t) ** 2 for t, _ in samples)
    return 60 * sum((t - mean_t) * (m - mean_m) for t, m in samples) / den if den else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of a minute of cycling (the figures are rough)")
    parser.add_argument("--minutes", type=float, help="minutes of cycling (default 10; --quick 0.5)")
    args = parser.parse_args()
    minutes = args.minutes or (0.25 if args.quick else 10.0)
    import requests

    folder = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    started = time.perf_counter()
    catalog = build_store(folder)
    print(f"store: {len(MODELS)} models x {len(VERSIONS)} versions published in {time.perf_counter() - started:.1f} s")
    process, base, log = start_server(folder, catalog)
    try:
        session = requests.Session()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if session.get(base + "/api/v1/ready", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        else:
            raise RuntimeError("the server was not ready within 120 s")
        baseline_end = time.monotonic() + 60 * minutes / 5
        baseline = []
        while time.monotonic() < baseline_end:
            predict(session, base, "alpha", "2.0.0")
            baseline.append(rss_mb(process.pid))
        print(
            f"baseline (default model only, {minutes / 5:.1f} min, {len(baseline):,} requests): "
            f"RSS {baseline[0]:.0f} -> {baseline[-1]:.0f} MB"
        )
        pairs = [(m, v) for v in VERSIONS for m in MODELS]
        first_pass_end = None
        samples: list[tuple[float, float]] = []
        cycle_start = time.monotonic()
        end = cycle_start + 60 * minutes
        next_print, i = 0.0, 0
        while time.monotonic() < end:
            model, version = pairs[i % len(pairs)]
            predict(session, base, model, version)
            i += 1
            now = time.monotonic() - cycle_start
            if i == len(pairs):
                first_pass_end = (now, rss_mb(process.pid))
            samples.append((now, rss_mb(process.pid)))
            if now >= next_print:
                print(f"rss at {now:6.0f} s ({i:,} requests): {samples[-1][1]:.0f} MB", flush=True)
                next_print += 6 * minutes
        text = log.read_text(errors="replace")
        loads = len(re.findall(r"ready for the API after", text))
        released = len(re.findall(r"released version", text))
        refused = len(re.findall(r"needs about", text))
        after_first = [s for s in samples if first_pass_end and s[0] >= first_pass_end[0]]
        print(f"requests: {i:,} over {minutes:g} min ({i // len(pairs):,} passes over {len(pairs)} versions)")
        print(f"loads {loads:,}, releases {released:,}, refused {refused}")
        if first_pass_end is not None:
            print(
                f"RSS after the first pass {first_pass_end[1]:.0f} MB -> end {samples[-1][1]:.0f} MB "
                f"(rise {samples[-1][1] - first_pass_end[1]:+.1f} MB); slope {slope(after_first):+.2f} MB/min"
            )
        print(
            f"peak RSS {max(m for _, m in samples):.0f} MB; baseline end {baseline[-1]:.0f} MB "
            f"(cycling costs {samples[-1][1] - baseline[-1]:+.0f} MB over one model)"
        )
        print(
            f"MODEL_MEMORY_MB={MEMORY_MB}: log says "
            + (re.search(r"loaded models may take [^\n]*", text) or ["(no statement)"])[0]
        )
    finally:
        process.terminate()
        process.wait(15)


if __name__ == "__main__":
    main()
