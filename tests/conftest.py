"""Fixtures: a real loopback HTTP store with fault switches, small real Keras models, settings."""

from __future__ import annotations

import hashlib
import http.server
import json
import logging
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "dashboard" / "demo"


class StoreHandler(http.server.BaseHTTPRequestHandler):
    """Serves server.files; server.faults[path] switches a path to 404, 500, slow, hang or truncated."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        server = self.server
        path = self.path.split("?", 1)[0]
        with server.lock:
            server.hits[path] = server.hits.get(path, 0) + 1
            server.requests.append(self.path)
            fault = server.faults.get(path)
            if isinstance(fault, list):  # a sequence of faults, one per request, then normal
                fault = fault.pop(0) if fault else None
        body = server.files.get(path)
        if fault == "404" or body is None:
            return self._send(404, b"not found")
        if fault == "500":
            return self._send(500, b"boom")
        if fault == "403":
            return self._send(403, b"expired")
        if fault == "hang":
            time.sleep(server.hang_seconds)
            return self._send(200, body)
        if fault == "truncate":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if fault == "big":  # claims a huge length, then streams more than any cap
            self.send_response(200)
            self.end_headers()
            self.close_connection = True
            try:
                for _ in range(64):
                    self.wfile.write(b"\0" * (1 << 16))
            except OSError:
                pass
            return
        if fault == "slow":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(0, len(body), 4096):
                self.wfile.write(body[i:i + 4096])
                self.wfile.flush()
                time.sleep(0.01)
            return
        self._send(200, body)

    def _send(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Store:
    """A running loopback server: put files in, switch faults, read hit counts."""

    def __init__(self, server):
        self.server = server
        self.base = f"http://127.0.0.1:{server.server_address[1]}"

    def put(self, path: str, data: bytes) -> str:
        self.server.files["/" + path.lstrip("/")] = data
        return self.url(path)

    def put_file(self, path: str, source: Path) -> str:
        return self.put(path, Path(source).read_bytes())

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def fault(self, path: str, fault) -> None:
        self.server.faults["/" + path.lstrip("/")] = fault

    def hits(self, path: str) -> int:
        return self.server.hits.get("/" + path.lstrip("/"), 0)

    def clear(self) -> None:
        self.server.files.clear()
        self.server.faults.clear()
        self.server.hits.clear()
        self.server.requests.clear()


class QuietServer(http.server.ThreadingHTTPServer):
    """A client that gives up mid-response (timeouts, size caps) is expected here: no traceback on stderr."""

    def handle_error(self, request, client_address):
        pass


@pytest.fixture
def store():
    server = QuietServer(("127.0.0.1", 0), StoreHandler)
    server.daemon_threads = True
    server.files, server.faults, server.hits, server.requests = {}, {}, {}, []
    server.lock = threading.Lock()
    server.hang_seconds = 5
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Store(server)
    server.shutdown()
    server.server_close()


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


def demo_store(store: Store, prefix: str = "models") -> str:
    """Serve a copy of the demo store; returns the manifest URL."""
    for path in DEMO.iterdir():
        if path.suffix in (".keras", ".json", ".csv", ".tflite"):
            store.put_file(f"{prefix}/{path.name}", path)
    return store.url(f"{prefix}/manifest.json")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A clean environment for the app: no MODEL_* variables, a private cache and HOME."""
    for name in list(os.environ):
        if name.startswith(("MODEL_", "APP_VERSION", "CSV_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODEL_RETRIES", "2")
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def settings_for(tmp_path: Path, **values):
    """Settings from exactly these variables (plus a private cache), without secrets files."""
    from dashboard.config import load_settings

    environ = {"MODEL_CACHE_DIR": str(tmp_path / "cache"), "MODEL_RETRIES": "2", "HOME": str(tmp_path)}
    environ.update({k: str(v) for k, v in values.items()})
    return load_settings(environ, secrets={})


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Small real Keras models saved in every supported format, plus hostile ones."""
    import keras

    folder = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(1)
    out = {"folder": folder}

    inputs = keras.Input((3,), name="features")
    hidden = keras.layers.Dense(6, activation="relu")(inputs)
    classifier = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(hidden))
    classifier.save(folder / "classifier.keras")
    classifier.save(folder / "classifier.h5")
    (folder / "classifier.json").write_text(classifier.to_json())
    classifier.save_weights(folder / "classifier.weights.h5")
    out["classifier"] = classifier

    inputs = keras.Input((2,), name="x")
    binary = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dense(4)(inputs)))
    binary.save(folder / "binary.keras")
    out["binary"] = binary

    inputs = keras.Input((2,), name="x")
    regression = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    regression.save(folder / "regression.keras")
    out["regression"] = regression

    size = keras.Input((1,), name="size", dtype="float32")
    colour = keras.Input((1,), name="colour", dtype="string")
    onehot = keras.layers.StringLookup(vocabulary=["red", "green"], output_mode="one_hot")(colour)
    joined = keras.layers.Concatenate()([size, keras.layers.Reshape((3,))(onehot)])
    named = keras.Model({"size": size, "colour": colour}, keras.layers.Dense(1, activation="sigmoid")(joined))
    named.save(folder / "named.keras")
    out["named"] = named

    canary = folder / "canary.txt"
    out["canary"] = canary
    inputs = keras.Input((3,), name="features")
    # the path is a constant inside the code object, so the saved bytecode carries it (no defaults needed)
    function = eval(f"lambda x: x if open({str(canary)!r}, 'w').close() is None else x")  # noqa: S307
    payload = keras.layers.Lambda(function)(inputs)
    hostile = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(payload))
    hostile.save(folder / "lambda.keras")
    hostile.save(folder / "lambda.h5")
    canary.unlink(missing_ok=True)
    return out


def model_bytes(models, name: str) -> bytes:
    return (models["folder"] / name).read_bytes()


def write_manifest(store: Store, entries: list, prefix: str = "m", aliases: dict | None = None) -> str:
    manifest = {"name": "test", "versions": entries}
    if aliases:
        manifest["aliases"] = aliases
    return store.put(f"{prefix}/manifest.json", json.dumps(manifest).encode())


@pytest.fixture
def copy_demo(tmp_path):
    """A writable copy of the demo store folder."""
    target = tmp_path / "demo-store"
    shutil.copytree(DEMO, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


# Case 22 of the reliability matrix: every message, log line, page text and captured output produced by the
# whole suite is scanned for secrets at the end of the session; any hit fails the run.
SECRET_PATTERNS = ("X-Amz-Signature", "X-Amz-Credential", "X-Goog-Signature", "sig=", "user:password@")
SCANNED: list[tuple[str, str]] = []


def find_secrets(texts) -> list[tuple[str, str]]:
    """(where, the pattern) for every text that holds a secret pattern."""
    return [(where, pattern) for where, text in texts for pattern in SECRET_PATTERNS if pattern in text]


class _Collect(logging.Handler):
    def emit(self, record):
        try:
            SCANNED.append((f"log {record.name}", self.format(record)))
        except Exception:  # never let the scan break logging
            pass


def pytest_sessionstart(session):
    import logging

    from streamlit.testing.v1 import AppTest

    from dashboard import errors

    handler = _Collect()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    for name in ("", "dashboard"):
        logging.getLogger(name).addHandler(handler)
    original_init = errors.DashboardError.__init__

    def recording_init(self, message):
        original_init(self, message)
        SCANNED.append((f"error {type(self).__name__}", str(self)))

    errors.DashboardError.__init__ = recording_init
    original_run = AppTest.run

    def recording_run(self, *args, **kwargs):
        result = original_run(self, *args, **kwargs)
        SCANNED.append(("page", repr(result._tree)))
        return result

    AppTest.run = recording_run


def pytest_runtest_logreport(report):
    SCANNED.append((f"output of {report.nodeid}", report.capstdout + report.capstderr + report.caplog))


def pytest_sessionfinish(session, exitstatus):
    hits = find_secrets(SCANNED)
    chars = sum(len(text) for _, text in SCANNED)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    line = f"secret scan: {len(SCANNED)} messages, log lines, pages and outputs ({chars:,} characters), {len(hits)} hits"
    if reporter is not None:
        reporter.write("\n")
        reporter.write_line(line)
        for where, pattern in hits[:20]:
            reporter.write_line(f"  secret pattern {pattern!r} in {where}")
    if hits:
        session.exitstatus = 1
