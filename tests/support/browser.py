"""The browser the page tests drive: the system Chromium (Playwright cannot download one here), and waiting for a
script run to finish."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.helpers import CHROMIUM, CHROMIUM_FLAGS

FLAGS = CHROMIUM_FLAGS


def settled(page) -> None:
    """Wait until the script run a click started has finished (switching tabs reruns the page once)."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=60_000)


def chromium_or_skip() -> None:
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("REQUIRE_BROWSER"):
        pytest.fail(f"REQUIRE_BROWSER is set but {CHROMIUM} is missing: apt-get install chromium")
    reason = f"browser test skipped: {CHROMIUM} not found (install Debian's chromium to run it)"
    print(reason)
    pytest.skip(reason)
