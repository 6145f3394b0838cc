"""Virtual environments built from one requirements file alone, for the deploy tests: a dyno installs exactly
requirements.txt (or requirements-lean.txt), so a package that only requirements-dev.txt brings in must fail a
test. Built once per requirements content and kept in the user's cache folder (later runs reuse them).

`python tests/venvs.py` builds both ahead of a test run.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOME = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "keras-dashboard-tests" / "venvs"


def _contents(requirements: Path) -> bytes:
    """The file's bytes and those of every file it includes with -r, recursively."""
    text = requirements.read_bytes()
    parts = [text]
    for included in re.findall(rb"^-r\s+(\S+)", text, flags=re.M):
        parts.append(_contents(requirements.parent / included.decode()))
    return b"\n".join(parts)


def build(name: str) -> Path:
    """The folder of a venv holding exactly what REPO/name installs (built now if it is not cached yet)."""
    requirements = REPO / name
    key = hashlib.sha256(_contents(requirements) + sys.version.encode()).hexdigest()[:16]
    folder = HOME / f"{requirements.stem}-{key}"
    if (folder / "complete").exists():
        return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(partial)], check=True)
    done = subprocess.run(
        [str(partial / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(requirements)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise RuntimeError(f"pip install -r {name} failed in a fresh venv:\n{done.stderr[-3000:]}")
    shutil.rmtree(folder, ignore_errors=True)
    # the venv's scripts name its folder in their first line: build in place would be simpler, but a renamed venv
    # still runs `bin/python -m ...`, which is all the tests use
    partial.rename(folder)
    (folder / "complete").write_text(name + "\n")
    return folder


def python(folder: Path) -> str:
    """The venv's interpreter."""
    return str(folder / "bin" / "python")


if __name__ == "__main__":
    for file in sys.argv[1:] or ["requirements.txt", "requirements-lean.txt"]:
        print(build(file))
