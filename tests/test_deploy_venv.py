"""A deploy made from requirements.txt alone (and one from requirements-lean.txt) works: each starts as the Procfile
does in a venv built from that one file, a person signs in through a real OpenID Connect provider and predicts,
a program calls the API with a token, a signed-in person reads the API docs page (served offline). And
`pip install .` gives the `keras-dashboard` command, which runs from any folder.

The suite itself runs from requirements-dev.txt, which brings in more (httpx came only from there once, and
sign-in answered "Internal Server Error" on a real deploy): these tests are what catches such a gap.
"""

from __future__ import annotations

import subprocess

import pytest
import requests

from dashboard.access import new_token
from tests.support import dashboard_server, venvs
from tests.support.helpers import REPO, api_json, free_port
from tests.support.secretscan import SCANNED
from tests.support.signin import browse, sign_in, sign_in_env

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@pytest.fixture(scope="module")
def runtime_venv():
    return venvs.build("requirements.txt")


@pytest.fixture(scope="module")
def lean_venv():
    return venvs.build("requirements-lean.txt")


def deployed(folder, venv, provider) -> tuple[dashboard_server.Running, str]:
    """The dashboard as a dyno runs it from `venv`: sign-in, an allow-list and one API token."""
    port = free_port()
    token, line = new_token("deploy-check")
    env = {**sign_in_env(provider, port, "alice@example.com"), "API_TOKENS": line}
    return dashboard_server.start(folder, env, port=port, venv=venv), token


def check_deploy(running: dashboard_server.Running, token: str, docs: bool, provider: str) -> None:
    """Sign in and predict in Chromium; the API with and without the token; the docs page when asked. Nothing the
    dashboard's pages ask for leaves the machine (the provider's own login page may, so its requests are not
    counted)."""
    from playwright.sync_api import expect

    base = running.base
    blocked: list[str] = []

    def steps(page):
        page.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(("http://127.0.0.1", "data:", "blob:"))
                or (route.request.headers.get("referer") or "").startswith(provider)
                else (blocked.append(route.request.url), route.abort())
            ),
        )
        sign_in(page, base, "alice")
        expect(page.get_by_text("Signed in as alice@example.com")).to_be_visible()
        page.get_by_role("spinbutton", name="petal_length (cm)").fill("1.4")
        page.get_by_role("spinbutton", name="petal_width (cm)").fill("0.2")
        page.get_by_role("button", name="Predict", exact=True).click()
        expect(page.get_by_test_id("stMetricValue").first).to_have_text("setosa", timeout=60_000)
        if docs:
            page.goto(base + "/api/v1/docs")
            expect(page.get_by_text("Keras prediction dashboard API").first).to_be_visible(timeout=30_000)
            page.locator("button.authorize").first.click()  # opens the Available authorizations dialog
            page.locator(".auth-container input").first.fill(token)
            page.locator(".auth-btn-wrapper button.authorize").click()  # "Apply credentials"
            page.locator(".auth-btn-wrapper button.btn-done").click()
            page.locator("#operations-default-versions_versions_get").click()
            page.get_by_role("button", name="Try it out").click()
            page.get_by_role("button", name="Execute").click()
            answer = page.locator(".live-responses-table .response-col_description pre").first
            expect(answer).to_contain_text('"iris-classifier"', timeout=30_000)
        return page.content()

    SCANNED.append(("deployed page", browse(base, steps)))
    assert blocked == [], f"the page asked for outside addresses: {blocked[:3]}"
    answer = requests.post(base + "/api/v1/predict", json={"instances": [ROW]}, timeout=60)
    assert answer.status_code == 401 and api_json(answer)["error"]["code"] == "missing_token"
    answer = requests.post(
        base + "/api/v1/predict",
        json={"instances": [ROW]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert api_json(answer)["predictions"][0]["prediction"] == "setosa"
    strange = requests.get(base + "/api/v1/docs", timeout=30)
    assert strange.status_code == 401 and api_json(strange)["error"]["code"] == "missing_token"


def test_a_deploy_from_requirements_txt_signs_in_predicts_and_serves_the_api(runtime_venv, provider, tmp_path):
    done = subprocess.run(
        [venvs.python(runtime_venv), "-c", "import httpx, authlib, fastapi_offline"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    running, token = deployed(tmp_path, runtime_venv, provider)
    try:
        check_deploy(running, token, docs=True, provider=provider)
    finally:
        SCANNED.append(("deployed server log", running.stop()))


def test_a_lean_deploy_signs_in_and_predicts_without_tensorflow(lean_venv, provider, tmp_path):
    done = subprocess.run([venvs.python(lean_venv), "-c", "import tensorflow"], capture_output=True, text=True)
    assert done.returncode != 0, "the lean venv must not have TensorFlow"
    running, token = deployed(tmp_path, lean_venv, provider)
    try:
        check_deploy(running, token, docs=False, provider=provider)
        log = running.log_path.read_text()
        assert "runtime litert" in log
    finally:
        SCANNED.append(("lean server log", running.stop()))


def test_pip_install_gives_the_keras_dashboard_command_from_any_folder(runtime_venv, tmp_path):
    """The package installed (not the clone) serves the demo store from another folder, by both names."""
    python = venvs.python(runtime_venv)
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(REPO)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    if install.returncode != 0 and "setuptools" in install.stderr:  # a venv without setuptools: let pip bring it
        install = subprocess.run(
            [python, "-m", "pip", "install", "-q", "--no-deps", str(REPO)], capture_output=True, text=True, cwd=tmp_path
        )
    assert install.returncode == 0, install.stderr[-2000:]
    try:
        env = {"HOME": str(tmp_path), "MODEL_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
        command = runtime_venv / "bin" / "keras-dashboard"
        versions = subprocess.run(
            [python, str(command), "versions"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
        )
        assert versions.returncode == 0, versions.stderr
        assert versions.stdout.splitlines()[0].startswith("1.1.0") and "(default)" in versions.stdout
        where = subprocess.run(
            [python, "-c", "import dashboard; print(dashboard.__file__)"], capture_output=True, text=True, cwd=tmp_path
        )
        assert "site-packages" in where.stdout, where.stdout
        sample = subprocess.run(
            [python, "-c", "import dashboard.config as c; print(c.DEMO_MANIFEST.parent / 'sample.csv')"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        ).stdout.strip()
        out = tmp_path / "out.csv"
        predicted = subprocess.run(
            [python, "-m", "dashboard", "predict", "--input", sample, "--output", str(out)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=300,
        )
        assert predicted.returncode == 0, predicted.stderr
        assert predicted.stderr.startswith("predicted 30 of 30 rows with version 1.1.0"), predicted.stderr
        help_text = subprocess.run(
            [python, str(command), "--help"], capture_output=True, text=True, cwd=tmp_path, env=env
        ).stdout
        assert help_text.startswith("usage: keras-dashboard")
    finally:
        subprocess.run([python, "-m", "pip", "uninstall", "-q", "-y", "keras-dashboard"], capture_output=True)
