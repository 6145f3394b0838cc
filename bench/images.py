"""Image model benchmark (issue 26): `python -m bench.images [--quick]`. Prints each figure beside the floor measured
in the same run:

- the CLI on a folder of 640×480 JPEGs to a 96×96 RGB CNN, end to end (process start, TensorFlow import, model
  load, decode, predict, CSV) against the floor: one process doing the same with Pillow decode + resize and one
  batched `predict_on_batch`; interleaved rounds; peak memory (the child's max RSS) of both at two folder sizes;
- the API's single-image request (raw image/jpeg body), c=1 keep-alive p50, against a hand-written FastAPI image
  endpoint (Pillow + `predict_on_batch`), interleaved rounds;
- the occlusion map of one image: forward passes and milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

from bench.common import REPO
from tests.support import dashboard_server
from tests.support.helpers import free_port

SIZE = 96
FLOOR = """
import csv, sys, numpy as np, keras
from pathlib import Path
from PIL import Image

model = keras.models.load_model(sys.argv[1])
files = sorted(p for p in Path(sys.argv[2]).iterdir() if p.is_file())
pixels = np.stack([np.asarray(Image.open(p).convert("RGB").resize((96, 96), Image.Resampling.BILINEAR),
                              dtype=np.float32) for p in files])
