"""Sign-in for people and tokens for programs (issue 14): a real OIDC provider on loopback (oidc-provider-mock),
the real server, real Chromium; the API per route family with no token, a wrong one, a revoked one, a good one."""

from __future__ import annotations

import json
import time

import pytest
import requests

from dashboard.access import Access, new_token, parse_tokens
from dashboard.config import load_settings
from dashboard.errors import ConfigError
from tests.support import dashboard_server
from tests.support.helpers import DEMO, api_json
from tests.support.secretscan import SCANNED, watch
from tests.support.signin import COOKIE_SECRET, browse, sign_in, sign_in_env

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


# ---- rules, without a server
def test_half_configured_sign_in_is_one_error_naming_what_is_missing():
    with pytest.raises(ConfigError) as caught:
        load_settings({"AUTH_CLIENT_ID": "x", "AUTH_CLIENT_SECRET": "y", "HOME": "/nonexistent"}, secrets={})
    assert str(caught.value) == (
        "sign-in is half configured: AUTH_SERVER_METADATA_URL, AUTH_REDIRECT_URI, AUTH_COOKIE_SECRET are missing; "
        "set all five AUTH_* variables (or none)"
    )


def test_allow_lists_are_case_insensitive_and_unverified_addresses_are_refused():
    access = Access(allowed_emails=frozenset({"alice@example.com"}), allowed_domains=frozenset({"corp.example"}))
    assert access.allows({"email": "Alice@Example.com", "email_verified": True}) == (True, "")
    assert access.allows({"email": "bob@CORP.example", "email_verified": True})[0]
    assert access.allows({"email": "eve@elsewhere.example", "email_verified": True}) == (
        False,
        "eve@elsewhere.example is not on this dashboard's list of allowed people",
    )
    assert access.allows({"email": "alice@example.com", "email_verified": False})[0] is False
    assert access.allows({"sub": "x"}) == (False, "your sign-in gave no email address")


def test_tokens_are_hashed_checked_in_constant_time_and_fail_closed():
    token, line = new_token("nightly")
    watch(token)
    assert token not in line and line.startswith("nightly:")
    access = Access(tokens=parse_tokens(f"{line}\nother:{'0' * 64}"))
    assert access.token_name(token) == "nightly"
    assert access.token_name(token + "\n") is None and access.token_name(" " + token) is None
    assert access.token_name(token[:-1] + ("a" if token[-1] != "a" else "b")) is None
    assert Access(tokens=parse_tokens(f"other:{'0' * 64}")).token_name(token) is None  # its line removed: revoked
    with pytest.raises(ConfigError, match="API_TOKENS: nightly is not NAME:sha256"):
        parse_tokens("nightly:abc")


def test_the_cli_creates_a_token_once_and_lists_names(tmp_path):
    import contextlib
    import io

    from dashboard.cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["token", "create", "notebook"]) == 0
    lines = out.getvalue().splitlines()
    token, line = lines[1], lines[3]
    watch(token)
    assert Access(tokens=parse_tokens(line)).token_name(token) == "notebook"


# ---- the API, per route family
@pytest.fixture(scope="module")
def closed_api(tmp_path_factory):
    """A server with two tokens configured (no sign-in): the API is closed to everyone without one."""
    good, good_line = new_token("good-client")
    revoked, _ = new_token("removed-client")
    for secret in (good, revoked):
        watch(secret)
    running = dashboard_server.start(tmp_path_factory.mktemp("closed"), {"API_TOKENS": f"{good_line},x:{'1' * 64}"})
    for _ in range(240):
        answer = requests.get(running.base + "/api/v1/ready", headers={"Authorization": f"Bearer {good}"}, timeout=10)
        if answer.status_code == 200 and (api_json(answer) or {}).get("status") == "ready":
            break
        time.sleep(0.5)
    CLOSED_LOGS.append(running.log_path)
    yield running.base, good, revoked
    SCANNED.append(("closed API server log", running.stop()))


CLOSED_LOGS: list = []


FAMILIES = [
    ("GET", "/api/v1/versions", None),
    ("POST", "/api/v1/predict", {"instances": [ROW]}),
    ("POST", "/v1/models/iris-classifier:predict", {"instances": [list(ROW.values())]}),
    ("GET", "/v1/models/iris-classifier", None),
    ("POST", "/invocations", {"dataframe_records": [ROW]}),
    ("GET", "/ping", None),
]


