"""The API's door: with sign-in or tokens configured, every API route (the /api/v1 ones and the TF Serving and
MLflow compatible ones) needs `Authorization: Bearer <token>`; only /api/v1/health answers without one. A refusal
is 401 with a JSON error and `WWW-Authenticate: Bearer`, whatever the body. The page's own routes are not touched
(the page has its sign-in)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from dashboard.access import Access
from dashboard.logs import log

API_PREFIXES = ("/api/v1/", "/v1/models", "/invocations", "/ping")
OPEN_PATHS = ("/api/v1/health",)
HOW = "send Authorization: Bearer <token>; create one with: python -m dashboard token create NAME"


class BearerGate:
    """ASGI middleware enforcing the token policy on API paths; puts the token's name in scope["state"]["who"]."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(API_PREFIXES) or path in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        who = "anonymous"
        if self.access.api_closed:
            refusal, who = self._check(scope)
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
