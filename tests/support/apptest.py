"""The page under AppTest: the page script (app.py defines st.App, which AppTest cannot render), with a timeout that
allows for TensorFlow's import."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.support.helpers import REPO

APP = str(REPO / "dashboard" / "ui" / "page.py")
TIMEOUT = 120  # seconds: the first run imports TensorFlow


def start(query: dict | None = None) -> AppTest:
    """The page run once (with these query parameters)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.run()
