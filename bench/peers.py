"""BentoML and MLflow's scoring server beside ours (issue 25): each in its own venv the bench builds once, serving
the same Keras file on the same TensorFlow and Keras.

The venvs see this interpreter's packages (`--system-site-packages`), so TensorFlow and Keras are the very same
install as ours and only the peer's own packages are added (its pinned release, and uvicorn inside the venv: both
peers start `uvicorn` from PATH). Built in ~/.cache/keras-dashboard-bench/venvs/<name>-<release>; a failed build is
printed as a skip with pip's last line, never fatal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.helpers import DEMO, free_port

VENVS = Path.home() / ".cache" / "keras-dashboard-bench" / "venvs"
RELEASES = {"bentoml": "1.4.40", "mlflow": "3.17.2"}  # the releases issue 25 measured
BENTO_SERVICE = """
import os
import bentoml
import keras
import numpy as np

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
LABELS = ["setosa", "versicolor", "virginica"]


@bentoml.service(workers=1)
class Iris:
    def __init__(self) -> None:
        self.model = keras.models.load_model(os.environ["MODEL_PATH"])

    @bentoml.api
    def predict(self, instances: list[dict[str, float]]) -> dict:
        x = np.array([[row[f] for f in FEATURES] for row in instances], dtype="float32")
        out = self.model.predict_on_batch(x)
        return {"predictions": [
            {"prediction": LABELS[int(p.argmax())], "probabilities": dict(zip(LABELS, p.tolist()))} for p in out
        ]}
"""
MLFLOW_SAVE = """
import sys, keras, mlflow.tensorflow
mlflow.tensorflow.save_model(keras.models.load_model(sys.argv[1]), sys.argv[2])
"""


@dataclass
class Peer:
    """A running peer: its name, the URL it predicts at, which body shape it takes, its process group."""

    name: str
    url: str
    body: str  # "native" ({"instances": [objects]}) or "invocations" (MLflow's dataframe_split)
    process: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """The peer and every process it started (both fork workers)."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(20)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def venv(name: str) -> Path:
    """The peer's venv (built the first time): its bin folder. Raises RuntimeError with pip's last words."""
    folder = VENVS / f"{name}-{RELEASES[name]}"
    marker = folder / "built"
    if marker.exists():
        return folder / "bin"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(folder)], check=True)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    for command in ([*pip, f"{name}=={RELEASES[name]}"], [*pip, "--ignore-installed", "--no-deps", "uvicorn"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=1200)
        if done.returncode:
            lines = [line for line in done.stderr.splitlines() if line.strip() and "WARNING" not in line]
            raise RuntimeError(f"pip install failed: {lines[-1] if lines else done.returncode}")
    marker.write_text("")
    return folder / "bin"


def start(name: str, folder: Path) -> Peer:
    """BentoML or MLflow serving demo iris 1.1.0, returned once it answers a prediction."""
    bin_ = venv(name)
    port = free_port()
    model = DEMO / "iris-1.1.0.keras"
    environ = dict(os.environ, PATH=f"{bin_}:{os.environ['PATH']}", TF_CPP_MIN_LOG_LEVEL="3")
    if name == "bentoml":
        (folder / "bento_service.py").write_text(BENTO_SERVICE)
        environ |= {"MODEL_PATH": str(model), "BENTOML_DO_NOT_TRACK": "true"}
        command = [str(bin_ / "bentoml"), "serve", "bento_service:Iris", "--host", "127.0.0.1", "--port", str(port)]
        url, body = f"http://127.0.0.1:{port}/predict", "native"
    else:
        saved = folder / "mlflow-model"
        if not saved.exists():
            (folder / "mlflow_save.py").write_text(MLFLOW_SAVE)
            subprocess.run(
                [str(bin_ / "python"), "mlflow_save.py", str(model), str(saved)],
                cwd=folder,
                env=environ,
                check=True,
                capture_output=True,
                timeout=300,
            )
        command = [str(bin_ / "mlflow"), "models", "serve", "-m", str(saved), "--env-manager", "local"]
        command += ["-h", "127.0.0.1", "-p", str(port), "--workers", "1"]
        url, body = f"http://127.0.0.1:{port}/invocations", "invocations"
    process = subprocess.Popen(
        command, cwd=folder, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    peer = Peer(name, url, body, process)
    names, row = ["sepal_length", "sepal_width", "petal_length", "petal_width"], [5.1, 3.5, 1.4, 0.2]
    probe = (
        {"instances": [dict(zip(names, row))]}
        if body == "native"
        else {"dataframe_split": {"columns": names, "data": [row]}}
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode} while starting")
        try:
            requests.post(url, json=probe, timeout=30).raise_for_status()
            return peer
        except requests.RequestException:
            time.sleep(0.5)
    peer.stop()
    raise RuntimeError(f"{name} did not answer within 180 s")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants still running (peers fork workers)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            total += int(stats[current][11]) + int(stats[current][12])
        todo.extend(children.get(current, []))
    return total / os.sysconf("SC_CLK_TCK")
