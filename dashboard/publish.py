"""`python -m dashboard publish`: check a model like the dashboard would, copy it into a store, add it to the manifest.

Steps:
1. refuse an invalid PEP 440 version, or one already in the manifest (unless force);
2. load the model under safe mode (what the dashboard would refuse is refused here) and check or infer its schema;
3. copy each file into the store as <stem>-<version>-<sha256[:12]><suffix>, so names never collide;
4. replace manifest.json atomically, last: in a folder by temp file, fsync and rename under a lock; in a bucket
   by one PUT after every file is uploaded, so readers never see an entry whose files are missing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from packaging.version import InvalidVersion, Version

from dashboard import fetch, loader, schema as schemas
from dashboard.config import Settings, load_settings
from dashboard.errors import DashboardError, ManifestError, SchemaError
from dashboard.registry import parse_manifest

MANIFEST = "manifest.json"


class PublishError(DashboardError):
    """A publish request that cannot be carried out as asked."""


@dataclass(frozen=True)
class Published:
    """What publish wrote."""

    version: str
    manifest: str
    files: tuple[str, ...]
    schema: str  # "given", or "inferred when served"
    lean: str = ""  # what --lean did ("" when not asked)


def publish(model: Path, version: str, store: str, schema_path: Path | None = None, notes: str = "",
            alias: str | None = None, force: bool = False, weights: Path | None = None,
            today: dt.date | None = None, settings: Settings | None = None, lean: bool = False) -> Published:
    """Publish model (or architecture JSON + weights) as version into the store (a folder or a bucket prefix)."""
    label = _version(version)
    target = _store(store, settings)
    for path in (model, weights, schema_path):
        if path is not None and not Path(path).is_file():
            raise PublishError(f"{path} does not exist or is not a file; check the path")
    kind = "architecture" if weights is not None else "file"
    files = {"architecture": model, "weights": weights} if weights is not None else {"model": model}
    loaded = loader.load(kind, files, safe_mode=True)
    schema = None
    if schema_path is not None:
        try:
            data = json.loads(Path(schema_path).read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SchemaError(f"{schema_path.name} is not valid JSON ({exc}); fix it and publish again") from exc
        parsed = schemas.parse_schema(data, schema_path.name)
        schemas.check_against_model(parsed, loaded, schema_path.name)
        schema = parsed.to_dict()
    artifact, lean_note = None, ""
    if lean:
        artifact, lean_note = _lean_artifact(loaded, schema, model.stem)
        if artifact is not None and schema is None:  # the lean runtime cannot infer the output type: write it down
            schema = schemas.infer_schema(loaded).to_dict()
    with target.locked():
        manifest = target.read_manifest()
        existing = [i for i, entry in enumerate(manifest["versions"]) if Version(str(entry["version"])) == label]
        if existing and not force:
            raise PublishError(f"version {label} is already in {target.manifest}; publish under a new version, "
                               "or pass --force to replace it")
        entry: dict[str, Any] = {"version": str(label)}
        if weights is not None:
            names = {role: target.put(path, label) for role, path in files.items()}
            entry["architecture_url"], entry["weights_url"] = names["architecture"][0], names["weights"][0]
            entry["sha256"] = {"architecture_url": names["architecture"][1], "weights_url": names["weights"][1]}
            copied = [names["architecture"][0], names["weights"][0]]
        else:
            name, digest = target.put(model, label)
            entry["url"], entry["sha256"] = name, digest
            copied = [name]
        if artifact is not None:
            entry["tflite_url"], entry["tflite_sha256"] = target.put(artifact, label)
            copied.append(entry["tflite_url"])
        if schema is not None:
            entry["schema"] = schema
        if notes:
            entry["notes"] = notes
        entry["created"] = (today or dt.date.today()).isoformat()
        versions = [e for i, e in enumerate(manifest["versions"]) if i not in existing] + [entry]
        manifest["versions"] = sorted(versions, key=lambda e: Version(str(e["version"])), reverse=True)
        if alias:
            manifest.setdefault("aliases", {})[alias] = str(label)
        manifest.setdefault("name", model.stem)
        manifest = {key: manifest[key] for key in ("name", "aliases", "versions") if key in manifest} | manifest
        parse_manifest(manifest, target.manifest)  # never write a manifest the dashboard would refuse
        target.write_manifest((json.dumps(manifest, indent=2) + "\n").encode("utf-8"))  # last: files are in place
    return Published(version=str(label), manifest=target.manifest, files=tuple(copied),
                     schema="given" if schema_path is not None else ("inferred, written for the lean runtime"
                                                                     if schema is not None else "inferred when served"),
                     lean=lean_note)


def add_lean(store: str, version: str, settings: Settings | None = None) -> Published:
    """Convert an already published version to LiteRT (parity-checked) and add the artifact to its manifest entry."""
    from dashboard import service

    settings = settings or load_settings()
    target = _store(store, settings)
    label = _version(version)
    with target.locked():
        manifest = target.read_manifest()
        matches = [e for e in manifest["versions"] if Version(str(e["version"])) == label]
        if not matches:
            raise PublishError(f"version {label} is not in {target.manifest}; publish it first")
        entry = matches[0]
        versions, _, _ = parse_manifest(manifest, target.manifest)
        chosen = next(v for v in versions if v.version == label)
        files = service.fetch_files(settings, chosen)
        loaded = loader.load(chosen.kind, files, safe_mode=True)
        schema = entry.get("schema")
        if schema is None and chosen.schema_url:
            schema = json.loads(fetch.read_bytes(chosen.schema_url, settings).decode("utf-8-sig"))
        if schema is not None:
            schemas.check_against_model(schemas.parse_schema(schema), loaded)
        artifact, note = _lean_artifact(loaded, schema, Path(fetch.file_name((chosen.model or chosen.weights).url)).stem)
        if artifact is None:
            raise PublishError(f"version {label}: {note}")
        entry["tflite_url"], entry["tflite_sha256"] = target.put(artifact, label)
        if schema is None:
            entry["schema"] = schemas.infer_schema(loaded).to_dict()
        parse_manifest(manifest, target.manifest)
        target.write_manifest((json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    return Published(version=str(label), manifest=target.manifest, files=(entry["tflite_url"],),
                     schema="kept", lean=note)


def _lean_artifact(loaded: Any, schema: dict | None, stem: str) -> tuple[Path | None, str]:
    """(a parity-checked .tflite file, what happened) or (None, why the version stays Keras-only)."""
    from dashboard import lite

    try:
        blob = lite.convert(loaded.model)
        folder = Path(tempfile.mkdtemp(prefix="dashboard-lean-"))
        path = folder / f"{stem}.tflite"
        path.write_bytes(blob)
        lean_model = lite.load(path)
        samples = _samples(schemas.parse_schema(schema) if schema else schemas.infer_schema(loaded), loaded)
        difference = lite.parity(loaded, lean_model, samples)
    except DashboardError as exc:
        return None, f"no LiteRT artifact: {exc}"
    if not difference <= lite.TOLERANCE:
        return None, (f"no LiteRT artifact: its outputs differ from Keras by up to {difference:.2g} "
                      f"(tolerance {lite.TOLERANCE:g}); the version stays Keras-only")
    return path, f"LiteRT artifact added (largest difference from Keras {difference:.1g} on 257 rows)"


def _samples(schema: schemas.Schema, loaded: Any, rows: int = 256) -> Any:
    """The schema's defaults plus random rows within its ranges, shaped for the model."""
    rng = np.random.default_rng(0)
    columns = {}
    for feature in schema.features:
        if feature.type == "category":
            values = rng.integers(0, len(feature.choices), rows).astype(np.float64)
            first = float(feature.choices.index(feature.initial)) if feature.initial in feature.choices else 0.0
        elif feature.type == "text":
            raise PublishError(f"feature {feature.name!r} is text; LiteRT cannot serve text inputs")
        else:
            low = feature.min if feature.min is not None else (feature.max - 2 if feature.max is not None else -2.0)
            high = feature.max if feature.max is not None else low + 4.0
            values = rng.uniform(low, high, rows)
            first = float(feature.initial)
        columns[feature.name] = np.concatenate([[first], values])
    if loaded.named_inputs:
        return columns
    return np.column_stack([columns[name] for name in schema.names]).astype(np.float32)


