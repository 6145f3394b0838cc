"""The one place the steps are chained: settings -> versions -> files -> model -> predictions.

The command line and the UI both call these functions; neither repeats the chain.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from dashboard import csvio, fetch, loader, predict, urls
from dashboard import schema as schemas
from dashboard.config import Settings, load_settings
from dashboard.contract import Runtime, ServableModel
from dashboard.csvio import CsvTable
from dashboard.errors import ModelLoadError
from dashboard.predict import BatchResult
from dashboard.registry import load_catalog
from dashboard.schema import Schema
from dashboard.validate import validate
from dashboard.versions import Catalog, FileRef, ModelVersion

log = logging.getLogger("dashboard")

# stage ("download iris-1.1.0.keras", "load"), bytes or rows done, total (None when unknown)
Progress = Callable[[str, int, "int | None"], None]
SchemaSource = Literal["manifest", "schema_url", "inferred from the model"]


@dataclass(frozen=True)
class Served:
    """A version ready to predict: what it is, the loaded model and its schema."""

    version: ModelVersion
    model: ServableModel  # loader.LoadedModel or lite.LiteModel
    schema: Schema
    schema_source: SchemaSource
    runtime: Runtime = "keras"

    @property
    def label(self) -> str:
        """The version label."""
        return self.version.label

    @property
    def short_sha(self) -> str:
        """The first 12 hex digits of the version's digest."""
        return self.version.digest[:12]


def settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from the environment and secrets."""
    return load_settings(environ)


def catalog(settings: Settings) -> Catalog:
    """Every version from every configured source, and the default."""
    return load_catalog(settings)


def fetch_files(settings: Settings, version: ModelVersion, progress: Progress | None = None) -> dict[str, Path]:
    """Verified local copies of every file of the version."""
    roles = {"model": version.model, "architecture": version.architecture, "weights": version.weights}
    return {role: _fetch(settings, ref, progress) for role, ref in roles.items() if ref is not None}


def fetch_file(settings: Settings, ref: FileRef) -> Path:
    """One verified local copy of a file of a version."""
    return _fetch(settings, ref, None)


def _fetch(settings: Settings, ref: FileRef, progress: Progress | None) -> Path:
    """One verified file, reporting its download as the stage 'download <name>'."""
    stage = f"download {urls.file_name(ref.url)}"
    report = (lambda done, total: progress(stage, done, total)) if progress else None
    return fetch.fetch(ref.url, settings, ref.sha256, report)


def runtime_for(settings: Settings, version: ModelVersion) -> Runtime:
    """'keras' or 'litert' for this version under MODEL_RUNTIME (auto: Keras when TensorFlow is installed)."""
    if settings.runtime == "keras":
        return "keras"
    if settings.runtime == "litert":
        if version.tflite is None:
            raise ModelLoadError(
                f"version {version.label} has no LiteRT artifact (MODEL_RUNTIME=litert); publish it "
                "with --lean, or set MODEL_RUNTIME=keras"
            )
        return "litert"
    if keras_available():
        return "keras"
    if version.tflite is not None:
        return "litert"
    raise ModelLoadError(
        f"TensorFlow is not installed and version {version.label} has no LiteRT artifact; install "
        "requirements.txt for the Keras runtime, or publish the version with --lean"
    )


def keras_available() -> bool:
    """True when Keras (and so TensorFlow) can be imported here."""
    try:
        import keras  # noqa: F401
    except Exception:  # ImportError, or a broken install: either way the Keras runtime cannot serve
        return False
    return True


def load_version(settings: Settings, version: ModelVersion, progress: Progress | None = None) -> Served:
    """Download, load and describe a version; every failure is a typed DashboardError."""
    runtime = runtime_for(settings, version)
    model: ServableModel
    if runtime == "litert":
        from dashboard import lite

        path = _fetch(settings, version.tflite, progress)
        if progress:
            progress("load", 0, None)
        model = lite.load(path)
    else:
        files = fetch_files(settings, version, progress)
        if progress:
            progress("load", 0, None)
        model = loader.load(
            version.kind, files, safe_mode=settings.safe_mode, builder=version.builder, limits=settings.model_limits
        )
    schema, source = resolve_schema(settings, version, model)
    log.info(
        "loaded version %s (%s, runtime %s, sha256 %s) in %.2f s",
        version.label,
        model.format,
        runtime,
        version.digest[:12],
        model.load_seconds,
    )
    return Served(version=version, model=model, schema=schema, schema_source=source, runtime=runtime)


def given_schema(settings: Settings, version: ModelVersion) -> tuple[Schema, SchemaSource] | None:
    """The version's own schema (inline in the manifest, or from schema_url), or None when it has none."""
    where = f"the schema of version {version.label}"
    if version.schema is not None:
        return schemas.parse_schema(version.schema, where), "manifest"
    if version.schema_url:
        raw = fetch.read_bytes(version.schema_url, settings)
        return schemas.parse_schema_json(raw, f"{where} ({urls.redact(version.schema_url)})"), "schema_url"
    return None


def resolve_schema(settings: Settings, version: ModelVersion, model: ServableModel) -> tuple[Schema, SchemaSource]:
    """The version's schema (inline, from schema_url, or inferred) checked against the model."""
    given = given_schema(settings, version)
    if given is None:
        return schemas.infer_schema(model), "inferred from the model"
    schemas.check_against_model(given[0], model, f"the schema of version {version.label}")
    return given


def predict_table(
    served: Served, table: CsvTable, progress: predict.ProgressFn | None = None, max_warnings: int | None = 20
) -> BatchResult:
    """Validate a table read from a CSV file against the served schema and predict its good rows."""
    strings = frozenset(i.name for i in served.model.inputs if i.is_string)
    validated = validate(table, served.schema, served.model.named_inputs, strings, max_warnings)
    return predict.predict_validated(served.model, table.frame, validated, served.schema.output, served.label, progress)


def predict_frame(
    served: Served, frame: pd.DataFrame, progress: predict.ProgressFn | None = None, max_warnings: int | None = 20
) -> BatchResult:
    """Predict a table built in code (the form, the API): no reading problems, no decimal commas.

    max_warnings: how many range warnings to keep (None: all, as the API reports them per row)."""
    return predict_table(served, CsvTable(frame), progress, max_warnings)


def read_csv(settings: Settings, data: bytes) -> CsvTable:
    """Read uploaded CSV bytes with the settings' limits."""
    return csvio.read_csv(data, settings.csv_max_bytes, settings.csv_max_rows, settings.csv_max_columns)


def predict_csv(
    settings: Settings, served: Served, data: bytes, progress: predict.ProgressFn | None = None
) -> BatchResult:
    """Read uploaded CSV bytes (with the settings' limits) and predict them."""
    return predict_table(served, read_csv(settings, data), progress)


def predict_row(served: Served, values: Mapping[str, Any]) -> BatchResult:
    """Predict one row given as {feature: value} (the form's path)."""
    frame = pd.DataFrame([{name: values.get(name) for name in served.schema.names}])
    return predict_frame(served, frame)


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
