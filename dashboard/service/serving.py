"""What the HTTP API keeps for the life of the process: the settings, the version list (re-read every
MODEL_REFRESH_SECONDS, the last good list kept on failure), the shared pool of loaded models, the micro-batcher,
and which versions are loading or failed (so a request can answer 503 with Retry-After instead of waiting)."""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

from dashboard import service
from dashboard.common.logs import log, report
from dashboard.config import Settings
from dashboard.errors import DashboardError
from dashboard.history import Recorder
from dashboard.service import ModelPool, Served
from dashboard.service.alerts import Alerts
from dashboard.service.batching import MicroBatcher
from dashboard.service.models import for_model, models
from dashboard.store.catalog import ModelCatalog, read_catalog
from dashboard.store.versions import Catalog, ModelVersion

State = Literal["ready", "loading", "failed"]
RETRY_FAILED_AFTER = 30.0  # seconds a failed version is answered 503 before a request tries it again


@dataclass
class Serving:
    """What a serving process keeps for the API (one per process; the page shares its model pool)."""

    settings: Settings
    batcher: MicroBatcher
    recorder: Recorder | None = None  # the prediction history (None when HISTORY=off)
    alerts: Alerts | None = None  # MONITOR_WEBHOOK_URL's sender (None when unset)
    _models: tuple[ModelCatalog, float] | None = None  # the catalog of models, and when it was read
    _versions: dict[str, tuple[Catalog, float]] = field(default_factory=dict)  # model name ("": single) -> versions
    _narrowed: dict[str, tuple] = field(default_factory=dict)  # model name -> (the catalog read, its settings)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loading: set[str] = field(default_factory=set)
    _failed: dict[str, tuple[str, float]] = field(default_factory=dict)  # identity -> (why, when)
    _frozen: bool = False  # gc.freeze() done once, after the first load

    @property
    def pool(self) -> ModelPool:
        return service.process_pool(self.settings)

    def models(self, who: str | None = None) -> ModelCatalog:
        """The catalog of models (re-read at most every MODEL_REFRESH_SECONDS, the last good one kept on failure), as
        `who` sees it when given (only the models open to them)."""
        found = self._fresh("models", self._models, self._read_models)
        self._models = found
        return found[0] if who is None else found[0].visible(who)

    def _read_models(self) -> ModelCatalog:
        if self.settings.catalog_url:
            return read_catalog(self.settings.catalog_url, self.settings)
        return models(self.settings, self.catalog())

    def model_settings(self, model: str | None = None, who: str | None = None) -> Settings:
        """The settings of the model called `model` (None: the default) if `who` may use it; UnknownModelError
        (naming the models they may use) otherwise."""
        if not self.settings.catalog_url and (model is None or who is None):
            if model is not None:
                self.models().get(model)  # a catalog of one: its own name is the only one
            return self.settings
        catalog = self.models(who)
        entry = catalog.get(model)
        narrowed = self._narrowed.get(entry.name)
        if narrowed is None or narrowed[0] is not self._models:  # narrowed once per catalog read
            narrowed = (self._models, for_model(self.settings, self.models(), entry.name))
            self._narrowed[entry.name] = narrowed
        return narrowed[1]

    def catalog(self, model: str | None = None, who: str | None = None) -> Catalog:
        """The versions of a model (None: the default one), re-read at most every MODEL_REFRESH_SECONDS; the last
        good list when a re-read fails. The default model's default version is pinned in the pool."""
        settings = self.model_settings(model, who)
        key = settings.model_name or ""
        kept = self._versions.get(key)
        found = self._fresh(f"the versions of {key or 'the model'}", kept, lambda: service.catalog(settings))
        if found is kept:  # the hot path: nothing read, nothing to pin again
            return found[0]
        self._versions[key] = found
        catalog = found[0]
        if not settings.catalog_url or key == self.models().default:
            self.pool.pin(self.settings, catalog.default)  # the default version stays loaded
        return catalog

    def _fresh(self, what: str, kept: tuple | None, read) -> tuple:
        """(value, read at): kept while younger than MODEL_REFRESH_SECONDS, else read again; kept on a failure."""
        if kept is not None and time.monotonic() - kept[1] < self.settings.refresh_seconds:
            return kept
        try:
            return read(), time.monotonic()
        except DashboardError as exc:
            if kept is None:
                raise
            report(exc, f"re-reading {what} failed; the API keeps the last one")
            return kept[0], time.monotonic()

    def state(self, version: ModelVersion) -> tuple[State, Served | None, str | None]:
        """(ready, served, None), (loading, None, None) or (failed, None, why), starting a load when needed."""
        served = self.pool.peek(self.settings, version)
        if served is not None:
            return "ready", served, None
        key = version.identity
        with self._lock:
            if key in self._failed:
                why, when = self._failed[key]
                if time.monotonic() - when < RETRY_FAILED_AFTER:
                    return "failed", None, why
                del self._failed[key]
            if key not in self._loading:
                self._loading.add(key)
                threading.Thread(target=self._load, args=(version,), name=f"load {version.label}", daemon=True).start()
        return "loading", None, None

    def preload(self) -> None:
        """Load the default version in the background (called once the port is bound)."""
        try:
            self.state(self.catalog().default)
        except DashboardError as exc:
            report(exc, "preloading the default version failed")

    def _is_default(self, version: ModelVersion) -> bool:
        """version is its model's default version."""
        try:
            return self.catalog(version.model_name or None).default.identity == version.identity
        except DashboardError:
            return False

    def check_alerts(self) -> list[dict]:
        """One round of alert checks: every model's default version that is loaded, over its history."""
        if self.alerts is None or self.recorder is None:
            return []
        posted = []
        catalog = self.models()
        for entry in catalog.entries:
            try:
                version = self.catalog(entry.name).default
            except DashboardError:
                continue  # a model whose versions cannot be read: its load failure is the alert
            served = self.pool.peek(self.settings, version)
            if served is not None:
                posted += self.alerts.check(served, self.recorder, default_model=entry.name == catalog.default)
        return posted

    def _load(self, version: ModelVersion) -> None:
        started = time.monotonic()
        try:
            self.pool.get(self.settings, version)
        except DashboardError as exc:
            report(exc, f"version {version.label} could not be loaded for the API")
            with self._lock:
                self._failed[version.identity] = (exc.message, time.monotonic())
            if self.alerts is not None and self._is_default(version):
                self.alerts.load_failed(version.model_name, version.label, exc.message)
        else:
            log.info("version %s ready for the API after %.2f s", version.label, time.monotonic() - started)
            # TensorFlow brings millions of long-lived objects: move them out of the collector's sight, or every
            # full collection stalls all requests for ~0.2 s (seen as the p99 under load). Once only: frozen
            # objects are never freed, so freezing after every load kept each released model forever (RSS grew
            # ~0.3 MB per load while versions were cycled)
            if not self._frozen:
                self._frozen = True
                gc.collect()
                gc.freeze()
        finally:
            with self._lock:
                self._loading.discard(version.identity)
