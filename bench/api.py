"""HTTP API benchmark (issues 13 and 25): `python -m bench.api [--quick] [--peers auto|yes|no]`. Prints figures, each
beside its target and the baselines measured in the same run: the hand-written FastAPI app (the floor), BentoML and
MLflow's scoring server (bench/peers.py builds their venvs; not with --quick unless --peers yes), and the seed-style
Flask app.

It starts the dashboard on the demo store exactly as the Procfile does, and the classic hand-rolled alternative:
a Flask app with `POST /predict` calling `model.predict` per request, under gunicorn (1 worker, 4 threads), its
model fetched from MODEL_URL once at start. Load comes from `hey` (Debian's package) over loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench import peers
from bench.common import REPO, rss_mb
from tests.support import dashboard_server
from tests.support.helpers import CHROMIUM, CHROMIUM_FLAGS, DEMO, free_port

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
FLASK_APP = """
import os, tempfile, numpy as np, requests, keras
from flask import Flask, jsonify, request

path = os.path.join(tempfile.mkdtemp(), "model.keras")
with open(path, "wb") as handle:
    handle.write(requests.get(os.environ["MODEL_URL"], timeout=60).content)
model = keras.models.load_model(path)
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
app = Flask(__name__)

@app.post("/predict")
def predict():
    rows = request.get_json()["instances"]
    x = np.array([[row[f] for f in FEATURES] for row in rows], dtype="float32")
    return jsonify({"predictions": model.predict(x, verbose=0).tolist()})
"""
# The floor a user could write in 30 lines (issue 25): FastAPI + uvicorn, the model loaded at import,
# predict_on_batch on the event loop. Same Keras file, same TensorFlow, same answers' numbers.
FASTAPI_APP = """
import os, tempfile, numpy as np, requests, keras
from fastapi import FastAPI, Request

path = os.path.join(tempfile.mkdtemp(), "model.keras")
with open(path, "wb") as handle:
    handle.write(requests.get(os.environ["MODEL_URL"], timeout=60).content)
model = keras.models.load_model(path)
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
LABELS = ["setosa", "versicolor", "virginica"]
app = FastAPI()

@app.post("/predict")
async def predict(request: Request):
    rows = (await request.json())["instances"]
    x = np.array([[row[f] for f in FEATURES] for row in rows], dtype="float32")
    out = model.predict_on_batch(x)
    return {"predictions": [
        {"prediction": LABELS[int(p.argmax())], "probabilities": dict(zip(LABELS, p.tolist()))} for p in out
    ]}