@pytest.mark.parametrize("method, path, body", FAMILIES, ids=[f[1] for f in FAMILIES])
def test_every_api_route_needs_a_valid_token(closed_api, method, path, body):
    base, good, revoked = closed_api
    cases = {
        "none": ({}, "missing_token"),
        "wrong": ({"Authorization": "Bearer " + "w" * 43}, "invalid_token"),
        "revoked": ({"Authorization": f"Bearer {revoked}"}, "invalid_token"),
        "other scheme": ({"Authorization": f"Basic {good}"}, "wrong_scheme"),
    }
    for headers, code in cases.values():
        answer = requests.request(method, base + path, json=body, headers=headers, timeout=30)
        SCANNED.append((f"401 answer {path}", answer.text))
        assert answer.status_code == 401, (path, headers, answer.text)
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["www-authenticate"].startswith('Bearer realm="dashboard"')
        assert answer.json()["error"]["code"] == code
    answer = requests.request(method, base + path, json=body, headers={"Authorization": f"Bearer {good}"}, timeout=30)
    SCANNED.append((f"answer {path}", answer.text))
    assert answer.status_code == 200, answer.text
    if path == "/ping":  # MLflow's ping: plain text
        assert answer.headers["content-type"].startswith("text/plain") and answer.text == "\n"
    else:  # the API's own JSON, not the page Streamlit gives any unknown GET
        body = api_json(answer)
        assert body is not None and ("name" in body or "predictions" in body or "model_version_status" in body)


def test_health_answers_without_a_token_and_says_nothing_else(closed_api):
    base, _, _ = closed_api
    answer = requests.get(base + "/api/v1/health", timeout=10)
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


def test_the_openapi_document_declares_the_bearer_scheme(closed_api):
    base, good, _ = closed_api
    document = requests.get(base + "/api/v1/openapi.json", headers={"Authorization": f"Bearer {good}"}).json()
    schemes = document["components"]["securitySchemes"]
    assert any(s["type"] == "http" and s["scheme"] == "bearer" for s in schemes.values())


def test_with_tokens_and_no_sign_in_the_docs_page_opens_in_a_browser(closed_api):
    """Issue 22: a browser sends no bearer token, so the docs page, its assets and the OpenAPI document open without
    one (the page itself is open then too); trying a call still needs a token."""
    base, _, _ = closed_api
    page = requests.get(base + "/api/v1/docs", timeout=30)
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    assert requests.get(base + "/api/v1/openapi.json", timeout=30).json()["info"]["title"]
    style = requests.get(base + "/api/v1/static/swagger-ui.css", timeout=30)
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert requests.get(base + "/api/v1/versions", timeout=30).status_code == 401


@pytest.fixture(scope="module")
def signed(provider, tmp_path_factory):
    from tests.support.helpers import free_port

    port = free_port()
    env = {**sign_in_env(provider, port, "Alice@Example.com"), "MODEL_MANIFEST_URL": str(DEMO / "manifest.json")}
    running = dashboard_server.start(tmp_path_factory.mktemp("signed"), env, port=port)
    yield running.base
    SCANNED.append(("signed server log", running.stop()))


def settled(page) -> None:
    from tests.support.browser import settled as wait

    wait(page)


def test_a_stranger_sees_only_the_sign_in_page(signed):
    from playwright.sync_api import expect

    def steps(page):
        page.goto(signed)
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)
        page.wait_for_timeout(1000)
        return page.content(), page.inner_text("body")

    html, text = browse(signed, steps)
    SCANNED.append(("sign-in page", html))
    for secret in ("iris-classifier", "manifest.json", str(DEMO), "1.1.0", "sepal_length", "setosa"):
        assert secret not in html and secret not in text, secret
    assert "Keras prediction dashboard" in text


def test_an_allowed_person_signs_in_predicts_and_signs_out(signed):
    from playwright.sync_api import expect

    def steps(page):
        sign_in(page, signed, "alice")
        expect(page.get_by_text("Signed in as alice@example.com")).to_be_visible()
        page.get_by_role("spinbutton", name="petal_length (cm)").fill("1.4")
        page.get_by_role("spinbutton", name="petal_width (cm)").fill("0.2")
        page.get_by_role("button", name="Predict", exact=True).click()
        expect(page.get_by_test_id("stMetricValue").first).to_have_text("setosa", timeout=60_000)
        page.get_by_role("tab", name="Batch", exact=True).click()  # a signed-in person's upload goes through
        settled(page)
        page.locator("input[type=file]").set_input_files(str(DEMO / "sample.csv"))
        expect(page.get_by_text("Rows ready")).to_be_visible(timeout=60_000)
        page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/end_session**", timeout=30_000)  # Streamlit ends the session at the provider too
        page.get_by_role("button", name="End session").click()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)
        assert page.url.startswith(signed)
        return page.content()

    SCANNED.append(("signed-in page", browse(signed, steps)))


