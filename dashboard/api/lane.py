"""The API's own lane through the server: requests for the API's paths go straight to its router, past the
middleware Streamlit puts in front of every request (path security for its static files, the session cookie, gzip
at level 9) and past its page routes, none of which an API call uses. Everything else goes on to Streamlit.

It is one of st.App's user middleware, which run before Streamlit's own; the bearer-token gate runs before it. A path
under an API prefix that no API route takes still reaches Streamlit, as before.
"""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import BaseRoute, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from dashboard.api.gate import API_PREFIXES

GZIP_MIN_BYTES = 4096  # a single-row answer (~300 bytes) is not worth compressing; a 10,000-row one is
GZIP_LEVEL = 1  # most of the size saved for a small share of level 9's CPU


class ApiLane:
    """ASGI middleware: API paths to the API's router (gzip at level 1 for large answers), the rest to the app."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        router = Router(routes=routes, default=app)
        self.api = GZipMiddleware(router, minimum_size=GZIP_MIN_BYTES, compresslevel=GZIP_LEVEL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith(API_PREFIXES):
            await self.api(scope, receive, send)
        else:
            await self.app(scope, receive, send)
