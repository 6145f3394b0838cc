"""A real loopback HTTP store for the tests, with fault switches (404, 500, 403, hang, truncate, big, slow).

Kept apart from the fixtures as psf/requests keeps its test server: conftest.py only starts and stops it.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from pathlib import Path


class StoreHandler(http.server.BaseHTTPRequestHandler):
    """Serves server.files; server.faults[path] switches a path to 404, 500, slow, trickle, hang or truncated."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        server = self.server
        path = self.path.split("?", 1)[0]
        with server.lock:
            server.hits[path] = server.hits.get(path, 0) + 1
            server.requests.append(self.path)
            fault = server.faults.get(path)
            if isinstance(fault, list):  # a sequence of faults, one per request, then normal
                fault = fault.pop(0) if fault else None
        body = server.files.get(path)
        if fault == "404" or body is None:
            return self._send(404, b"not found")
        if fault == "500":
            return self._send(500, b"boom")
        if fault == "403":
            return self._send(403, b"expired")
        if fault == "hang":
            time.sleep(server.hang_seconds)
            return self._send(200, body)
        if fault == "truncate":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if fault == "big":  # claims a huge length, then streams more than any cap
            self.send_response(200)
            self.end_headers()
            self.close_connection = True
            try:
                for _ in range(64):
                    self.wfile.write(b"\0" * (1 << 16))
            except OSError:
                pass
            return
        if fault == "trickle":  # one byte every 0.3 s (bounded: gives up after 30 bytes or a closed client)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for i in range(min(len(body), 30)):
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(0.3)
            except OSError:
                pass
            self.close_connection = True
            return
        if fault == "slow":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(0, len(body), 4096):
                self.wfile.write(body[i : i + 4096])
                self.wfile.flush()
                time.sleep(0.01)
            return
        self._send(200, body)

    def do_HEAD(self):  # headers only (ETag, Content-Length): not a download, so not counted in hits
        body = self.server.files.get(self.path.split("?", 1)[0])
        self.send_response(404 if body is None else 200)
        if body is not None:
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", '"' + hashlib.sha256(body).hexdigest()[:16] + '"')
        self.end_headers()

    def _send(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"' + hashlib.sha256(body).hexdigest()[:16] + '"')
        self.end_headers()
        self.wfile.write(body)


class Store:
    """A running loopback server: put files in, switch faults, read hit counts."""

    def __init__(self, server):
        self.server = server
        self.base = f"http://127.0.0.1:{server.server_address[1]}"

    def put(self, path: str, data: bytes) -> str:
        self.server.files["/" + path.lstrip("/")] = data
        return self.url(path)

    def put_file(self, path: str, source: Path) -> str:
        return self.put(path, Path(source).read_bytes())

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def fault(self, path: str, fault) -> None:
        self.server.faults["/" + path.lstrip("/")] = fault

    def hits(self, path: str) -> int:
        return self.server.hits.get("/" + path.lstrip("/"), 0)

    def clear(self) -> None:
        self.server.files.clear()
        self.server.faults.clear()
        self.server.hits.clear()
        self.server.requests.clear()


class QuietServer(http.server.ThreadingHTTPServer):
    """A client that gives up mid-response (timeouts, size caps) is expected here: no traceback on stderr."""

    def handle_error(self, request, client_address):
        pass


def start_store() -> tuple[Store, threading.Thread]:
    """A running store on a free loopback port (stop it with stop_store)."""
    server = QuietServer(("127.0.0.1", 0), StoreHandler)
    server.daemon_threads = True
    server.files, server.faults, server.hits, server.requests = {}, {}, {}, []
    server.lock = threading.Lock()
    server.hang_seconds = 5
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return Store(server), thread


def stop_store(store: Store) -> None:
    store.server.shutdown()
    store.server.server_close()
