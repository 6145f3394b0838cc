"""The real dashboard server for tests: `streamlit run dashboard/app.py` (page and HTTP API) on a free port, as
the Procfile starts it, optionally on the simulated lean stack (importing TensorFlow raises)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.helpers import NO_TENSORFLOW, REPO, free_port


@dataclass
class Running:
    """A started server: its base URL, process and log file."""

    base: str
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> str:
        """Stop the server; returns its log (for the secret scan)."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        return self.log_path.read_text(errors="replace")


def start(folder: Path, extra_env: dict[str, str], lean: bool = False, port: int | None = None) -> Running:
    """Start the dashboard with a private cache and HOME under folder, plus extra_env; wait for /_stcore/health."""
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
    if lean:  # the lean stack, simulated: importing TensorFlow, Keras or h5py raises in the server process
        launcher = NO_TENSORFLOW + "from streamlit.web.cli import main\nsys.argv = ['streamlit'] + sys.argv[1:]\nmain()"
        command = [sys.executable, "-c", launcher, *arguments]
    else:
        command = [sys.executable, "-m", "streamlit", *arguments]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=REPO, env=environ, stdout=log, stderr=subprocess.STDOUT)
    running = Running(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(running.base + "/_stcore/health", timeout=1).text == "ok":
                return running
        except requests.RequestException:  # not listening yet, or too busy starting to answer within 1 s
            time.sleep(0.2)
    running.stop()
    raise AssertionError("the dashboard did not answer /_stcore/health within 60 s")
