"""`python -m dashboard publish`: check a model like the dashboard would, copy it into a store, add it to the manifest.

Steps:
1. refuse an invalid PEP 440 version, or one already in the manifest (unless force);
2. load the model under safe mode (what the dashboard would refuse is refused here) and check or infer its schema;
3. copy each file into the store as <stem>-<version>-<sha256[:12]><suffix>, so names never collide;
4. replace manifest.json atomically (temp file, fsync, rename) under a lock, so readers see the old or the new one.
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

from packaging.version import InvalidVersion, Version

from dashboard import fetch, loader, schema as schemas
from dashboard.errors import DashboardError, ManifestError, SchemaError
from dashboard.registry import parse_manifest

MANIFEST = "manifest.json"


class PublishError(DashboardError):
    """A publish request that cannot be carried out as asked."""


@dataclass(frozen=True)
class Published:
    """What publish wrote."""

    version: str
    manifest: Path
    files: tuple[str, ...]
    schema: str  # "given", or "inferred when served"


def publish(model: Path, version: str, store: str, schema_path: Path | None = None, notes: str = "",
            alias: str | None = None, force: bool = False, weights: Path | None = None,
            today: dt.date | None = None) -> Published:
    """Publish model (or architecture JSON + weights) as version into the store folder."""
    label = _version(version)
    if fetch.scheme_of(store) not in ("", "file"):
        raise PublishError(f"publishing to {fetch.redact(store)} is not supported by this release; "
                           "publish into a folder and upload that folder to your static host")
    folder = fetch.local_path(store)
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
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PublishError(f"cannot create the store folder {folder}: {exc.strerror}") from exc
    with _locked(folder):
        manifest = _read_manifest(folder)
        existing = [i for i, entry in enumerate(manifest["versions"]) if Version(str(entry["version"])) == label]
        if existing and not force:
            raise PublishError(f"version {label} is already in {folder / MANIFEST}; publish under a new version, "
                               "or pass --force to replace it")
        entry: dict[str, Any] = {"version": str(label)}
        copied = []
        if weights is not None:
            names = {role: _copy(path, folder, label) for role, path in files.items()}
            entry["architecture_url"], entry["weights_url"] = names["architecture"][0], names["weights"][0]
            entry["sha256"] = {"architecture_url": names["architecture"][1], "weights_url": names["weights"][1]}
            copied = [names["architecture"][0], names["weights"][0]]
        else:
            name, digest = _copy(model, folder, label)
            entry["url"], entry["sha256"] = name, digest
            copied = [name]
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
        parse_manifest(manifest, str(folder / MANIFEST))  # never write a manifest the dashboard would refuse
        _write_atomic(folder / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    return Published(version=str(label), manifest=folder / MANIFEST, files=tuple(copied),
                     schema="given" if schema is not None else "inferred when served")


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise PublishError(f"{text!r} is not a PEP 440 version; use a form such as 1.2.0") from None


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.exists():
        return {"versions": []}
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"the store's {path} is not valid JSON ({exc}); fix or remove it first") from exc
    if isinstance(data, dict) and data.get("versions") == []:
        return data
    parse_manifest(data, str(path))
    return data


def _copy(source: Path, folder: Path, version: Version) -> tuple[str, str]:
    digest = fetch.sha256_of(source)
    name = source.name
    suffix = ".weights.h5" if name.endswith(".weights.h5") else Path(name).suffix
    stem = name[: len(name) - len(suffix)] if suffix else name
    target = f"{stem}-{version}-{digest[:12]}{suffix}"
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
