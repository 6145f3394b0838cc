"""The real dashboard server for tests: `streamlit run dashboard/app.py` (page and HTTP API) on a free port, as
the Procfile starts it, optionally on the simulated lean stack (importing TensorFlow raises)."""

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

from tests.support.helpers import NO_TENSORFLOW, REPO, free_port


@dataclass
class Running:
    """A started server: its base URL, process and log file."""

    base: str
    process: subprocess.Popen
    log_path: Path

    def wait_ready(self, headers: dict | None = None, seconds: float = 120) -> None:
        """Wait until /api/v1/ready says the default version is loaded."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                answer = requests.get(self.base + "/api/v1/ready", headers=headers, timeout=10)
                if answer.status_code == 200 and answer.json().get("status") == "ready":
                    return
            except (requests.RequestException, ValueError):  # starting, busy, or not JSON yet
                pass
            time.sleep(0.3)
        raise AssertionError(f"the default version was not ready within {seconds} s")

    def stop(self) -> str:
        """Stop the server; returns its log (for the secret scan)."""
        with contextlib.suppress(ProcessLookupError):  # the whole group: the Procfile's sh and its python
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        return self.log_path.read_text(errors="replace")


def start(
    folder: Path, extra_env: dict[str, str], lean: bool = False, port: int | None = None, venv: Path | None = None
) -> Running:
    """Start the dashboard with a private cache and HOME under folder, plus extra_env; wait for /_stcore/health.

    venv: start it exactly as the Procfile's web command does, with that venv's `python` first on PATH (a deploy
    made from one requirements file)."""
    port = port or free_port()
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MODEL_", "APP_VERSION", "CSV_", "API_", "DATABASE_URL", "HISTORY"))
    }
    environ.update({"MODEL_CACHE_DIR": str(folder / "cache"), "HOME": str(folder)}, **extra_env)
    log_path = folder / f"server-{port}.log"
    arguments = [
        "run",
        "dashboard/app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
    ]
    if venv is not None:
        line = next(l for l in (REPO / "Procfile").read_text().splitlines() if l.startswith("web:"))
        command = ["sh", "-c", line.split(":", 1)[1].strip()]
        environ.update(PORT=str(port), PATH=f"{venv / 'bin'}:{environ.get('PATH', '')}", VIRTUAL_ENV=str(venv))
        environ.pop("PYTHONPATH", None)
    elif lean:  # the lean stack, simulated: importing TensorFlow, Keras or h5py raises in the server process
        launcher = NO_TENSORFLOW + "from streamlit.web.cli import main\nsys.argv = ['streamlit'] + sys.argv[1:]\nmain()"
        command = [sys.executable, "-c", launcher, *arguments]
    else:
        command = [sys.executable, "-m", "streamlit", *arguments]
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, cwd=REPO, env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    running = Running(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if requests.get(running.base + "/_stcore/health", timeout=1).text == "ok":
                return running
        except requests.RequestException:  # not listening yet, or too busy starting to answer within 1 s
            time.sleep(0.2)
    running.stop()
    raise AssertionError("the dashboard did not answer /_stcore/health within 90 s")