out = model.predict_on_batch(pixels)
with open(sys.argv[3], "w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(["file", "prediction", *[f"probability_{k}" for k in range(out.shape[1])]])
    for path, row in zip(files, out):
        writer.writerow([path.name, int(row.argmax()), *row.tolist()])
"""
FASTAPI_IMAGES = """
import io, os, numpy as np, keras
from fastapi import FastAPI, Request
from PIL import Image

model = keras.models.load_model(os.environ["MODEL_PATH"])
LABELS = [str(k) for k in range(5)]
app = FastAPI()

@app.post("/predict")
async def predict(request: Request):
    image = Image.open(io.BytesIO(await request.body())).convert("RGB").resize((96, 96), Image.Resampling.BILINEAR)
    out = model.predict_on_batch(np.asarray(image, dtype=np.float32)[None])[0]
    best = LABELS[int(out.argmax())]
    return {"predictions": [{"prediction": best, "probabilities": dict(zip(LABELS, out.tolist()))}]}
"""


def record(figure: str, value: str, baseline: str = "", target: str = "") -> None:
    print(f"{figure:<58} {value:>16}  {baseline:<30} {target}", flush=True)


def build(folder: Path, count: int) -> tuple[Path, Path, Path]:
    """(a 96×96 RGB CNN's .keras file, its published store's manifest, a folder of `count` 640×480 JPEGs)."""
    import keras
    from PIL import Image

    from dashboard.config import load_settings
    from dashboard.service.publish import publish

    keras.utils.set_random_seed(5)
    x = inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(x)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(x))
    path = folder / "cnn.keras"
    model.save(path)
    settings = load_settings({"MODEL_CACHE_DIR": str(folder / "cache")}, secrets={})
    publish(path, "1.0.0", str(folder / "store"), settings=settings)
    images = folder / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((640, 480), Image.Resampling.BICUBIC).save(images / f"{i:05d}.jpg", quality=90)
    return path, folder / "store" / "manifest.json", images


def timed(command: list[str], environ: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, the child's peak RSS in MB) of one command."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command[:4]} failed: {process.stderr.read().decode()[-500:]}")
    return seconds, usage.ru_maxrss / 1024


def cli_versus_floor(folder: Path, model: Path, manifest: Path, images: Path, rounds: int) -> None:
    environ = dict(os.environ, MODEL_MANIFEST_URL=str(manifest), MODEL_CACHE_DIR=str(folder / "cache"))
    environ |= {"HISTORY": "off", "TF_CPP_MIN_LOG_LEVEL": "3"}
    (folder / "floor.py").write_text(FLOOR)
    ours_cmd = [sys.executable, "-m", "dashboard", "predict", "--input", str(images), "--output", str(folder / "o.csv")]
    floor_cmd = [sys.executable, str(folder / "floor.py"), str(model), str(images), str(folder / "f.csv")]
    timed(ours_cmd, environ)  # warm: the version's cache, the page cache of the files
    ours, floor, ours_rss, floor_rss = [], [], [], []
    for _ in range(rounds):
        for runs, rss, command in ((floor, floor_rss, floor_cmd), (ours, ours_rss, ours_cmd)):
            seconds, peak = timed(command, environ)
            runs.append(seconds)
            rss.append(peak)
    count = len(list(images.iterdir()))
    a, b = statistics.median(ours), statistics.median(floor)
    record(
        f"CLI: {count:,} JPEGs 640×480 -> 96×96 CNN, end to end",
        f"{a:.2f} s",
        f"floor {b:.2f} s ({a / b:.2f}x)",
        f"<= 1.3x: {'met' if a <= 1.3 * b else 'NOT met'}",
    )
    record("  peak memory (max RSS)", f"{max(ours_rss):.0f} MB", f"floor {max(floor_rss):.0f} MB", "")


def memory_by_folder_size(folder: Path, manifest: Path, images: Path, small: int) -> None:
    """Peak RSS of the CLI on `small` images and on all of them: bounded by a chunk, not the folder."""
    subset = folder / "subset"
    subset.mkdir()
    for path in sorted(images.iterdir())[:small]:
        os.link(path, subset / path.name)  # a hard link: a symlink leaving the folder is skipped
    environ = dict(os.environ, MODEL_MANIFEST_URL=str(manifest), MODEL_CACHE_DIR=str(folder / "cache"))
    environ |= {"HISTORY": "off", "TF_CPP_MIN_LOG_LEVEL": "3"}
    peaks = {}
    for source in (subset, images):
        command = [sys.executable, "-m", "dashboard", "predict", "--input", str(source), "--output"]
        command.append(str(folder / "m.csv"))
        peaks[len(list(source.iterdir()))] = timed(command, environ)[1]
    (few, low), (many, high) = sorted(peaks.items())
    record(f"  CLI peak memory, {few:,} vs {many:,} images", f"{low:.0f} / {high:.0f} MB", "", "bounded by a chunk")


def api_versus_fastapi(folder: Path, model: Path, manifest: Path, images: Path, count: int, rounds: int) -> None:
    (folder / "fastapi_images.py").write_text(FASTAPI_IMAGES)
    port = free_port()
    environ = dict(os.environ, MODEL_PATH=str(model), TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "uvicorn", "fastapi_images:app", "--host", "127.0.0.1", "--port", str(port)]
    theirs = subprocess.Popen(
        [*command, "--log-level", "warning", "--no-access-log"],
        cwd=folder,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    (folder / "server").mkdir()
    server = dashboard_server.start(folder / "server", {"MODEL_MANIFEST_URL": str(manifest), "HISTORY": "off"})
    try:
        server.wait_ready()
        body = sorted(images.iterdir())[0].read_bytes()
        urls = {"ours": server.base + "/api/v1/predict", "fastapi": f"http://127.0.0.1:{port}/predict"}
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.post(urls["fastapi"], data=body, timeout=30).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        times: dict[str, list[float]] = {"ours": [], "fastapi": []}
        for _ in range(rounds):
            for name, url in urls.items():
                with requests.Session() as session:
                    for i in range(count + 5):
                        started = time.perf_counter()
                        answer = session.post(url, data=body, headers={"Content-Type": "image/jpeg"}, timeout=30)
                        answer.raise_for_status()
                        if i >= 5:  # the first few warm the connection and the compiled call
                            times[name].append((time.perf_counter() - started) * 1e3)
        a, b = statistics.median(times["ours"]), statistics.median(times["fastapi"])
        record(
            "API: one 640×480 JPEG (raw body), c=1 keep-alive p50",
            f"{a:.2f} ms",
            f"FastAPI {b:.2f} ms ({a / b:.2f}x)",
            f"<= 1.5x: {'met' if a <= 1.5 * b else 'NOT met'}",
        )
    finally:
        server.stop()
        theirs.terminate()
        theirs.wait(10)


def saliency_cost(folder: Path, manifest: Path, images: Path) -> None:
    from dashboard import service
    from dashboard.prediction.images import ImageFile
    from dashboard.service import understand

    settings = service.settings({"MODEL_MANIFEST_URL": str(manifest), "MODEL_CACHE_DIR": str(folder / "cache")})
    served = service.load_version(settings, service.catalog(settings).default)
    first = sorted(images.iterdir())[0]
    understand.see_image(served, {"image": ImageFile(first.name, first.read_bytes())})  # compiled call warmed
    seconds = []
    for path in sorted(images.iterdir())[:10]:
        seen = understand.see_image(served, {"image": ImageFile(path.name, path.read_bytes())})
        seconds.append(seen.saliency.seconds)
    record(
        "occlusion map of one 96×96 image",
        f"{statistics.median(seconds) * 1e3:.1f} ms",
        f"{seen.saliency.copies} forward passes, one call",
        "",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test of the bench itself)")
    args = parser.parse_args()
    count, rounds = (100, 1) if args.quick else (1_000, 3)
    print(f"{'figure':<58} {'value':>16}  {'baseline (same run)':<30} target")
    with tempfile.TemporaryDirectory(prefix="image-bench-") as work:
        folder = Path(work)
        model, manifest, images = build(folder, count)
        cli_versus_floor(folder, model, manifest, images, rounds)
        memory_by_folder_size(folder, manifest, images, count // 4)
        api_versus_fastapi(folder, model, manifest, images, 50 if args.quick else 200, rounds)
        saliency_cost(folder, manifest, images)


if __name__ == "__main__":
    main()
