"""Hostile-input figures (issues 12 and 23): time and peak memory of each case, each in a child process of its own.

Round three (issue 23) runs against a real dashboard server started per case; its outcome names the server's own
figures (RSS, answers held, seconds to refusal).

`python -m bench.hostile` prints one line per case: what happened, seconds, the child's peak RSS. The "before"
column repeats what the adversarial test measured on the code before the limits (same machine); the trickle and
many-versions cases also run their baseline here, in the same run.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

from bench.common import REPO

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BEFORE = {  # measured by the adversarial review on the code before issue 12 (2 cores, this machine)
    "wide": "57 s, 1.4 GB",
    "bomb": "accepted; peak 3.7 GB",
    "huge": "42 s, 5.3 GB",
    "trickle": "74 s",
    "upload": "1M rows / 200 MB accepted; peak 1.84 GB",
    "versions": "15.9 s per click",
    # round three (issue 23), measured by the adversarial review on the code before it
    "poison": "47% of another client's good calls failed",
    "bigjson": "49 MiB body: every call and page blocked 11 s, server 672 -> 2,738 MB",
    "explain": "100,000-row explain blocked the loop 9.5 s; a single-row call waited 11 s",
    "halfopen": "~2,250 half-open connections: unreachable for everyone, log +67 MB in 15 s",
    "float32": "1e39: JSON 500; CSV 'setosa' with empty probabilities",
}


def _server(folder: Path, **env: str):
    from tests.support import dashboard_server

    running = dashboard_server.start(
        folder, {"MODEL_MANIFEST_URL": str(REPO / "dashboard" / "demo" / "manifest.json"), "HISTORY": "off", **env}
    )
    running.wait_ready()
    return running


def _server_rss(running) -> str:
    status = Path(f"/proc/{running.process.pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return f"RSS {int(fields['VmRSS'].split()[0]) // 1024} MB (peak {int(fields['VmHWM'].split()[0]) // 1024} MB)"


ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
POISON = b'{"instances": [{"sepal_length": "\\ud800", "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}'


def case_poison(folder: Path) -> str:
    """A lone surrogate sent 20 times alongside 200 good calls, 16 at a time."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    running = _server(folder)
    try:

        def good(_):
            answer = requests.post(running.base + "/api/v1/predict", json={"instances": [ROW]}, timeout=60)
            return answer.status_code == 200 and answer.json()["predictions"][0]["prediction"] == "setosa"

        def bad(_):
            return requests.post(
                running.base + "/api/v1/predict", data=POISON, headers={"Content-Type": "application/json"}, timeout=60
            ).status_code

        with ThreadPoolExecutor(16) as pool:
            goods = [pool.submit(good, i) for i in range(200)]
            bads = [pool.submit(bad, i) for i in range(20)]
            held = sum(f.result() for f in goods)
            statuses = sorted({f.result() for f in bads})
        return f"{held}/200 good calls answered right; poisoned calls answered {statuses} (row error)"
    finally:
        running.stop()


def case_bigjson(folder: Path) -> str:
    """A 49 MiB JSON body (refused), then a 7 MiB one (allowed) with health pings during it."""
    import requests

    running = _server(folder)
    try:
        before = _server_rss(running)
        huge = b'{"instances": [' + b",".join([b"[5.1, 3.5, 1.4, 0.2]"] * 2_350_000) + b"]}"
        started = time.perf_counter()
        answer = requests.post(
            running.base + "/api/v1/predict", data=huge, headers={"Content-Type": "application/json"}, timeout=300
        )
        refused = time.perf_counter() - started
        allowed = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]] * 95_000}).encode()
        waits = []

        def send():
            requests.post(
                running.base + "/api/v1/predict",
                data=allowed,
                headers={"Content-Type": "application/json"},
                timeout=300,
            )

        worker = threading.Thread(target=send)
        worker.start()
        time.sleep(0.2)
        while worker.is_alive():
            t = time.perf_counter()
            requests.get(running.base + "/api/v1/health", timeout=60)
            waits.append(time.perf_counter() - t)
            time.sleep(0.05)
        worker.join()
        longest = max(waits) if waits else 0.0
        return (
            f"49 MiB: {answer.status_code} in {refused:.2f} s; 7 MiB allowed: health answered {len(waits)}x meanwhile, "
            f"slowest {longest * 1000:.0f} ms; server {before} -> {_server_rss(running)}"
        )
    finally:
        running.stop()


