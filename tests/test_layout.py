"""The architecture is checked, not claimed (issue 24): import-linter's contracts in pyproject.toml hold for the
package, they fail when a wrong import is added, every group is named in them, and no module imports itself back
through others."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib

import grimp
import pytest

from tests.support.helpers import REPO

CONFIG = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]


RUN = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint_imports(root) -> subprocess.CompletedProcess:
    """lint-imports with the repository's contracts, on the dashboard package found in root."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
            "--config",
            str(root / "pyproject.toml"),
            "--no-cache",
        ],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_package_keeps_its_contracts():
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"Contracts: {len(CONFIG['contracts'])} kept, 0 broken." in done.stdout


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    """The package and its contracts in a folder of their own, to add wrong imports to."""
    root = tmp_path_factory.mktemp("layout")
    shutil.copytree(
        REPO / "dashboard", root / "dashboard", ignore=shutil.ignore_patterns("__pycache__", "*.keras", "*.tflite")
    )
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("prediction/validate.py", "from dashboard.ui import words", "Layers"),  # a layer imports one above it
        ("loading/safety.py", "from dashboard.store import fetch", "Layers"),  # siblings stay independent
        ("common/files.py", "from dashboard import config", "Layers"),  # leaf mechanisms import nothing above them
        ("service/pool.py", "import streamlit", "streamlit only in ui/ and app.py"),
        ("prediction/scoring.py", "import sqlalchemy", "sqlalchemy and alembic only in history/"),
        ("store/versions.py", "import keras", "keras, tensorflow and ai_edge_litert only in loading/"),
        ("history/queries.py", "import fastapi", "fastapi, starlette, uvicorn and mcp only in api/"),
        ("cli/commands.py", "from dashboard.api import errors", "no door imports the page or the HTTP API"),
    ],
)
def test_a_wrong_import_breaks_a_contract(copy, module, line, broken):
    path = copy / "dashboard" / module
    original = path.read_text()
    path.write_text(
        original.replace("from __future__ import annotations\n", f"from __future__ import annotations\n\n{line}\n", 1)
    )
    try:
        done = lint_imports(copy)
    finally:
        path.write_text(original)
    assert done.returncode == 1, done.stdout[-2000:]
    assert "0 broken" not in done.stdout
    broken_part = " ".join(done.stdout.split("Broken contracts", 1)[1].split())  # its report wraps at 80 columns
    assert broken in broken_part


def test_every_group_of_the_package_is_in_the_layers():
    layers = " | ".join(next(c for c in CONFIG["contracts"] if c["type"] == "layers")["layers"])
    named = {part.strip() for part in layers.split("|")}
    children = {
        f"dashboard.{p.stem if p.is_file() else p.name}"
        for p in (REPO / "dashboard").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())
    }
    assert children - named == set()
    assert named - children == set()


def test_no_module_imports_itself_back_through_others():
    graph = grimp.build_graph("dashboard")
    circles = []
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(importer=imported, imported=module):
                circles.append((module, imported))
    assert circles == []
