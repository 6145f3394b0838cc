"""Signing in through a real OIDC provider (oidc-provider-mock): the settings that point the dashboard at it, and the
steps a person takes in the browser."""

from __future__ import annotations


def sign_in_env(provider: str, port: int, allowed: str) -> dict[str, str]:
    """The five AUTH_* variables for the provider, a server on port, and an allow-list of addresses."""
    return {
        "AUTH_SERVER_METADATA_URL": f"{provider}/.well-known/openid-configuration",
        "AUTH_CLIENT_ID": "dashboard",
        "AUTH_CLIENT_SECRET": CLIENT_SECRET,
        "AUTH_REDIRECT_URI": f"http://127.0.0.1:{port}/oauth2callback",
        "AUTH_COOKIE_SECRET": COOKIE_SECRET,
        "AUTH_ALLOWED_EMAILS": allowed,
    }


def browse(base: str, steps):
    from tests.test_browser import CHROMIUM, FLAGS, chromium_or_skip

    chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            return steps(page)
        finally:
            browser.close()


def sign_in(page, base: str, sub: str) -> None:
    from playwright.sync_api import expect

    page.goto(base)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/oauth2/authorize**", timeout=30_000)
    page.locator("input[name=sub]").fill(sub)
    page.get_by_role("button", name="Authorize").click()
    expect(
        page.get_by_text("Signed in as", exact=False).or_(page.get_by_text("not open to you", exact=False))
    ).to_be_visible(timeout=90_000)


CLIENT_SECRET = "client-secret-do-not-leak"


COOKIE_SECRET = "cookie-secret-do-not-leak"
