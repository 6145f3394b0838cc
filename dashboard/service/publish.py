"""`python -m dashboard publish`: check a model like the dashboard would, copy it into a store, add it to the manifest.

Steps:
1. refuse an invalid PEP 440 version, or one already in the manifest (unless force);
2. load the model under safe mode (what the dashboard would refuse is refused here) and check or infer its schema;
3. copy each file into the store as <stem>-<version>-<sha256[:12]><suffix>, so names never collide;
4. replace manifest.json atomically, last: in a folder by temp file, fsync and rename under a lock; in a bucket
   by one PUT after every file is uploaded, so readers never see an entry whose files are missing.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from packaging.version import InvalidVersion, Version

from dashboard import service
from dashboard.common import urls
from dashboard.config import Settings, load_settings
from dashboard.contract import ServableModel
from dashboard.errors import DashboardError, InputError, PublishError, SchemaError
from dashboard.loading import keras_model, runtime
from dashboard.prediction import schema as schemas
from dashboard.store.catalog import NAME, NAME_RULE, with_model
from dashboard.store.manifest import parse_manifest
from dashboard.store.targets import MANIFEST, open_store
from dashboard.store.versions import ModelVersion


@dataclass(frozen=True)
class PublishOptions:
    """How to publish, beyond what and where: the `publish` command's flags."""

    schema_path: Path | None = None
    notes: str = ""
    alias: str | None = None
    force: bool = False
    weights: Path | None = None  # with an architecture JSON as the model
    reference: Path | None = None  # training CSV: its statistics go into the entry (drift, reference input)
    lean: bool = False
    today: dt.date | None = None  # the "created" date (tests pin it)
    model_name: str | None = None  # --model NAME: DIR/NAME/manifest.json, and NAME added to DIR/catalog.json
    description: str | None = None  # --description: the catalog's one line about the model


@dataclass(frozen=True)
class LeanOutcome:
    """What --lean (or convert) did: an artifact added, or why the version stays Keras-only."""

    added: bool
    detail: str


@dataclass(frozen=True)
class Published:
    """What publish wrote."""

    version: str
    manifest: str
    files: tuple[str, ...]
    schema: str  # "given", or "inferred when served"
    lean: LeanOutcome | None = None  # None when not asked
    catalog: str | None = None  # the catalog the model was added to (--model)


def publish(
    model: Path, version: str, store: str, options: PublishOptions = PublishOptions(), settings: Settings | None = None
) -> Published:
    """Publish model (or architecture JSON + weights) as version into the store (a folder or a bucket prefix)."""
    label = _version(version)
    if options.lean and not runtime.litert_available():  # no artifact can be checked here: publish nothing
        raise PublishError(
            "--lean needs the LiteRT runtime, which is not installed here (pip install ai-edge-litert); "
            "nothing was published"
        )
    target = open_store(model_store(store, options.model_name), settings)
    for path in (model, options.weights, options.schema_path):
        if path is not None and not Path(path).is_file():
            raise PublishError(f"{path} does not exist or is not a file; check the path")
    files = {"architecture": model, "weights": options.weights} if options.weights is not None else {"model": model}
    limits = (settings or load_settings()).model_limits
    kind = "architecture" if options.weights is not None else "file"
    loaded = keras_model.load(kind, files, safe_mode=True, limits=limits)
    schema = _given_schema(options.schema_path, loaded)
    stats = _reference(options.reference, schema, loaded) if options.reference is not None else None
    with tempfile.TemporaryDirectory(prefix="dashboard-lean-") as work:  # the .tflite lives here until copied
        artifact, lean = None, None
        if options.lean:
            artifact, lean = _lean_artifact(loaded, schema, Path(work) / f"{model.stem}.tflite")
            if artifact is not None and schema is None:  # the lean runtime cannot infer the output type: write it down
                schema = schemas.infer_schema(loaded).to_dict()
        with target.locked():
            manifest = target.read_manifest()
            existing = [i for i, entry in enumerate(manifest["versions"]) if Version(str(entry["version"])) == label]
            if existing and not options.force:
                raise PublishError(
                    f"version {label} is already in {target.manifest}; publish under a new version, "
                    "or pass --force to replace it"
                )
            entry, copied = _copied(target, label, files, artifact)
            entry.update({"schema": schema, "notes": options.notes or None, "reference": stats})
            entry = {key: value for key, value in entry.items() if value is not None}
            entry["created"] = (options.today or dt.date.today()).isoformat()
            versions = [e for i, e in enumerate(manifest["versions"]) if i not in existing] + [entry]
            manifest["versions"] = sorted(versions, key=lambda e: Version(str(e["version"])), reverse=True)
            if options.alias:
                manifest.setdefault("aliases", {})[options.alias] = str(label)
            manifest.setdefault("name", options.model_name or model.stem)
            manifest = {key: manifest[key] for key in ("name", "aliases", "versions") if key in manifest} | manifest
            _write_manifest(target, manifest)
    written = "given" if options.schema_path is not None else "inferred when served"
    if options.schema_path is None and schema is not None:
        written = "inferred, written for the lean runtime"
    catalog = None
    if options.model_name:  # last: the catalog names the model once its manifest is in place
        catalog = add_to_catalog(store, options.model_name, options.description, settings)
    return Published(str(label), target.manifest, tuple(copied), written, lean, catalog)