class _Folder:
    """A store in a local folder: atomic copies and manifest, a file lock against concurrent publishers."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.manifest = str(folder / MANIFEST)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PublishError(f"cannot create the store folder {folder}: {exc.strerror}") from exc

    def locked(self) -> contextlib.AbstractContextManager:
        return _locked(self.folder)

    def read_manifest(self) -> dict[str, Any]:
        return _read_manifest(self.folder)

    def put(self, source: Path, version: Version) -> tuple[str, str]:
        return _copy(source, self.folder, version)

    def write_manifest(self, data: bytes) -> None:
        _write_atomic(self.folder / MANIFEST, data)


class _Bucket:
    """A store under an s3:// or gs:// prefix: files uploaded first, the manifest last (one PUT each)."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.prefix = url.rstrip("/") + "/"
        self.manifest = self.prefix + MANIFEST
        self.settings = settings

    def locked(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def read_manifest(self) -> dict[str, Any]:
        from dashboard import buckets

        return _manifest_from(buckets.read_optional(self.manifest, self.settings, fetch.SMALL_FILE_CAP), self.manifest)

    def put(self, source: Path, version: Version) -> tuple[str, str]:
        from dashboard import buckets

        digest = fetch.sha256_of(source)
        name = _name(source, version, digest)
        buckets.upload(self.prefix + name, source, self.settings, "application/octet-stream")
        return name, digest

    def write_manifest(self, data: bytes) -> None:
        from dashboard import buckets

        buckets.upload(self.manifest, data, self.settings, "application/json")


def _store(store: str, settings: Settings | None) -> _Folder | _Bucket:
    scheme = fetch.scheme_of(store)
    if scheme in ("s3", "gs"):
        return _Bucket(store, settings or load_settings())
    if scheme not in ("", "file"):
        raise PublishError(f"cannot publish to {fetch.redact(store)}: use a folder, s3://bucket/prefix or "
                           "gs://bucket/prefix, then serve that store over HTTPS if you like")
    return _Folder(fetch.local_path(store))


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise PublishError(f"{text!r} is not a PEP 440 version; use a form such as 1.2.0") from None


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    try:
        raw = path.read_bytes() if path.exists() else None
    except OSError as exc:
        raise ManifestError(f"cannot read the store's {path}: {exc.strerror}") from exc
    return _manifest_from(raw, str(path))


def _manifest_from(raw: bytes | None, where: str) -> dict[str, Any]:
    """The store's manifest as a dict (an empty one when there is none yet), refused if the dashboard would refuse it."""
    if raw is None:
        return {"versions": []}
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"the store's {where} is not valid JSON ({exc}); fix or remove it first") from exc
    if isinstance(data, dict) and data.get("versions") == []:
        return data
    parse_manifest(data, where)
    return data


def _name(source: Path, version: Version, digest: str) -> str:
    """<stem>-<version>-<sha256 prefix><suffix>: never collides, keeps the suffix Keras picks formats by."""
    name = source.name
    suffix = ".weights.h5" if name.endswith(".weights.h5") else Path(name).suffix
    stem = name[: len(name) - len(suffix)] if suffix else name
    return f"{stem}-{version}-{digest[:12]}{suffix}"


def _copy(source: Path, folder: Path, version: Version) -> tuple[str, str]:
    digest = fetch.sha256_of(source)
    target = _name(source, version, digest)
    if not (folder / target).exists():
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".part-", delete=False) as handle:
            tmp = Path(handle.name)
        try:
            shutil.copyfile(source, tmp)
            with open(tmp, "rb+") as written:
                os.fsync(written.fileno())
            os.chmod(tmp, 0o644)  # readable by the web server that will host the store
            os.replace(tmp, folder / target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return target, digest


def _write_atomic(target: Path, data: bytes) -> None:
    handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False)
    tmp = Path(handle.name)
    try:
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with open(folder / ".publish.lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
