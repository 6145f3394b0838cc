"""Loaded versions kept in memory: one pool per process, shared by the page and the HTTP API."""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict

from dashboard.config import Settings
from dashboard.service.load import Progress, Served, load_version
from dashboard.store.versions import ModelVersion

log = logging.getLogger("dashboard")


class ModelPool:
    """Loaded versions kept by (version, digest), at most `size` at once, least recently used dropped first.

    One load per key even when several sessions ask at the same moment; a failed load is not kept,
    so the next request retries it.
    """

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._lock = threading.Lock()
        self._served: OrderedDict[tuple[str, str], Served] = OrderedDict()
        self._loading: dict[tuple[str, str], threading.Lock] = {}
        self._pinned: set[tuple[str, str, str]] = set()  # never released (the default version)

    def pin(self, settings: Settings, version: ModelVersion) -> None:
        """Keep this version loaded whatever else is asked for (the default version: its answers must never come
        from another version because a burst of requests for other versions pushed it out)."""
        with self._lock:
            self._pinned = {(version.label, version.identity, settings.runtime)}

    def get(self, settings: Settings, version: ModelVersion, progress: Progress | None = None) -> Served:
        """The served version, loading it (with progress) if it is not in the pool."""
        key = (version.label, version.identity, settings.runtime)
        with self._lock:
            if key in self._served:
                self._served.move_to_end(key)
                return self._served[key]
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._served:
                    self._served.move_to_end(key)
                    return self._served[key]
            served = load_version(settings, version, progress)
            with self._lock:
                self._served[key] = served
                while len(self._served) > self.size:
                    dropped = next((k for k in self._served if k not in self._pinned and k != key), None)
                    if dropped is None:
                        break
                    del self._served[dropped]
                    log.info("released version %s to stay within %d loaded versions", dropped[0], self.size)
                self._loading.pop(key, None)
        gc.collect()
        return served

    def loaded(self) -> list[str]:
        """Labels of the versions in memory, least recently used first."""
        with self._lock:
            return [key[0] for key in self._served]

    def peek(self, settings: Settings, version: ModelVersion) -> Served | None:
        """The served version if it is already loaded, without loading it."""
        with self._lock:
            return self._served.get((version.label, version.identity, settings.runtime))


_POOLS: dict[int, ModelPool] = {}


_POOLS_LOCK = threading.Lock()


def process_pool(size: int) -> ModelPool:
    """The one pool of loaded versions in this process, shared by the page and the HTTP API (one model in memory,
    two doors). The only process-wide state outside st.cache_resource: the API runs outside any script run."""
    with _POOLS_LOCK:
        if size not in _POOLS:
            _POOLS[size] = ModelPool(size)
        return _POOLS[size]
