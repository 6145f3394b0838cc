"""Loaded versions kept in memory: one pool per process, shared by the page and the HTTP API.

Two bounds: MODEL_CACHE_VERSIONS versions of one model, and MODEL_MEMORY_MB for every model together. Least
recently used versions are released first; the default model's default version is pinned (never released). A
version whose files alone would not fit beside the pinned one is refused before it is loaded, with both numbers:
a clear error, never the dyno's OOM kill.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from dashboard.common import metrics
from dashboard.common.files import format_bytes
from dashboard.common.memory import model_budget, rss_bytes
from dashboard.config import Settings
from dashboard.errors import ModelMemoryError
from dashboard.service.load import Progress, Served, load_version
from dashboard.store.versions import ModelVersion

log = logging.getLogger("dashboard")
Key = tuple[str, str, str, str]  # (model, version label, identity, runtime)
OVERHEAD = 1 << 20  # a loaded model's Python and runtime objects beyond its weights (measured ~0.6 MB for tiny ones)


@dataclass(frozen=True)
class Loaded:
    """One version in memory, as the pool counts it (for /metrics, the model card and the memory bench)."""

    model: str
    version: str
    bytes: int
    pinned: bool


def key_of(settings: Settings, version: ModelVersion) -> Key:
    return (version.model_name, version.label, version.identity, settings.runtime)


class ModelPool:
    """Loaded versions kept by (model, version, identity, runtime) within a count per model and a memory budget.

    One load per key even when several sessions ask at the same moment, and one load at a time in the process (so
    the memory a load takes can be measured); a failed load is not kept, so the next request retries it.
    """

    def __init__(self, size: int, memory_bytes: int | None = None) -> None:
        self.size = max(1, size)
        self.memory_bytes = memory_bytes  # None: no memory bound (tests and tools that load one or two versions)
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._served: OrderedDict[Key, Served] = OrderedDict()
        self._bytes: dict[Key, int] = {}
        self._loading: dict[Key, threading.Lock] = {}
        self._pinned: set[Key] = set()  # never released (the default model's default version)
        self._runtimes_started: set[str] = set()

    def pin(self, settings: Settings, version: ModelVersion) -> None:
        """Keep this version loaded whatever else is asked for (the default version: its answers must never come
        from another version because a burst of requests for other versions pushed it out)."""
        with self._lock:
            self._pinned = {key_of(settings, version)}

    def get(self, settings: Settings, version: ModelVersion, progress: Progress | None = None) -> Served:
        """The served version, loading it (with progress) if it is not in the pool."""
        key = key_of(settings, version)
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
            started = time.monotonic()
            try:
                with self._load_lock:
                    before = rss_bytes()
                    served = load_version(settings, version, progress, admit=lambda size: self._admit(key, size))
                    cost = self._cost(served, rss_bytes() - before)
            except BaseException:
                metrics.MODEL_LOADS.labels(key[0], key[1], "failed").inc()
                raise
            finally:
                with self._lock:
                    self._loading.pop(key, None)
            metrics.MODEL_LOADS.labels(key[0], key[1], "loaded").inc()
            metrics.MODEL_LOAD_SECONDS.labels(key[0]).observe(time.monotonic() - started)
            with self._lock:
                self._served[key], self._bytes[key] = served, cost
                metrics.MODELS_LOADED.inc()
                metrics.MODEL_BYTES.labels(key[0], key[1]).inc(cost)
                self._release_over(key)
        gc.collect()
        return served

    def _cost(self, served: Served, grown: int) -> int:
        """What the version takes in memory: the process's growth while it loaded (loads run one at a time), at least
        its weights; the first load of a runtime is charged its weights only (its growth is the runtime starting)."""
        weights = served.model.weight_bytes + OVERHEAD
        if served.runtime not in self._runtimes_started:
            self._runtimes_started.add(served.runtime)
            return weights
        return max(weights, grown)

    def _admit(self, key: Key, size: int) -> None:
        """Before a load: make room for a version whose files take `size` bytes, or refuse it with both numbers."""
        if self.memory_bytes is None:
            return
        with self._lock:
            pinned = sum(self._bytes[k] for k in self._pinned if k in self._bytes and k != key)
            if pinned + size + OVERHEAD > self.memory_bytes:
                raise ModelMemoryError(
                    f"version {key[1]} of {key[0]} needs about {format_bytes(size + OVERHEAD)} loaded, and only "
                    f"{format_bytes(max(0, self.memory_bytes - pinned))} of MODEL_MEMORY_MB "
                    f"({format_bytes(self.memory_bytes)}) is free beside the default version; raise MODEL_MEMORY_MB "
                    "(on a larger dyno) or publish a smaller model"
                )
            self._release_over(None, size + OVERHEAD)

    def _release_over(self, keep: Key | None, coming: int = 0) -> None:
        """Release least recently used versions (never pinned ones, nor `keep`) while over a bound: any model's when
        over the memory budget, else `keep`'s own model's past MODEL_CACHE_VERSIONS. Holds _lock."""
        while True:
            if self.memory_bytes is not None and sum(self._bytes.values()) + coming > self.memory_bytes:
                model = None
            elif keep is not None and sum(1 for k in self._served if k[0] == keep[0]) > self.size:
                model = keep[0]
            else:
                return
            dropped = next(
                (k for k in self._served if k not in self._pinned and k != keep and model in (None, k[0])), None
            )
            if dropped is None:
                return
            del self._served[dropped]
            freed = self._bytes.pop(dropped, 0)
            metrics.MODELS_LOADED.dec()
            metrics.MODEL_BYTES.labels(dropped[0], dropped[1]).dec(freed)
            log.info(
                "released version %s of %s (%s) to stay within bounds", dropped[1], dropped[0], format_bytes(freed)
            )

    def loaded(self, model: str | None = None) -> list[str]:
        """Labels of the versions in memory (of one model, when given), least recently used first."""
        with self._lock:
            return [key[1] for key in self._served if model is None or key[0] == model]

    def in_memory(self) -> list[Loaded]:
        """Every version in memory with the bytes it is counted for, least recently used first."""
        with self._lock:
            return [Loaded(k[0], k[1], self._bytes.get(k, 0), k in self._pinned) for k in self._served]

    def peek(self, settings: Settings, version: ModelVersion) -> Served | None:
        """The served version if it is already loaded, without loading it."""
        with self._lock:
            return self._served.get(key_of(settings, version))


_POOLS: dict[tuple[int, int | None], ModelPool] = {}  # (MODEL_CACHE_VERSIONS, MODEL_MEMORY_MB) -> the pool


_POOLS_LOCK = threading.Lock()


def process_pool(settings: Settings) -> ModelPool:
    """The one pool of loaded versions in this process, shared by the page and the HTTP API (one model in memory,
    two doors). The only process-wide state outside st.cache_resource: the API runs outside any script run."""
    key = (settings.cached_versions, settings.memory_mb)
    with _POOLS_LOCK:  # the budget (read from the cgroup when unset) is worked out once, not on every request
        if key not in _POOLS:
            _POOLS[key] = ModelPool(settings.cached_versions, model_budget(settings.memory_mb)[0])
        return _POOLS[key]