def case_explain(folder: Path) -> str:
    """explain=true on 100,000 rows (refused), then 8 explain calls of 20,000 cells with single-row calls beside."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    running = _server(folder)
    try:
        started = time.perf_counter()
        answer = requests.post(
            running.base + "/api/v1/predict?explain=true", json={"instances": [ROW] * 100_000}, timeout=300
        )
        refused = time.perf_counter() - started

        def explain(_):
            requests.post(running.base + "/api/v1/predict?explain=true", json={"instances": [ROW] * 5_000}, timeout=300)

        waits = []
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(explain, i) for i in range(8)]
            time.sleep(0.2)
            while not all(f.done() for f in futures):
                t = time.perf_counter()
                requests.post(running.base + "/api/v1/predict", json={"instances": [ROW]}, timeout=300)
                waits.append(time.perf_counter() - t)
        waits.sort()
        return (
            f"100,000 rows: {answer.status_code} in {refused:.2f} s; single-row calls during 8 explains: "
            f"p50 {waits[len(waits) // 2] * 1000:.0f} ms, max {waits[-1] * 1000:.0f} ms ({len(waits)} calls)"
        )
    finally:
        running.stop()


def case_halfopen(folder: Path) -> str:
    """2,250 connections each holding half a request, from one address."""
    import socket

    import requests

    running = _server(folder)
    held = []
    try:
        port = int(running.base.rsplit(":", 1)[1])
        for _ in range(2250):
            try:
                connection = socket.create_connection(("127.0.0.1", port), timeout=5)
                connection.sendall(b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\n")
                held.append(connection)
            except OSError:
                break
        started = time.perf_counter()
        while True:
            try:
                requests.get(running.base + "/api/v1/health", timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.2)
        reachable = time.perf_counter() - started
    finally:
        for connection in held:
            connection.close()
        log = running.stop()
    return f"reachable again after {reachable:.1f} s with {len(held):,} held open; server log {len(log) / 1024:.0f} KiB"


def case_float32(folder: Path) -> str:
    """1e39, 3.5e38 and 1e300 in the JSON API and 1e39 in a CSV."""
    import requests

    running = _server(folder)
    try:
        found = []
        for value in (1e39, 3.5e38, 1e300):
            answer = requests.post(
                running.base + "/api/v1/predict", json={"instances": [{**ROW, "sepal_width": value}]}, timeout=60
            )
            row = answer.json()["predictions"][0]
            found.append(f"{value:g}: {answer.status_code} {'row error' if row['error'] else row['prediction']}")
        csv = "sepal_length,sepal_width,petal_length,petal_width\n5.1,1e39,1.4,0.2\n"
        answer = requests.post(
            running.base + "/api/v1/predict", data=csv, headers={"Content-Type": "text/csv"}, timeout=60
        )
        found.append(f"CSV 1e39: {answer.status_code} {'row error' if 'beyond' in answer.text else 'predicted'}")
        return "; ".join(found)
    finally:
        running.stop()


def case_wide(folder: Path) -> str:
    """A 1.9 MB CSV with 200,000 columns and one row."""
    from dashboard import service

    data = (",".join(f"c{i}" for i in range(200_000)) + "\n" + ",".join("1" for _ in range(200_000)) + "\n").encode()
    try:
        service.read_csv(service.settings({"MODEL_CACHE_DIR": str(folder)}), data)
    except Exception as exc:
        return f"refused: {str(exc)[:70]}…"
    return "accepted"


def case_bomb(folder: Path) -> str:
    """A .keras whose weights member inflates about 90:1 (zeros with a little noise) to 512 MB."""
    from dashboard.loading import keras_model

    target = folder / "bomb.keras"
    with (
        zipfile.ZipFile(REPO / "dashboard" / "demo" / "iris-1.1.0.keras") as src,
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for item in src.infolist():
            if item.filename != "model.weights.h5":
                dst.writestr(item.filename, src.read(item.filename))
        with dst.open("model.weights.h5", "w", force_zip64=True) as member:
            block = bytes(1 << 20)
            for _ in range(512):
                member.write(block[:-11_000] + os.urandom(11_000))  # about 90:1
    try:
        keras_model.load("file", {"model": target})
    except Exception as exc:
        return f"refused: {str(exc)[:70]}…"
    return "accepted"


def case_huge(folder: Path) -> str:
    """A 13 KB .keras declaring a Dense layer of 100,000 × 100,000."""
    from dashboard.loading import keras_model

    source, target = REPO / "dashboard" / "demo" / "iris-1.0.0.keras", folder / "huge.keras"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                dense = [layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense"]
                dense[0]["config"]["units"] = 100_000
                dense[1]["build_config"]["input_shape"] = [None, 100_000]
                dense[1]["config"]["units"] = 100_000
                data = json.dumps(config).encode()
            elif item.filename.endswith(".h5"):
                continue
            dst.writestr(item.filename, data)
    try:
        keras_model.load("file", {"model": target})
    except Exception as exc:
        return f"refused: {str(exc)[:70]}…"
    return "accepted"


class Trickle(http.server.BaseHTTPRequestHandler):
    """A manifest sent one byte every 1.5 s (each read well within MODEL_READ_TIMEOUT=5)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = b'{"versions": []}' * 10
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for i in range(len(body)):
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                time.sleep(1.5)
        except OSError:
            pass