def model_store(store: str, name: str | None) -> str:
    """Where one model's manifest and files go: STORE itself, or STORE/NAME for a model of a catalog."""
    if name is None:
        return store
    if not NAME.match(name):
        raise PublishError(f"--model {name!r}: a model's name must be {NAME_RULE}")
    return store.rstrip("/") + "/" + name


def add_to_catalog(store: str, name: str, description: str | None, settings: Settings | None = None) -> str:
    """List NAME (its manifest at NAME/manifest.json) in STORE/catalog.json, atomically against other publishers."""
    target = open_store(store, settings)
    target.change_catalog(lambda data: with_model(data, name, f"{name}/{MANIFEST}", description))
    return target.catalog


def _given_schema(path: Path | None, loaded: ServableModel) -> dict | None:
    """The --schema file, checked against the model (None when there is none: inferred when served)."""
    if path is None:
        return None
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise SchemaError(f"cannot read {path.name}: {exc.strerror}; check the path") from exc
    parsed = schemas.parse_schema_json(raw, path.name)
    schemas.check_against_model(parsed, loaded, path.name)
    return parsed.to_dict()


def _copied(target, label: Version, files: dict[str, Path], artifact: Path | None) -> tuple[dict[str, Any], list[str]]:
    """Every file of the version copied into the store: (the manifest entry naming them, the names copied)."""
    entry: dict[str, Any] = {"version": str(label)}
    if "weights" in files:
        names = {role: target.put(path, label) for role, path in files.items()}
        entry["architecture_url"], entry["weights_url"] = names["architecture"][0], names["weights"][0]
        entry["sha256"] = {"architecture_url": names["architecture"][1], "weights_url": names["weights"][1]}
        copied = [names["architecture"][0], names["weights"][0]]
    else:
        entry["url"], entry["sha256"] = target.put(files["model"], label)
        copied = [entry["url"]]
    if artifact is not None:
        entry["tflite_url"], entry["tflite_sha256"] = target.put(artifact, label)
        copied.append(entry["tflite_url"])
    return entry, copied


def _write_manifest(target, manifest: dict[str, Any]) -> None:
    """Check the manifest as the dashboard reads it (never write one it would refuse), then write it: last, once
    every file it names is in place."""
    parse_manifest(manifest, target.manifest)
    target.write_manifest((json.dumps(manifest, indent=2) + "\n").encode("utf-8"))


def add_lean(store: str, version: str, settings: Settings | None = None) -> Published:
    """Convert an already published version to LiteRT (parity-checked) and add the artifact to its manifest entry."""
    settings = settings or load_settings()
    target = open_store(store, settings)
    label = _version(version)
    with target.locked():
        manifest, entry, chosen = _published(target, label)
        stem = Path(urls.file_name((chosen.model or chosen.weights).url)).stem
        with tempfile.TemporaryDirectory(prefix="dashboard-lean-") as work:
            loaded, given = _load_published(settings, chosen)
            schema = None
            if given is not None:
                schemas.check_against_model(given[0], loaded, f"the schema of version {label}")
                schema = given[0].to_dict()
            artifact, outcome = _lean_artifact(loaded, schema, Path(work) / f"{stem}.tflite")
            if artifact is None:
                raise PublishError(f"version {label}: {outcome.detail}")
            entry["tflite_url"], entry["tflite_sha256"] = target.put(artifact, label)
            if schema is None:
                entry["schema"] = schemas.infer_schema(loaded).to_dict()
            _write_manifest(target, manifest)
    return Published(
        version=str(label), manifest=target.manifest, files=(entry["tflite_url"],), schema="kept", lean=outcome
    )


