"""Helpers the tests share (no fixtures here: those are in conftest.py). Also imported by the benchmarks."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "dashboard" / "demo"
CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright cannot download browsers here
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

BLOCKED = ("tensorflow", "keras", "h5py", "tf_keras")
# Python source that, run first in a child process, makes importing TensorFlow, Keras or h5py raise: the lean stack
NO_TENSORFLOW = f"""import importlib.abc, sys
class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(name + " is blocked: the lean stack has no TensorFlow")
        return None
sys.meta_path.insert(0, NoTensorFlow())
"""


def at_once(count: int, work) -> list:
    """work(i) in `count` threads released together; their results in order (any exception fails the test)."""
    results, failures = [None] * count, []
    barrier = threading.Barrier(count)

    def run(i):
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def demo_store(store, prefix: str = "models") -> str:
    """Serve a copy of the demo store; returns the manifest URL."""
    for path in DEMO.iterdir():
        if path.suffix in (".keras", ".json", ".csv", ".tflite"):
            store.put_file(f"{prefix}/{path.name}", path)
    return store.url(f"{prefix}/manifest.json")


def settings_for(tmp_path: Path, **values):
    """Settings from exactly these variables (plus a private cache), without secrets files."""
    from dashboard.config import load_settings

    environ = {"MODEL_CACHE_DIR": str(tmp_path / "cache"), "MODEL_RETRIES": "2", "HOME": str(tmp_path)}
    environ.update({k: str(v) for k, v in values.items()})
    return load_settings(environ, secrets={})


def model_bytes(models, name: str) -> bytes:
    return (models["folder"] / name).read_bytes()


def write_manifest(store, entries: list, prefix: str = "m", aliases: dict | None = None) -> str:
    manifest = {"name": "test", "versions": entries}
    if aliases:
        manifest["aliases"] = aliases
    return store.put(f"{prefix}/manifest.json", json.dumps(manifest).encode())


def api_json(answer) -> dict | None:
    """The body of an API answer that is JSON, else None (Streamlit answers unknown GET paths with its page: HTML,
    status 200, so a status alone proves nothing)."""
    if not answer.headers.get("content-type", "").startswith("application/json"):
        return None
    return answer.json()


def shown(markdown: str) -> str:
    """An element's Markdown source as the page shows it: the escapes the UI adds to free text removed."""
    unescaped = re.sub(r"\\([\\\[\]<>$`])", r"\1", markdown)
    return re.sub(r"`((?:https?|ftp)://[^`]*|www\.[^`]*)`", r"\1", unescaped)


def rewrite_config(source: Path, target: Path, change) -> Path:
    """A copy of a .keras archive whose config.json went through change(config)."""
    import zipfile

    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                change(config)
                data = json.dumps(config).encode()
            dst.writestr(item.filename, data)
    return target