def case_trickle(folder: Path) -> str:
    """`versions` against a trickling manifest, MODEL_READ_TIMEOUT=5 and MODEL_DOWNLOAD_TIMEOUT=10."""
    from dashboard import service

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/manifest.json"
    settings = service.settings(
        {
            "MODEL_MANIFEST_URL": url,
            "MODEL_READ_TIMEOUT": "5",
            "MODEL_CACHE_DIR": str(folder),
            "MODEL_DOWNLOAD_TIMEOUT": "10",
        }
    )
    try:
        service.catalog(settings)
    except Exception as exc:
        return f"refused: {str(exc)[:70]}…"
    finally:
        server.shutdown()
    return "accepted"


def case_upload(folder: Path) -> str:
    """The largest upload the defaults accept (200,000 rows of the demo's 4 features + species), predicted."""
    import numpy as np

    from dashboard import service

    rng = np.random.default_rng(0)
    rows = 200_000
    lines = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    values = rng.uniform(0.1, 8, size=(rows, 4))
    lines += [f"{a:.2f},{b:.2f},{c:.2f},{d:.2f},setosa" for a, b, c, d in values]
    data = ("\n".join(lines) + "\n").encode()
    settings = service.settings({"MODEL_CACHE_DIR": str(folder)})
    served = service.load_version(settings, service.catalog(settings).default)
    result = service.predict_csv(settings, served, data)
    return f"{result.predicted:,} rows predicted from {len(data) / 2**20:.1f} MiB"


def case_versions(folder: Path) -> str:
    """Tags for 5,000 versions and 500 aliases: the old loop (baseline) and Catalog.tags."""
    from packaging.version import Version

    from dashboard.store.manifest import parse_manifest
    from dashboard.store.versions import Catalog

    versions = [{"version": f"1.{i}", "url": f"m{i}.keras"} for i in range(5000)]
    aliases = {f"a{i}": f"1.{i}" for i in range(500)}
    found, clean, _ = parse_manifest({"versions": versions, "aliases": aliases}, str(folder / "manifest.json"))
    catalog = Catalog("m", "s", tuple(sorted(found, key=lambda v: v.version, reverse=True)), clean, found[0])
    started = time.perf_counter()
    old = {label: [] for label in catalog.labels}
    for alias, target in catalog.aliases.items():  # the sidebar's loop before issue 12
        for v in catalog.versions:
            if v.version == Version(target):
                old[v.label].append(alias)
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    new = catalog.tags
    elapsed = time.perf_counter() - started
    same = all(set(old[k]) <= set(new[k]) for k in old)
    return f"tags in {elapsed * 1e3:.1f} ms (old loop {baseline:.1f} s, same aliases: {same})"


CASES = {
    "wide": case_wide,
    "bomb": case_bomb,
    "huge": case_huge,
    "trickle": case_trickle,
    "upload": case_upload,
    "versions": case_versions,
    "poison": case_poison,
    "bigjson": case_bigjson,
    "explain": case_explain,
    "halfopen": case_halfopen,
    "float32": case_float32,
}


def child(name: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        outcome = CASES[name](Path(folder))
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"outcome": outcome, "seconds": seconds, "peak": peak}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", choices=sorted(CASES))
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    print(f"{'case':<9} {'seconds':>8} {'peak RSS':>9}  outcome  [before: adversarial review]")
    print("(the version-cycling memory figure is bench/versions.py's; history kept through SIGTERM is a test)")
    for name in args.only or CASES:
        command = [sys.executable, "-m", "bench.hostile", "--child", name]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            print(f"{name:<9} failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else '?'}")
            continue
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{name:<9} {figures['seconds']:>8.2f} {figures['peak']:>6.0f} MB  {figures['outcome']}  "
            f"[before: {BEFORE[name]}]"
        )


if __name__ == "__main__":
    main()
