"""Entry point: `streamlit run dashboard/app.py` serves the page (ui/page.py) and the HTTP API from one process and
one port: one catalog, one pool of loaded models, two doors.

The lifespan hook loads the default version in a background thread once the port is bound, so neither the first
visitor nor the first API call waits for TensorFlow; /api/v1/ready says 503 (Retry-After) until it is loaded.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware
from starlette.routing import Mount

if __package__ in (None, ""):  # run as a script by `streamlit run`: make `dashboard` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard import history, service
from dashboard.api import connections
from dashboard.api.assistants import create_mcp, mcp_routes
from dashboard.api.compat import compat_routes
from dashboard.api.gate import BearerGate
from dashboard.api.lane import ApiLane
from dashboard.api.metrics import RequestMetrics, metrics_routes
from dashboard.api.oip import oip_routes
from dashboard.api.predicting import fast_routes
from dashboard.api.routes import create_api
from dashboard.common.files import format_bytes
from dashboard.common.logs import configure_logging, log
from dashboard.common.memory import model_budget
from dashboard.errors import DashboardError
from dashboard.service.alerts import alerts_for, watch_forever
from dashboard.service.batching import MicroBatcher
from dashboard.service.serving import Serving


def _server() -> Serving:
    try:
        settings = service.settings()
        recorder = history.recorder(settings)
    except DashboardError as exc:  # one clear line and no server: never a half-configured (half-protected) app
        log.error("the configuration cannot be used: %s", exc.message)
        raise SystemExit(f"error: the configuration cannot be used: {exc.message}") from None
    access = settings.access
    if access.open:
        log.warning("open to anyone who can reach this address: no sign-in (AUTH_*) and no API_TOKENS configured")
    elif access.sign_in is None:
        log.warning(
            "the page is open to anyone who can reach this address: API_TOKENS protect the API only; set AUTH_* to "
            "require sign-in (the page's History and Feedback tabs stay closed meanwhile)"
        )
    else:
        log.info(
            "sign-in %s; API tokens: %d; the API needs a token", "on" if access.sign_in else "off", len(access.tokens)
        )
        if access.sign_in and not (access.allowed_emails or access.allowed_domains):
            log.warning(
                "sign-in without AUTH_ALLOWED_EMAILS or AUTH_ALLOWED_DOMAINS: anyone who can sign in with "
                "the provider may use the dashboard"
            )
    budget, why = model_budget(settings.memory_mb)
    log.info(
        "loaded models may take %s (%s); MODEL_CACHE_VERSIONS=%d versions of each model",
        format_bytes(budget) if budget is not None else "any memory",
        why,
        settings.cached_versions,
    )
    batcher = MicroBatcher(wait=settings.api_batch_wait_ms / 1000, max_rows=settings.api_batch_max_rows)
    alerts = alerts_for(settings)
    if alerts is not None:
        if recorder is None:
            log.warning("MONITOR_WEBHOOK_URL is set but HISTORY=off: only load failures are alerted")
        log.info(
            "alerts go to the webhook at %s (every %g s; refused rows over %.1f%%, flagged answers over %.1f%%)",
            alerts.where,
            settings.monitor_check_seconds,
            100 * settings.monitor_error_rate,
            100 * settings.monitor_flag_rate,
        )
    return Serving(settings=settings, batcher=batcher, recorder=recorder, alerts=alerts)


def _no_nagle() -> None:
    """Turn Nagle's algorithm off on every accepted connection (a 40 ms stall per keep-alive answer otherwise).

    Streamlit binds the listening socket itself with proto 0, so the sockets it accepts have proto 0 too, and
    asyncio's transports skip TCP_NODELAY (they set it only when sock.proto == IPPROTO_TCP). Each answer is
    written as headers then body; with Nagle on, the body waits for the client's delayed ACK of the headers:
    44 ms p50 per keep-alive request here, new connections ~4 ms (quick-ACK mode). Measured after: ~2 ms.
    """
    from asyncio import base_events

    def set_nodelay(sock: socket.socket) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    base_events._set_nodelay = set_nodelay


configure_logging()
_no_nagle()
SERVER = _server()
connections.install(SERVER.settings.server_idle_seconds, SERVER.settings.server_connections_per_client)


@contextlib.asynccontextmanager
async def lifespan(_app: st.App) -> AsyncIterator[None]:
    """After the port is bound: load the default version in the background, run the /mcp door's sessions."""
    import threading

    threading.Thread(target=SERVER.preload, name="preload default version", daemon=True).start()
    if SERVER.recorder is not None:
        SERVER.recorder.start()  # the history's schema brought up to date in the background
    stop = threading.Event()
    if SERVER.alerts is not None:
        every = SERVER.settings.monitor_check_seconds
        watcher = (every, SERVER.check_alerts, stop)
        threading.Thread(target=watch_forever, args=watcher, name="alert watcher", daemon=True).start()
    async with MCP.session_manager.run():  # the /mcp door's task group
        yield
    stop.set()
    if SERVER.recorder is not None:  # stopping (SIGTERM on a restart): write what waits, spool the rest to disk
        import asyncio

        await asyncio.to_thread(SERVER.recorder.close, 5.0)


_sign_in = SERVER.settings.access.sign_in
MCP = create_mcp(SERVER, open_access=SERVER.settings.access.open)
_api_routes = [
    *fast_routes(SERVER),
    Mount("/api/v1", app=create_api(SERVER)),
    *compat_routes(SERVER),
    *oip_routes(SERVER),
    *mcp_routes(MCP),
    *metrics_routes(),
]
app = st.App(
    Path(__file__).resolve().parent / "ui" / "page.py",
    routes=_api_routes,  # reached through ApiLane, which takes the API's paths before Streamlit's middleware
    middleware=[
        Middleware(RequestMetrics),  # outermost: the gate's refusals are counted too
        Middleware(BearerGate, access=SERVER.settings.access),
        Middleware(ApiLane, routes=_api_routes),
    ],
    lifespan=lifespan,
    # AUTH_* config vars become Streamlit's [auth] section (a dyno has no secrets.toml)
    secrets=_sign_in.as_secrets() if _sign_in is not None and _sign_in.from_environment else None,
)
