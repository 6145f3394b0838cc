"""Hostile-input figures (issue 12): time and peak memory of each case, each in a child process of its own.

`python bench/hostile.py` prints one line per case: what happened, seconds, the child's peak RSS. The "before"
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BEFORE = {  # measured by the adversarial review on the code before issue 12 (2 cores, this machine)
    "wide": "57 s, 1.4 GB",
    "bomb": "accepted; peak 3.7 GB",
    "huge": "42 s, 5.3 GB",
    "trickle": "74 s",
    "upload": "1M rows / 200 MB accepted; peak 1.84 GB",
    "versions": "15.9 s per click",
}


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
    from dashboard import loader

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
        loader.load("file", {"model": target})
    except Exception as exc:
        return f"refused: {str(exc)[:70]}…"
    return "accepted"


def case_huge(folder: Path) -> str:
    """A 13 KB .keras declaring a Dense layer of 100,000 × 100,000."""
    from dashboard import loader

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
        loader.load("file", {"model": target})
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

    from dashboard.manifest import parse_manifest
    from dashboard.versions import Catalog

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
    for name in args.only or CASES:
        done = subprocess.run([sys.executable, __file__, "--child", name], capture_output=True, text=True, timeout=900)
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
