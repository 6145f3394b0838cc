"""GET /metrics (Prometheus's text format, common.metrics) and the middleware that counts and times every API
request: by door (route family), model and version (the answer's X-Model-Name and X-Model-Version headers, so a
name nobody published never becomes a label) and status code, including the gate's 401s."""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboard.common import metrics

DOORS = (  # path prefix -> door (route family), first match
    ("/api/v1/", "api"),
    ("/v1/models", "tf_serving"),
    ("/invocations", "mlflow"),
    ("/ping", "mlflow"),
    ("/v2", "open_inference"),
    ("/mcp", "mcp"),
    ("/metrics", "metrics"),
)


def door_of(path: str) -> str | None:
    return next((door for prefix, door in DOORS if path.startswith(prefix)), None)


class RequestMetrics:
    """ASGI middleware: each API request counted and timed once its answer is sent (the page's paths are not)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        door = door_of(scope.get("path", "")) if scope["type"] == "http" else None
        if door is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        seen: dict[str, str] = {"status": "500", "model": "", "version": ""}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = str(message["status"])
                for name, value in message.get("headers") or ():
                    lowered = name.lower()
                    if lowered == b"x-model-name":
                        seen["model"] = value.decode("latin-1")[:64]
                    elif lowered == b"x-model-version":
                        seen["version"] = value.decode("latin-1")[:64]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            metrics.REQUESTS.labels(door, seen["model"], seen["version"], seen["status"]).inc()
            metrics.REQUEST_SECONDS.labels(door, seen["model"]).observe(time.perf_counter() - started)


async def _metrics(_request: Request) -> Response:
    body, content_type = await asyncio.to_thread(metrics.exposition)  # multi-process mode reads files
    return Response(body, headers={"Content-Type": content_type})


def metrics_routes() -> list[Route]:
    return [Route("/metrics", _metrics, methods=["GET"])]