def test_someone_outside_the_allow_list_sees_who_they_are_and_nothing_else(signed):
    from playwright.sync_api import expect

    def steps(page):
        sign_in(page, signed, "bob")
        expect(page.get_by_text("You are signed in as bob@elsewhere.example", exact=False)).to_be_visible()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        return page.content()

    html = browse(signed, steps)
    SCANNED.append(("refusal page", html))
    assert "iris-classifier" not in html and "sepal_length" not in html


def test_a_forged_session_cookie_is_a_stranger(signed):
    from playwright.sync_api import expect

    def steps(page):
        page.context.add_cookies(
            [{"name": "_streamlit_user", "value": json.dumps({"email": "alice@example.com"}), "url": signed}]
        )
        page.goto(signed)
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)
        return page.content()

    assert "iris-classifier" not in browse(signed, steps)


def test_a_callback_with_a_wrong_state_signs_nobody_in(signed):
    answer = requests.get(f"{signed}/oauth2callback?state=forged&code=forged", timeout=30, allow_redirects=False)
    SCANNED.append(("forged callback", answer.text))
    assert answer.status_code in (302, 303, 307, 400, 401, 403)
    assert "_streamlit_user" not in answer.headers.get("set-cookie", "")


# ---- issue 23: with tokens but no sign-in the page says it is open and shows nobody's history; before sign-in,
# Streamlit's upload, media and component routes refuse


def test_tokens_without_sign_in_say_the_page_is_open_and_hide_the_history(closed_api, env):
    from streamlit.testing.v1 import AppTest

    from tests.support.helpers import REPO

    log = CLOSED_LOGS[0].read_text()
    assert "the page is open to anyone who can reach this address: API_TOKENS protect the API only" in log
    _, good_line = new_token("someone")
    env.setenv("API_TOKENS", good_line)
    at = AppTest.from_file(str(REPO / "dashboard" / "ui" / "page.py"), default_timeout=120).run()
    assert not at.exception
    assert any("API tokens protect only the API" in w.value for w in at.sidebar.warning)
    at.session_state["tab"] = "History"
    at.run()
    assert any("The history is not shown on this page" in i.value for i in at.info)


def test_before_sign_in_uploads_media_and_components_refuse(signed):
    for method, path in (
        ("PUT", "/_stcore/upload_file/some-session/some-file"),
        ("POST", "/_stcore/upload_file/some-session/some-file"),
        ("GET", "/media/0123456789abcdef.png"),
        ("GET", "/component/anything/index.html"),
        ("GET", "/_stcore/metrics"),
    ):
        answer = requests.request(method, signed + path, data=b"x" * 1_000_000, timeout=30)
        assert answer.status_code == 401, (method, path, answer.status_code)
        assert api_json(answer)["error"]["code"] == "sign_in_required"


def test_a_cookie_copied_before_sign_out_no_longer_signs_in(signed):
    """Issue 23: Sign out ends the session on the server, not only in the browser that pressed it."""
    from playwright.sync_api import expect, sync_playwright

    from tests.support.browser import CHROMIUM, FLAGS, chromium_or_skip

    chromium_or_skip()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            first = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = first.new_page()
            sign_in(page, signed, "alice")
            expect(page.get_by_text("Signed in as alice@example.com")).to_be_visible()
            copied = [c for c in first.cookies() if c["name"].startswith("_streamlit_user")]
            assert copied
            page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
            page.wait_for_url("**/end_session**", timeout=30_000)
            second = browser.new_context(viewport={"width": 1400, "height": 1000})
            second.add_cookies(copied)
            stolen = second.new_page()
            stolen.goto(signed)
            expect(stolen.get_by_text("Your session has ended (you signed out)", exact=False)).to_be_visible(
                timeout=60_000
            )
            assert "Signed in as" not in stolen.inner_text("body")
            docs = stolen.request.get(signed + "/api/v1/docs")
            assert docs.status == 401
        finally:
            browser.close()


def test_a_session_ends_after_its_maximum_age():
    from streamlit.web.server.starlette.starlette_app_utils import create_signed_value

    from dashboard.common import sessions

    claims = {"email": "alice@example.com", "sub": "alice", "iss": "http://idp", "is_logged_in": True}
    cookie = create_signed_value(COOKIE_SECRET, sessions.USER_COOKIE, json.dumps(claims)).decode()
    jar = {sessions.USER_COOKIE: cookie}
    assert sessions.signed_in(jar.get, COOKIE_SECRET, 1.0)[0] == claims
    assert sessions.signed_in(jar.get, "another-secret", 1.0) == (None, "no session")
    time.sleep(1.1)
    assert sessions.signed_in(jar.get, COOKIE_SECRET, 0.0002) == (None, "your session is older than 0.0002 hours")
    sessions.sign_out(claims)
    assert sessions.signed_in(jar.get, COOKIE_SECRET, 1.0) == (None, "you signed out")
