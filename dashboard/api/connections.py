"""Bounds on the connections the web server holds, so one client cannot make it unreachable for everyone.

Streamlit builds its uvicorn server's configuration itself and uvicorn has no header or body timeout: a client that
sends half a request and waits held its connection forever (2,250 of them made the server unreachable, and each
logged a line). These bounds are added to uvicorn's HTTP/1.1 protocol class when the app starts:

- a request that sends nothing for SERVER_IDLE_SECONDS (15) while the server waits for its headers or its body is
  closed (a request being answered, a keep-alive connection between requests and websockets are not touched);
- one address may hold SERVER_CONNECTIONS_PER_CLIENT (256) connections; past that new ones are closed at once
  (behind a proxy every client shares the proxy's address: raise it there);
- each cause is logged once, then counted in at most one line a minute.
"""

from __future__ import annotations

import logging
import resource
import threading
import time
from collections import Counter

from dashboard.common.logs import log

_COUNTS: Counter[str] = Counter()
_SEEN: dict[str, list[float]] = {}  # cause -> [when last logged, occurrences since]
_SEEN_LOCK = threading.Lock()


def once_a_minute(cause: str, message: str, *args: object) -> None:
    """Log a cause the first time, then at most once a minute with how many times it happened since."""
    now = time.monotonic()
    with _SEEN_LOCK:
        seen = _SEEN.setdefault(cause, [0.0, 0])
        seen[1] += 1
        if seen[0] and now - seen[0] < 60:
            return
        count, seen[0], seen[1] = seen[1], now, 0
    suffix = f" ({count} times in the last minute)" if count > 1 else ""
    log.warning(message + suffix, *args)


def install(idle_seconds: float, per_client: int) -> None:
    """Add the bounds to uvicorn's h11 protocol (once per process), and raise the open-files limit to its maximum."""
    from uvicorn.protocols.http import h11_impl

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    protocol = h11_impl.H11Protocol
    if getattr(protocol, "_dashboard_bounds", False):
        return
    made, lost, received = protocol.connection_made, protocol.connection_lost, protocol.data_received

    def connection_made(self, transport) -> None:
        made(self, transport)
        peer = transport.get_extra_info("peername")
        self._dashboard_peer = peer[0] if isinstance(peer, tuple) and peer else "unknown"
        _COUNTS[self._dashboard_peer] += 1
        if _COUNTS[self._dashboard_peer] > per_client:
            once_a_minute(
                "too many connections",
                "refused a connection: one address holds more than %d (SERVER_CONNECTIONS_PER_CLIENT)",
                per_client,
            )
            transport.close()
            return
        _rearm(self, idle_seconds)

    def data_received(self, data: bytes) -> None:
        _rearm(self, idle_seconds)
        received(self, data)

    def connection_lost(self, exc) -> None:
        timer = getattr(self, "_dashboard_idle", None)
        if timer is not None:
            timer.cancel()
        peer = getattr(self, "_dashboard_peer", None)
        if peer is not None:
            _COUNTS[peer] -= 1
            if _COUNTS[peer] <= 0:
                del _COUNTS[peer]
        lost(self, exc)

    protocol.connection_made = connection_made
    protocol.connection_lost = connection_lost
    protocol.data_received = data_received
    protocol._dashboard_bounds = True
    logging.getLogger("uvicorn.error").addFilter(_OncePerCause())


def _owes_bytes(protocol) -> bool:
    """True while the server waits for this client's request (headers or body), not while it answers."""
    import h11

    state = protocol.conn.their_state
    answering = protocol.cycle is not None and not protocol.cycle.response_complete
    return not answering and state in (h11.IDLE, h11.SEND_BODY)


def _idle(protocol, seconds: float) -> None:
    """The connection sent nothing for `seconds`: closed when it owes the rest of a request."""
    if protocol.transport.is_closing() or not _owes_bytes(protocol):
        return
    once_a_minute(
        "idle request",
        "closed a connection that sent nothing for %g s in the middle of a request (SERVER_IDLE_SECONDS)",
        seconds,
    )
    protocol.transport.close()


def _rearm(protocol, seconds: float) -> None:
    """Restart the connection's idle timer (bytes arrived, or it just opened)."""
    timer = getattr(protocol, "_dashboard_idle", None)
    if timer is not None:
        timer.cancel()
    protocol._dashboard_idle = protocol.loop.call_later(seconds, _idle, protocol, seconds)


class _OncePerCause(logging.Filter):
    """uvicorn's own per-connection warnings ("Invalid HTTP request received."): one line per message a minute."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR or record.exc_info:
            return True
        now = time.monotonic()
        with _SEEN_LOCK:
            seen = _SEEN.setdefault("uvicorn: " + str(record.msg), [0.0, 0])
            if seen[0] and now - seen[0] < 60:
                seen[1] += 1
                return False
            seen[0], seen[1] = now, 0
        return True
