"""Manifests: a store's manifest.json read and checked, its entries turned into versions (relative URLs resolved
against the manifest's own location). A malformed manifest is one error naming the bad entry."""

from __future__ import annotations

import re
from typing import Any

from packaging.version import InvalidVersion, Version

from dashboard.common import jsontext
from dashboard.common.urls import redact, resolve
from dashboard.config import Settings
from dashboard.errors import ManifestError
from dashboard.store.fetch import read_bytes
from dashboard.store.versions import FileRef, ModelVersion, refuse_duplicates

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def read_manifest(url: str, settings: Settings) -> tuple[list[ModelVersion], dict[str, str], str]:
    """The versions, aliases and name listed in the manifest at url."""
    shown = redact(url)
    raw = read_bytes(url, settings)
    fix = "validate it with: python -m json.tool manifest.json"
    data = jsontext.loads(raw, f"manifest {shown}", ManifestError, fix)
    return parse_manifest(data, url)


def parse_manifest(data: Any, url: str) -> tuple[list[ModelVersion], dict[str, str], str]:
    """Check a manifest's structure and turn its entries into versions (relative URLs resolved against url)."""
    shown = redact(url)
    if not isinstance(data, dict) or not isinstance(data.get("versions"), list):
        raise ManifestError(f'manifest {shown} must be a JSON object with a "versions" list')
    if not data["versions"]:
        raise ManifestError(f"manifest {shown} lists no versions; publish one with python -m dashboard publish")
    name = data.get("name", "model")
    if not isinstance(name, str):
        raise ManifestError(f'manifest {shown}: "name" must be a string')
    versions = [_manifest_entry(entry, i, url) for i, entry in enumerate(data["versions"])]
    refuse_duplicates(versions)
    aliases = data.get("aliases", {})
    if not isinstance(aliases, dict):
        raise ManifestError(f'manifest {shown}: "aliases" must be an object such as {{"stable": "1.0.0"}}')
    known = {v.version for v in versions}
    clean: dict[str, str] = {}
    for alias, target in aliases.items():
        try:
            target_version = Version(str(target))
        except InvalidVersion:
            raise ManifestError(
                f"manifest {shown}: alias {alias!r} points to {target!r}, which is not a PEP 440 version"
            ) from None
        if target_version not in known:
            raise ManifestError(
                f"manifest {shown}: alias {alias!r} points to {target}, which is not listed; "
                f"listed versions: {', '.join(str(v) for v in sorted(known, reverse=True))}"
            )
        clean[str(alias)] = str(target_version)
    return versions, clean, name


def _manifest_entry(entry: Any, index: int, url: str) -> ModelVersion:
    where = f"manifest {redact(url)}, versions[{index}]"
    if not isinstance(entry, dict):
        raise ManifestError(f'{where} must be an object with "version" and "url"')
    label = entry.get("version")
    where = f"manifest {redact(url)}, versions[{index}] (version {label!r})" if label is not None else where
    if not isinstance(label, (str, int, float)) or isinstance(label, bool):
        raise ManifestError(f'{where}: "version" is missing; add a PEP 440 version such as "1.2.0"')
    try:
        version = Version(str(label))
    except InvalidVersion:
        raise ManifestError(f'{where}: {str(label)!r} is not a PEP 440 version; use a form such as "1.2.0"') from None
    if "builder" in entry:
        raise ManifestError(
            f'{where}: "builder" is not allowed in a manifest (it would run code named by a '
            "remote file); set MODEL_BUILDER in the app's own configuration instead"
        )
    sha = entry.get("sha256")
    common = dict(
        version=version,
        origin=f"manifest {redact(url)}",
        notes=str(entry.get("notes") or ""),
        created=str(entry.get("created") or ""),
    )
    schema = entry.get("schema")
    if schema is not None and not isinstance(schema, dict):
        raise ManifestError(f'{where}: "schema" must be an object (or use "schema_url")')
    reference = entry.get("reference")
    if reference is not None and (not isinstance(reference, dict) or not isinstance(reference.get("features"), dict)):
        raise ManifestError(f'{where}: "reference" must be an object with "features" (publish --reference writes it)')
    common["reference"] = reference
    schema_url = entry.get("schema_url")
    if schema_url is not None:
        schema_url = resolve(url, _string(schema_url, where, "schema_url"))
    if "url" in entry:
        if "architecture_url" in entry or "weights_url" in entry:
            raise ManifestError(f'{where}: give either "url" or "architecture_url" + "weights_url", not both')
        if sha is not None and not isinstance(sha, str):
            raise ManifestError(f'{where}: "sha256" must be the hex digest of the file at "url"')
        model = FileRef(resolve(url, _string(entry["url"], where, "url")), _hex(sha, where, "sha256"))
        return ModelVersion(
            kind="file", model=model, schema=schema, schema_url=schema_url, tflite=_tflite(entry, where, url), **common
        )
    if "architecture_url" in entry and "weights_url" in entry:
        if sha is not None and not isinstance(sha, dict):
            raise ManifestError(
                f'{where}: "sha256" must be an object {{"architecture_url": "<hex>", "weights_url": "<hex>"}}'
            )
        sha = sha or {}
        architecture = FileRef(
            resolve(url, _string(entry["architecture_url"], where, "architecture_url")),
            _hex(sha.get("architecture_url"), where, "sha256.architecture_url"),
        )
        weights = FileRef(
            resolve(url, _string(entry["weights_url"], where, "weights_url")),
            _hex(sha.get("weights_url"), where, "sha256.weights_url"),
        )
        return ModelVersion(
            kind="architecture",
            architecture=architecture,
            weights=weights,
            schema=schema,
            schema_url=schema_url,
            tflite=_tflite(entry, where, url),
            **common,
        )
    raise ManifestError(f'{where}: needs "url" (a .keras or .h5 file) or both "architecture_url" and "weights_url"')


def _tflite(entry: dict, where: str, url: str) -> FileRef | None:
    if "tflite_url" not in entry:
        return None
    return FileRef(
        resolve(url, _string(entry["tflite_url"], where, "tflite_url")),
        _hex(entry.get("tflite_sha256"), where, "tflite_sha256"),
    )


def _string(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(f'{where}: "{key}" must be a non-empty string')
    return value.strip()


def _hex(value: Any, where: str, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _HEX64.match(value.lower()):
        raise ManifestError(f'{where}: "{key}" must be 64 hexadecimal characters (sha256sum of the file)')
    return value.lower()
