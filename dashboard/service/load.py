"""The loading chain: settings -> versions -> verified files -> a loaded model with its schema (`Served`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dashboard.common import urls
from dashboard.config import Settings, load_settings
from dashboard.contract import Runtime, ServableModel
from dashboard.errors import ModelLoadError
from dashboard.loading import keras_model, runtime
from dashboard.prediction import images
from dashboard.prediction import schema as schemas
from dashboard.prediction.schema import Schema
from dashboard.store import fetch
from dashboard.store.sources import load_catalog
from dashboard.store.versions import Catalog, FileRef, ModelVersion

log = logging.getLogger("dashboard")

# stage ("download iris-1.1.0.keras", "load"), bytes or rows done, total (None when unknown)
Progress = Callable[[str, int, "int | None"], None]
SchemaSource = Literal["manifest", "schema_url", "inferred from the model"]


@dataclass(frozen=True)
class Served:
    """A version ready to predict: what it is, the loaded model and its schema."""

    version: ModelVersion
    model: ServableModel  # keras_model.LoadedModel or litert_model.LiteModel
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
    """The settings from the environment and secrets (IMAGE_MAX_PIXELS applied to this process's image decoding)."""
    found = load_settings(environ)
    images.set_max_pixels(found.image_max_pixels)
    return found


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
    if runtime.keras_available():
        return "keras"
    if version.tflite is not None:
        return "litert"
    raise ModelLoadError(
        f"TensorFlow is not installed and version {version.label} has no LiteRT artifact; install "
        "requirements.txt for the Keras runtime, or publish the version with --lean"
    )


def load_version(
    settings: Settings,
    version: ModelVersion,
    progress: Progress | None = None,
    admit: Callable[[int], None] | None = None,
) -> Served:
    """Download, load and describe a version; every failure is a typed DashboardError. `admit` is told the bytes of
    the downloaded files before the runtime reads them (the pool makes room, or refuses the version)."""
    runtime = runtime_for(settings, version)
    model: ServableModel
    if runtime == "litert":
        from dashboard.loading import litert_model

        path = _fetch(settings, version.tflite, progress)
        if admit:
            admit(path.stat().st_size)
        if progress:
            progress("load", 0, None)
        model = litert_model.load(path)
    else:
        files = fetch_files(settings, version, progress)
        if admit:
            admit(sum(path.stat().st_size for path in files.values()))
        if progress:
            progress("load", 0, None)
        model = keras_model.load(
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