def _lean_artifact(loaded: keras_model.LoadedModel, schema: dict | None, path: Path) -> tuple[Path | None, LeanOutcome]:
    """(path, now holding a parity-checked .tflite, what happened) or (None, why the version stays Keras-only)."""
    from dashboard.loading import litert_model

    try:
        path.write_bytes(litert_model.convert(loaded.model))
        lean_model = litert_model.load(path)
        samples = _samples(schemas.parse_schema(schema) if schema else schemas.infer_schema(loaded), loaded)
        difference = litert_model.parity(loaded, lean_model, samples)
    except DashboardError as exc:
        return None, LeanOutcome(False, f"no LiteRT artifact: {exc}")
    if not difference <= litert_model.TOLERANCE:
        return None, LeanOutcome(
            False,
            f"no LiteRT artifact: its outputs differ from Keras by up to {difference:.2g} "
            f"(tolerance {litert_model.TOLERANCE:g}); the version stays Keras-only",
        )
    return path, LeanOutcome(
        True, f"LiteRT artifact added (largest difference from Keras {difference:.1g} on 257 rows)"
    )


def _samples(schema: schemas.Schema, loaded: ServableModel, rows: int = 256) -> Any:
    """The schema's defaults plus random rows within its ranges, shaped for the model."""
    rng = np.random.default_rng(0)
    columns = {}
    for feature in schema.features:
        if feature.type == "category":
            values = rng.integers(0, len(feature.choices), rows).astype(np.float64)
            first = float(feature.choices.index(feature.initial)) if feature.initial in feature.choices else 0.0
        elif feature.type == "text":
            raise PublishError(f"feature {feature.name!r} is text; LiteRT cannot serve text inputs")
        elif feature.type == "image":  # random pixels in the schema's scale, a mid-grey image first
            low, high = {"0..255": (0.0, 255.0), "0..1": (0.0, 1.0), "-1..1": (-1.0, 1.0)}[feature.scale]
            shape = (rows + 1, feature.height, feature.width, feature.channels)
            pixels = rng.uniform(low, high, shape).astype(np.float32)
            pixels[0] = (low + high) / 2
            columns[feature.name] = pixels
            continue
        else:
            low = feature.min if feature.min is not None else (feature.max - 2 if feature.max is not None else -2.0)
            high = feature.max if feature.max is not None else low + 4.0
            values = rng.uniform(low, high, rows)
            first = float(feature.initial)
        columns[feature.name] = np.concatenate([[first], values])
    if loaded.named_inputs:
        return columns
    if schema.images:
        return columns[schema.images[0].name]
    return np.column_stack([columns[name] for name in schema.names]).astype(np.float32)


def add_reference(store: str, version: str, path: Path, settings: Settings | None = None) -> Published:
    """Add (or replace) the reference statistics of a published version from its training CSV."""
    settings = settings or load_settings()
    target = open_store(store, settings)
    label = _version(version)
    with target.locked():
        manifest, entry, chosen = _published(target, label)
        loaded, given = _load_published(settings, chosen)
        entry["reference"] = _reference(path, given[0].to_dict() if given else None, loaded)
        _write_manifest(target, manifest)
    return Published(version=str(label), manifest=target.manifest, files=(), schema="kept")


def _published(target, label: Version) -> tuple[dict, dict, Any]:
    """(the store's manifest, the version's entry in it, the version as the dashboard reads it)."""
    manifest = target.read_manifest()
    matches = [e for e in manifest["versions"] if Version(str(e["version"])) == label]
    if not matches:
        raise PublishError(f"version {label} is not in {target.manifest}; publish it first")
    versions, _, _ = parse_manifest(manifest, target.manifest)
    return manifest, matches[0], next(v for v in versions if v.version == label)


def _reference(path: Path, schema: dict | None, loaded: keras_model.LoadedModel) -> dict:
    """The training CSV's reference statistics, checked against the (given or inferred) schema."""
    from dashboard.service import understand

    parsed = schemas.parse_schema(schema) if schema else schemas.infer_schema(loaded)
    if parsed.images and (Path(path).is_dir() or Path(path).suffix.lower() == ".zip"):
        from dashboard.prediction.reading import image_files

        try:
            return understand.image_reference_stats(parsed, image_files.source_files(Path(path)), Path(path).name)
        except InputError as exc:
            raise PublishError(f"{path}: {exc.message}") from exc
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PublishError(f"cannot read {path}: {exc.strerror}; check the path") from exc
    return understand.reference_stats(parsed, loaded, data, Path(path).name)


def _load_published(settings: Settings, chosen: ModelVersion) -> tuple[keras_model.LoadedModel, Any]:
    """A published version's model (verified download, safe mode) and its own schema, if any."""
    files = service.fetch_files(settings, chosen)
    loaded = keras_model.load(chosen.kind, files, safe_mode=True, limits=settings.model_limits)
    return loaded, service.given_schema(settings, chosen)


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise PublishError(f"{text!r} is not a PEP 440 version; use a form such as 1.2.0") from None
