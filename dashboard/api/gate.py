"""The API's door: with sign-in or tokens configured, every API route (the /api/v1 ones and the TF Serving and
MLflow compatible ones) needs `Authorization: Bearer <token>`; only /api/v1/health answers without one. A refusal
is 401 with a JSON error and `WWW-Authenticate: Bearer`, whatever the body. The page's own routes are not touched
(the page has its sign-in)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from dashboard.access import Access
from dashboard.common import sessions
from dashboard.common.logs import log

API_PREFIXES = ("/api/v1/", "/v1/models", "/invocations", "/ping", "/v2", "/mcp", "/metrics")
OPEN_PATHS = ("/api/v1/health", "/v2/health/live")  # liveness probes carry no token
# the docs page, its assets and the OpenAPI document: also for a person signed in to the page (the page's own
# cookie), so they can read the API and try calls with a token from the docs page's Authorize button
DOC_PATHS = ("/api/v1/docs", "/api/v1/openapi.json")
DOC_PREFIXES = ("/api/v1/static/",)
# Streamlit's own routes that take or give a session's data: with sign-in on, only for a signed-in, allowed person
# (before sign-in nothing but the sign-in page is served: a stranger's 45 MB uploads were accepted here)
PAGE_PRIVATE = ("/_stcore/upload_file/", "/media/", "/component/", "/_stcore/bidi-components/", "/_stcore/metrics")
HOW = "send Authorization: Bearer <token>; create one with: python -m dashboard token create NAME"


class BearerGate:
    """ASGI middleware enforcing the token policy on API paths; puts the token's name in scope["state"]["who"]."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and self.access.sign_in is not None and path.rstrip("/").endswith("/auth/logout"):
            claims = page_user(scope, self.access)  # Sign out: this person's sessions until now end here
            if claims is not None:
                sessions.sign_out(claims)
        private = scope["type"] == "http" and self.access.sign_in is not None and path.startswith(PAGE_PRIVATE)
        if private and self._signed_in(scope) is None:
            await _answer(send, 401, "sign_in_required", "sign in to the dashboard first")
            return
        if scope["type"] != "http" or not path.startswith(API_PREFIXES) or path in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        who = "anonymous"
        if self.access.api_closed:
            refusal, who = self._check(scope)
            if refusal is not None and (path in DOC_PATHS or path.startswith(DOC_PREFIXES)):
                signed_in = self._signed_in(scope)
                if signed_in is not None:
                    refusal, who = None, signed_in
            if refusal is not None:
                await self._refuse(send, *refusal)
                return
        if path.startswith("/api/v1/") and any(ord(c) < 32 or ord(c) == 127 for c in path):
            # a decoded %0A and the like: the /api/v1 mount's pattern never matches such a path, and the answer
            # would otherwise be the server's plain-text 404 instead of the API's JSON one
            await _answer(send, 404, "not_found", "no API route for a path with control characters; see /api/v1/docs")
            return
        scope.setdefault("state", {})["who"] = who
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> tuple[tuple[str, str] | None, str]:
        headers = dict(scope.get("headers") or [])
        raw = headers.get(b"authorization")
        if raw is None:
            return ("missing_token", f"this API needs a token: {HOW}"), ""
        value = raw.decode("latin-1")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return ("wrong_scheme", f"Authorization must use the Bearer scheme: {HOW}"), ""
        if not self.access.tokens:
            return ("no_tokens", "no API tokens are configured for this dashboard; ask its owner for one"), ""
        name = self.access.token_name(token)
        if name is None:
            log.warning("API request refused: a token that is not configured (revoked, mistyped or foreign)")
            return (
                "invalid_token",
                "the token is not valid (revoked, mistyped or for another app); ask for a new one",
            ), ""
        return None, f"token {name}"

    def _signed_in(self, scope: Scope) -> str | None:
        """Who is signed in to the page (its signed cookie, valid and allowed), or None; open when sign-in is off and
        only tokens are configured (the page itself is open then, so its API's description is too)."""
        sign_in = self.access.sign_in
        if sign_in is None:
            return "anonymous"
        claims = page_user(scope, self.access)
        if claims is None or not self.access.allows(claims)[0]:
            return None
        return str(claims.get("email") or claims.get("sub") or "someone")

    @staticmethod
    async def _refuse(send: Send, code: str, message: str) -> None:
        challenge = 'Bearer realm="dashboard"' + ("" if code == "missing_token" else ', error="invalid_token"')
        await _answer(send, 401, code, message, [(b"www-authenticate", challenge.encode())])


async def _answer(send: Send, status: int, code: str, message: str, headers: list | None = None) -> None:
    """The API's JSON error answer, sent from the middleware."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def page_user(scope: Scope, access: Access) -> dict | None:
    """The claims of a live page session (st.login's signed cookie: not forged, not older than AUTH_SESSION_HOURS,
    not signed out since), or None."""
    from http.cookies import SimpleCookie

    headers = dict(scope.get("headers") or [])
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get(b"cookie", b"").decode("latin-1"))
    except Exception:  # a malformed Cookie header is no sign-in
        return None
    claims, _ = sessions.signed_in(
        lambda name: jar[name].value if name in jar else None, access.sign_in.cookie_secret, access.session_hours
    )
    return claims
