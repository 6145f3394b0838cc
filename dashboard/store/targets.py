"""Where `publish` writes: a store in a local folder or under a bucket prefix, behind one small interface.

A folder store copies files and replaces manifest.json atomically under a file lock; a bucket store uploads
files first and the manifest last, one whole PUT each (no lock across publishers there). The catalog of a store
of many models (catalog.json, `publish --model NAME`) is changed read-modify-write: under the file lock in a
folder, by conditional PUTs in a bucket (If-Match / ifGenerationMatch, retried), so two publishers at once never
lose each other's model.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from packaging.version import Version

from dashboard.common import jsontext, urls
from dashboard.common.files import copy_atomic, locked, write_bytes_atomic
from dashboard.config import Settings, load_settings
from dashboard.errors import ManifestError, PublishError
from dashboard.store import fetch
from dashboard.store.catalog import CATALOG, parse_catalog
from dashboard.store.manifest import parse_manifest

MANIFEST = "manifest.json"
CATALOG_TRIES = 20  # conditional writes of catalog.json before giving up (each loses only to another publisher)
Change = Callable[["dict[str, Any] | None"], "dict[str, Any]"]
READABLE = 0o644  # published files are read by the web server that hosts the store


class Store(Protocol):
    """A place to publish to: files go in first, the manifest last."""

    manifest: str  # where the manifest is, for messages
    catalog: str  # where the catalog of a store of many models is

    def locked(self) -> contextlib.AbstractContextManager: ...

    def read_manifest(self) -> dict[str, Any]: ...

    def put(self, source: Path, version: Version) -> tuple[str, str]:
        """Copy source in under its published name; returns (name, sha256)."""
        ...

    def write_manifest(self, data: bytes) -> None: ...

    def change_catalog(self, change: Change) -> dict[str, Any]:
        """Apply change to the store's catalog.json (None when there is none yet) atomically; returns the result."""
        ...


def open_store(store: str, settings: Settings | None = None) -> Store:
    """The store at a folder path, file:// URL, s3://bucket/prefix or gs://bucket/prefix."""
    scheme = urls.scheme_of(store)
    if scheme in ("s3", "gs"):
        return BucketStore(store, settings or load_settings())
    if scheme not in ("", "file"):
        raise PublishError(
            f"cannot publish to {urls.redact(store)}: use a folder, s3://bucket/prefix or "
            "gs://bucket/prefix, then serve that store over HTTPS if you like"
        )
    return FolderStore(urls.local_path(store))


def published_name(source: Path, version: Version, digest: str) -> str:
    """<stem>-<version>-<sha256 prefix><suffix>: never collides, keeps the suffix Keras picks formats by, and
    holds only letters, digits and ._- (a #, ? or % would break the URL a web server serves it under)."""
    name = source.name
    suffix = ".weights.h5" if name.endswith(".weights.h5") else Path(name).suffix
    stem = name[: len(name) - len(suffix)] if suffix else name
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "model"  # served as-is by any web server
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"{safe}-{version}-{digest[:12]}") + re.sub(r"[^A-Za-z0-9._]", "", suffix)


def catalog_bytes(old: bytes | None, change: Change, where: str) -> bytes:
    """The catalog after change, checked the way the dashboard reads it (never written if it would be refused)."""
    data = jsontext.loads(old, f"the store's {where}", ManifestError, "fix or remove it first") if old else None
    new = change(data)
    parse_catalog(new, where)
    return (json.dumps(new, indent=2) + "\n").encode("utf-8")


def manifest_from(raw: bytes | None, where: str) -> dict[str, Any]:
    """The store's manifest as a dict (empty when there is none yet), refused if the dashboard would refuse it."""
    if raw is None:
        return {"versions": []}
    data = jsontext.loads(raw, f"the store's {where}", ManifestError, "fix or remove it first")
    if isinstance(data, dict) and data.get("versions") == []:
        return data
    parse_manifest(data, where)
    return data


class FolderStore:
    """A store in a local folder: atomic copies and manifest, a file lock against concurrent publishers."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.manifest = str(folder / MANIFEST)
        self.catalog = str(folder / CATALOG)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PublishError(f"cannot create the store folder {folder}: {exc.strerror}") from exc

    def locked(self) -> contextlib.AbstractContextManager:
        return locked(self.folder / ".publish.lock")

    def read_manifest(self) -> dict[str, Any]:
        path = self.folder / MANIFEST
        try:
            raw = path.read_bytes() if path.exists() else None
        except OSError as exc:
            raise ManifestError(f"cannot read the store's {path}: {exc.strerror}") from exc
        return manifest_from(raw, str(path))

    def put(self, source: Path, version: Version) -> tuple[str, str]:
        digest = fetch.sha256_of(source)
        name = published_name(source, version, digest)
        if not (self.folder / name).exists():
            copy_atomic(source, self.folder / name, READABLE)
        return name, digest

    def write_manifest(self, data: bytes) -> None:
        write_bytes_atomic(self.folder / MANIFEST, data, READABLE)

    def change_catalog(self, change: Change) -> dict[str, Any]:
        path = self.folder / CATALOG
        with locked(self.folder / ".catalog.lock"):
            try:
                old = path.read_bytes() if path.exists() else None
            except OSError as exc:
                raise ManifestError(f"cannot read the store's {path}: {exc.strerror}") from exc
            data = catalog_bytes(old, change, str(path))
            write_bytes_atomic(path, data, READABLE)
        return json.loads(data)


class BucketStore:
    """A store under an s3:// or gs:// prefix: files uploaded first, the manifest last (one PUT each)."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.prefix = url.rstrip("/") + "/"
        self.manifest = self.prefix + MANIFEST
        self.catalog = self.prefix + CATALOG
        self.settings = settings

    def locked(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def read_manifest(self) -> dict[str, Any]:
        from dashboard.store import buckets

        return manifest_from(buckets.read_optional(self.manifest, self.settings, fetch.SMALL_FILE_CAP), self.manifest)

    def put(self, source: Path, version: Version) -> tuple[str, str]:
        from dashboard.store import buckets

        digest = fetch.sha256_of(source)
        name = published_name(source, version, digest)
        buckets.upload(self.prefix + name, source, self.settings, "application/octet-stream")
        return name, digest

    def write_manifest(self, data: bytes) -> None:
        from dashboard.store import buckets

        buckets.upload(self.manifest, data, self.settings, "application/json")

    def change_catalog(self, change: Change) -> dict[str, Any]:
        from dashboard.store import buckets

        url = self.catalog
        for attempt in range(CATALOG_TRIES):
            old, tag = buckets.read_tagged(url, self.settings, fetch.SMALL_FILE_CAP)
            data = catalog_bytes(old, change, url)
            if buckets.upload_if(url, data, self.settings, "application/json", tag):
                return json.loads(data)
            time.sleep(random.uniform(0.01, 0.05 * (attempt + 1)))  # another publisher won: read theirs, add ours
        raise PublishError(
            f"{urls.redact(url)} kept changing under {CATALOG_TRIES} attempts to add to it; publish again "
            "(the model's manifest and files are in place)"
        )