"""
NAMES = list(ROW)
FIGURES: list[tuple[str, str, str, str]] = []  # (figure, value, baseline, target and met)


def record(figure: str, value: str, baseline: str = "", target: str = "") -> None:
    FIGURES.append((figure, value, baseline, target))
    print(f"{figure:<58} {value:>16}  {baseline:<28} {target}", flush=True)


def hey(
    url: str,
    seconds: float,
    concurrency: int,
    body: Path,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> dict:
    """hey's requests/s and latency percentiles (ms) for POSTs of body."""
    extra = [arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}: {value}")]
    done = subprocess.run(
        [
            "hey",
            "-z",
            f"{seconds}s",
            "-c",
            str(concurrency),
            "-m",
            "POST",
            "-T",
            content_type,
            *extra,
            "-D",
            str(body),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    out = done.stdout
    codes = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", out))

    def number(pattern: str, scale: float = 1.0) -> float:
        """A figure of hey's report; NaN when hey printed none (no answer finished within the run)."""
        found = re.search(pattern, out)
        return float(found.group(1)) * scale if found else float("nan")

    return {
        "rps": number(r"Requests/sec:\s+([\d.]+)"),
        "p50": number(r"50% in ([\d.]+) secs", 1e3),
        "p99": number(r"99% in ([\d.]+) secs", 1e3),
        "codes": codes,
    }


def keepalive(url: str, count: int, body: dict, headers: dict[str, str] | None = None) -> list[float]:
    with requests.Session() as session:
        times = []
        for _ in range(count):
            started = time.perf_counter()
            session.post(url, json=body, headers=headers, timeout=30).raise_for_status()
            times.append((time.perf_counter() - started) * 1e3)
    return times


def start_flask(folder: Path) -> tuple[subprocess.Popen, str, subprocess.Popen]:
    """The seed-style app under gunicorn, its model from a static file server (MODEL_URL)."""
    files_port = free_port()
    files = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(files_port), "--bind", "127.0.0.1", "--directory", str(DEMO)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    command = [sys.executable, "-m", "gunicorn", "-w", "1", "--threads", "4", "-b", "127.0.0.1:{port}", "seed_app:app"]
    flask, base = start_peer(folder, "seed_app.py", FLASK_APP, command, files_port)
    return flask, base, files


def start_fastapi(folder: Path, files_port: int) -> tuple[subprocess.Popen, str]:
    """The hand-written FastAPI app under uvicorn (one process), its model from the static file server."""
    command = [sys.executable, "-m", "uvicorn", "fastapi_app:app", "--host", "127.0.0.1", "--port", "{port}"]
    return start_peer(
        folder, "fastapi_app.py", FASTAPI_APP, [*command, "--log-level", "warning", "--no-access-log"], files_port
    )


def start_peer(folder: Path, name: str, code: str, command: list[str], files_port: int) -> tuple[subprocess.Popen, str]:
    """Another app answering POST /predict ({port} in command is its port), its model fetched from MODEL_URL at
    start; returned once it answers."""
    port = free_port()
    (folder / name).write_text(code)
    environ = dict(os.environ, MODEL_URL=f"http://127.0.0.1:{files_port}/iris-1.1.0.keras", TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(
        [part.format(port=port) for part in command],
        cwd=folder,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            requests.post(base + "/predict", json={"instances": [ROW]}, timeout=30).raise_for_status()
            return process, base
        except requests.RequestException:
            time.sleep(0.5)
    process.terminate()
    raise RuntimeError(f"{name} did not start")


def bodies(rows: int) -> dict[str, dict]:
    """The same rows in each door's own format: ours (rows as objects), MLflow's dataframe_split, TF Serving's lists."""
    import numpy as np

    values = np.round(np.random.default_rng(1).uniform([4.3, 2.0, 1.0, 0.1], [7.9, 4.4, 6.9, 2.5], (rows, 4)), 1)
    lists = values.tolist()
    objects = [dict(zip(NAMES, row)) for row in lists]
    return {
        "native": {"instances": objects},
        "invocations": {"dataframe_split": {"columns": NAMES, "data": lists}},
        "tf-serving": {"instances": lists},
        "open-inference": {"inputs": [{"name": "input", "shape": [rows, 4], "datatype": "FP32", "data": lists}]},
        # an assistant's tool call (stateless JSON-RPC over streamable HTTP); a tool takes at most 1,000 rows
        "mcp": {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "predict", "arguments": {"rows": objects[:1000]}},
        },
    }


DOOR_HEADERS = {"mcp": {"Accept": "application/json, text/event-stream"}}  # streamable HTTP asks for both


def versus_fastapi(
    base: str, pid: int, fastapi: str, fastapi_pid: int, folder: Path, quick: bool, others: list[peers.Peer]
) -> None:
    """Our three JSON doors beside the hand-written FastAPI app (and BentoML, MLflow when running), interleaved
    rounds (issue 25's ratios)."""
    doors = {
        "native": base + "/api/v1/predict",
        "invocations": base + "/invocations",
        "tf-serving": base + "/v1/models/iris-classifier:predict",
        "open-inference": base + "/v2/models/iris-classifier/infer",
        "mcp": base + "/mcp",
    }
    one, big = bodies(1), bodies(10_000)
    theirs_one, theirs_big = {"instances": one["native"]["instances"]}, {"instances": big["native"]["instances"]}
    rounds, seconds, count = (1, 2, 60) if quick else (3, 6, 400)
    results: dict[str, dict[str, list[float]]] = {}

    def add(name: str, figure: str, value: float) -> None:
        results.setdefault(name, {}).setdefault(figure, []).append(value)

    for _ in range(rounds):
        for name, url, pid_, one_body, big_body in [
            ("fastapi", fastapi + "/predict", fastapi_pid, theirs_one, theirs_big),
            *[(door, doors[door], pid, one[door], big[door]) for door in doors],
            *[(peer.name, peer.url, peer.pid, one[peer.body], big[peer.body]) for peer in others],
        ]:
            headers = DOOR_HEADERS.get(name)
            add(name, "p50", statistics.median(keepalive(url, count, one_body, headers)))
            path = folder / f"{name}.json"
            path.write_text(json.dumps(one_body))
            before = peers.tree_cpu_seconds(pid_)
            loaded = hey(url, seconds, 32, path, headers=headers)
            add(name, "rps", loaded["rps"])
            add(name, "cpu", (peers.tree_cpu_seconds(pid_) - before) / max(1.0, loaded["rps"] * seconds) * 1e3)
            add(name, "big", min(keepalive(url, 1 if quick else 3, big_body, headers)))
    floor = {figure: statistics.median(values) for figure, values in results["fastapi"].items()}
    for door in [*doors, *(peer.name for peer in others)]:
        mine = {figure: statistics.median(values) for figure, values in results[door].items()}
        record(
            f"{door}: c=32 single-row req/s vs hand-written FastAPI",
            f"{mine['rps']:.0f}/s",
            f"FastAPI {floor['rps']:.0f}/s ({mine['rps'] / floor['rps']:.2f}x)",
            f">= 1.0x: {'met' if mine['rps'] >= floor['rps'] else 'NOT met'}",
        )
        record(
            f"{door}: c=1 keep-alive p50",
            f"{mine['p50']:.2f} ms",
            f"FastAPI {floor['p50']:.2f} ms ({mine['p50'] / floor['p50']:.2f}x)",
            f"<= 1.5x: {'met' if mine['p50'] <= 1.5 * floor['p50'] else 'NOT met'}",
        )
        if door == "mcp":  # a tool call takes at most 1,000 rows: no 10,000-row figure to set beside FastAPI's
            record(
                "mcp: one 1,000-row tool call", f"{mine['big'] / 1e3:.3f} s", "(a tool takes 1,000 rows at most)", ""
            )
        else:
            record(
                f"{door}: one 10,000-row JSON request",
                f"{mine['big'] / 1e3:.3f} s",
                f"FastAPI {floor['big'] / 1e3:.3f} s ({mine['big'] / floor['big']:.2f}x)",
                f"<= 1.5x: {'met' if mine['big'] <= 1.5 * floor['big'] else 'NOT met'}",
            )
        record(
            f"{door}: server CPU per single-row request", f"{mine['cpu']:.2f} ms", f"FastAPI {floor['cpu']:.2f} ms", ""
        )


def wait_ready(base: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        answer = requests.get(base + "/api/v1/ready", timeout=5)
        if answer.status_code == 200 and answer.headers.get("content-type", "").startswith("application/json"):
            return
        time.sleep(0.2)
    raise RuntimeError("the dashboard's default version did not load")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test of the bench itself)")
    parser.add_argument(
        "--peers",
        choices=["auto", "yes", "no"],
        default="auto",
        help="BentoML and MLflow in venvs built by the bench (auto: yes unless --quick)",
    )
    args = parser.parse_args()
    if shutil.which("hey") is None:
        sys.exit("hey is not installed: apt-get install hey")
    seconds = 2 if args.quick else 8
    folder = Path(tempfile.mkdtemp(prefix="api-bench-"))
    body = folder / "row.json"
    body.write_text(json.dumps({"instances": [ROW]}))
    print(f"{'figure':<58} {'value':>16}  {'baseline (same run)':<28} target")
    dashboard = dashboard_server.start(folder, {})
    flask = files = fastapi = None
    others: list[peers.Peer] = []
    try:
        wait_ready(dashboard.base)
        predict = dashboard.base + "/api/v1/predict"
        for _ in range(3):  # warm the compiled call and the connection pool
            keepalive(predict, 20, {"instances": [ROW]})
        flask, flask_base, files = start_flask(folder)
        fastapi, fastapi_base = start_fastapi(folder, int(files.args[3]))
        if args.peers == "yes" or (args.peers == "auto" and not args.quick):
            for name in peers.RELEASES:
                try:
                    others.append(peers.start(name, folder))
                except Exception as exc:  # a peer that cannot be built or started is a skip, printed with why
                    record(f"{name} {peers.RELEASES[name]}", "skipped", str(exc)[:120], "")
        else:
            record("BentoML and MLflow's scoring server", "skipped", "--quick (or --peers no)", "")
        versus_fastapi(dashboard.base, dashboard.process.pid, fastapi_base, fastapi.pid, folder, args.quick, others)
        for peer in others:  # they would load the machine for the figures that follow
            peer.stop()
        seed_one = keepalive(flask_base + "/predict", 20 if args.quick else 60, {"instances": [ROW]})
        ours_one = keepalive(predict, 100 if args.quick else 500, {"instances": [ROW]})
        p50 = statistics.median(ours_one)
        record(
            "single-row JSON, concurrency 1, keep-alive: p50",
            f"{p50:.2f} ms",
            f"seed app {statistics.median(seed_one):.1f} ms",
            f"<= 5 ms: {'met' if p50 <= 5 else 'NOT met'}",
        )
        health = keepalive_get(dashboard.base + "/_stcore/health", 100)
        record(
            "Streamlit's own /_stcore/health, keep-alive: p50",
            f"{statistics.median(health):.2f} ms",
            "44 ms before the TCP_NODELAY fix",
            "",
        )
        seed = hey(flask_base + "/predict", seconds, 32, body)
        ours = hey(predict, seconds, 32, body)
        ratio = ours["rps"] / seed["rps"] if seed["rps"] else float("nan")  # NaN: the seed app answered nothing
        record(
            "single-row JSON, concurrency 32: requests/s",
            f"{ours['rps']:.0f}/s",
            f"seed app {seed['rps']:.1f}/s",
            f">= 1,000/s: {'met' if ours['rps'] >= 1000 else 'NOT met'}",
        )
        record(
            "  p50 / p99 at concurrency 32",
            f"{ours['p50']:.1f} / {ours['p99']:.1f} ms",
            f"seed app {seed['p50']:.0f} / {seed['p99']:.0f} ms",
            f"p99 <= 100 ms: {'met' if ours['p99'] <= 100 else 'NOT met'}",
        )
        record(
            "  ratio to the seed-style Flask app",
            f"{ratio:.0f}x",
            "",
            f">= 100x: {'met' if ratio >= 100 else 'NOT met'}",
        )
        record(
            "  answers other than 200", str({k: v for k, v in ours["codes"].items() if k != "200"} or "none"), "", ""
        )
        csv_figures(dashboard.base, folder, args.quick)
        memory_figures(dashboard, predict, body, args.quick)
        page_under_load(dashboard.base, predict, body, seconds)
    finally:
        for peer in others:
            peer.stop()
        dashboard.stop()
        for process in (flask, files, fastapi):
            if process is not None:
                process.terminate()
                process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def keepalive_get(url: str, count: int) -> list[float]:
    with requests.Session() as session:
        times = []
        for _ in range(count):
            started = time.perf_counter()
            session.get(url, timeout=30)
            times.append((time.perf_counter() - started) * 1e3)
    return times


def csv_figures(base: str, folder: Path, quick: bool) -> None:
    """A large text/csv request end to end, beside the CLI on the same file."""
    import numpy as np

    rows = 20_000 if quick else 100_000
    rng = np.random.default_rng(0)
    values = rng.uniform(0.1, 8, size=(rows, 4))
    path = folder / "big.csv"
    path.write_text(
        "sepal_length,sepal_width,petal_length,petal_width\n"
        + "\n".join(f"{a:.2f},{b:.2f},{c:.2f},{d:.2f}" for a, b, c, d in values)
        + "\n"
    )
    data = path.read_bytes()
    timings = []
    for _ in range(1 if quick else 3):
        started = time.perf_counter()
        answer = requests.post(base + "/api/v1/predict", data=data, headers={"Content-Type": "text/csv"}, timeout=300)
        answer.raise_for_status()
        timings.append(time.perf_counter() - started)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_")}
    environ["MODEL_CACHE_DIR"] = str(folder / "cli-cache")
    cli = []
    for _ in range(1 if quick else 3):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "dashboard", "predict", "--input", str(path), "--output", str(folder / "out.csv")],
            cwd=REPO,
            env=environ,
            check=True,
            capture_output=True,
        )
        cli.append(time.perf_counter() - started)
    ours, theirs = min(timings), min(cli)
    record(
        f"{rows:,}-row text/csv request end to end",
        f"{ours:.2f} s",
        f"CLI {theirs:.2f} s (with start-up)",
        f"<= 1.5x CLI: {'met' if ours <= 1.5 * theirs else 'NOT met'} ({ours / theirs:.2f}x)",
    )


def memory_figures(dashboard, predict: str, body: Path, quick: bool) -> None:
    """RSS of the server before and after 10,000 requests."""
    pid = dashboard.process.pid
    count = 2_000 if quick else 100_000
    before = rss_mb(pid)
    subprocess.run(
        ["hey", "-n", str(count), "-c", "16", "-m", "POST", "-T", "application/json", "-D", str(body), predict],
        capture_output=True,
        timeout=300,
    )
    after = rss_mb(pid)
    record(
        f"server RSS over {count:,} requests",
        f"{before:.0f} -> {after:.0f} MB",
        "",
        f"flat (< +20 MB): {'met' if after - before < 20 else 'NOT met'}",
    )


def page_under_load(base: str, predict: str, body: Path, seconds: float) -> None:
    """A browser session's form prediction while hey loads the API (Chromium, when installed)."""
    if not Path("/usr/bin/chromium").exists():
        record("dashboard form prediction under API load", "skipped", "/usr/bin/chromium not installed", "")
        return
    from playwright.sync_api import expect, sync_playwright

    load = threading.Thread(target=hey, args=(predict, seconds + 20, 32, body), daemon=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(base)
        expect(page.get_by_role("button", name="Predict", exact=True)).to_be_visible(timeout=60_000)
        load.start()
        time.sleep(1)
        timings = []
        for length, width in [("1.0", "0.2"), ("6.5", "2.3")] * 3:  # setosa, virginica: the answer changes
            page.get_by_role("spinbutton", name="petal_length (cm)").fill(length)
            page.get_by_role("spinbutton", name="petal_width (cm)").fill(width)
            shown = page.get_by_test_id("stMetricValue").all_inner_texts()
            started = time.perf_counter()
            page.get_by_role("button", name="Predict", exact=True).click()
            page.wait_for_function(
                "(before) => { const m = document.querySelector('[data-testid=stMetricValue]');"
                " return m && m.innerText !== before; }",
                arg=shown[0] if shown else "",
                timeout=30_000,
            )
            timings.append((time.perf_counter() - started) * 1e3)
        browser.close()
    record(
        "dashboard form prediction while the API is under load",
        f"{statistics.median(timings):.0f} ms p50",
        f"max {max(timings):.0f} ms",
        "answers (no target)",
    )


if __name__ == "__main__":
    main()
