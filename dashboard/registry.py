"""Sources (manifest, MODEL_URL, MODEL_URL_V*, architecture/builder + weights) -> versions; choosing one."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from dashboard import jsontext
from dashboard.config import Settings
from dashboard.contract import ModelKind
from dashboard.errors import ManifestError, VersionError, scrub
from dashboard.fetch import read_bytes, redact, resolve, revision

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class FileRef:
    """One file of a version: where it is and, when pinned, its sha256."""

    url: str
    sha256: str | None = None


@dataclass(frozen=True)
class ModelVersion:
    """One published version of the model and the files that make it."""

    version: Version
    kind: ModelKind
    origin: str  # where it was defined, for messages: "manifest <url>" or "MODEL_URL_V2"
    model: FileRef | None = None
    architecture: FileRef | None = None
    weights: FileRef | None = None
    builder: str | None = None
    schema: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    schema_url: str | None = None
    tflite: FileRef | None = None  # the LiteRT artifact for the lean runtime, when published with --lean
    notes: str = ""
    created: str = ""
    revision: str = ""  # for unpinned files: ETag / Last-Modified / size / mtime seen when the catalog was read

    @property
    def label(self) -> str:
        """The version as written (PEP 440 normal form)."""
        return str(self.version)

    @property
    def files(self) -> tuple[FileRef, ...]:
        """Every file this version needs."""
        return tuple(f for f in (self.model, self.architecture, self.weights) if f is not None)

    @property
    def digest(self) -> str:
        """A stable identity of the files: their sha256 when pinned, else a hash of the URLs."""
        parts = [f.sha256 or "url:" + hashlib.sha256(f.url.encode()).hexdigest() for f in self.files]
        if len(parts) == 1 and self.model is not None and self.model.sha256:
            return self.model.sha256
        return hashlib.sha256("|".join(parts + [self.builder or ""]).encode()).hexdigest()

    @property
    def pinned(self) -> bool:
        """True when every file has a sha256 to check."""
        return all(f.sha256 for f in self.files)

    @functools.cached_property
    def identity(self) -> str:
        """Everything that changes what a prediction means: the files (digest, and for unpinned files what the
        server said of them when the catalog was read), the schema (inline or its URL) and the LiteRT artifact.
        Loaded models and results are kept under this, so a schema fixed with publish --force is seen."""
        parts = [
            self.digest,
            self.revision,
            json.dumps(self.schema, sort_keys=True, default=str) if self.schema is not None else "",
            self.schema_url or "",
            self.tflite.sha256 or self.tflite.url if self.tflite else "",
        ]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Catalog:
    """Every version from every source, newest first, and the default chosen by MODEL_VERSION."""

    name: str
    source: str
    versions: tuple[ModelVersion, ...]
    aliases: Mapping[str, str] = field(compare=False, hash=False)
    default: ModelVersion
    warning: str | None = None

    @property
    def labels(self) -> list[str]:
        """Version labels, newest first."""
        return [v.label for v in self.versions]

    @functools.cached_property
    def tags(self) -> dict[str, list[str]]:
        """label -> what the picker shows beside it: default, the aliases pointing at it, pre-release.

        Linear in versions + aliases (aliases hold normalized version labels), computed once per catalog.
        """
        tags: dict[str, list[str]] = {v.label: [] for v in self.versions}
        tags[self.default.label].append("default")
        for alias, target in self.aliases.items():
            if target in tags:
                tags[target].append(alias)
        for v in self.versions:
            if v.version.is_prerelease:
                tags[v.label].append("pre-release")
        return tags

    def get(self, label: str) -> ModelVersion:
        """The version with exactly this label (or an equal PEP 440 version)."""
        chosen, warning = choose(self.versions, self.aliases, label)
        if warning:
            raise VersionError(f"version {label!r} is not in {self.source}; available: {', '.join(self.labels)}")
        return chosen

    def choose(self, requested: str | None, asked_by: str = "MODEL_VERSION") -> tuple[ModelVersion, str | None]:
        """The version requested (exact, alias, specifier or latest) and a warning when it fell back."""
        return choose(self.versions, self.aliases, requested, asked_by)


def choose(
    versions: tuple[ModelVersion, ...],
    aliases: Mapping[str, str],
    requested: str | None,
    asked_by: str = "MODEL_VERSION",
) -> tuple[ModelVersion, str | None]:
    """Apply SPEC's version selection: exact -> alias -> PEP 440 specifier -> latest; else newest + warning."""
    if not versions:
        raise VersionError("no model versions are defined; set MODEL_MANIFEST_URL or MODEL_URL")
    newest = _newest(versions)
    text = (requested or "").strip()
    if text == "" or text.lower() == "latest":
        return newest, None
    try:
        wanted = Version(text)
    except InvalidVersion:
        wanted = None
    if wanted is not None:
        for v in versions:
            if v.version == wanted:
                return v, None
        return newest, f"version {text} was asked for ({asked_by}) but does not exist; using the newest, {newest.label}"
    if text in aliases:
        target = Version(aliases[text])
        for v in versions:
            if v.version == target:
                return v, None
        return newest, (
            f"alias {text!r} points to {aliases[text]}, which does not exist; using the newest, {newest.label}"
        )
    try:
        spec = SpecifierSet(text)
    except InvalidSpecifier:
        known = ", ".join(sorted(aliases)) or "none defined"
        return newest, (
            f"{asked_by}={text!r} is not a version, an alias ({known}) or a PEP 440 specifier "
            f"such as ~=1.2; using the newest, {newest.label}"
        )
    matching = [v for v in versions if spec.contains(v.version, prereleases=False)]
    if matching:
        return max(matching, key=lambda v: v.version), None
    return newest, f"no version matches {text} ({asked_by}); using the newest, {newest.label}"


def load_catalog(settings: Settings) -> Catalog:
    """Read every configured source and choose the default version."""
    found: list[ModelVersion] = []
    aliases: dict[str, str] = {}
    name = "model"
    if settings.manifest_url:
        manifest_versions, aliases, name = read_manifest(settings.manifest_url, settings)
        found.extend(manifest_versions)
    found.extend(_env_versions(settings))
    _refuse_duplicates(found)
    found = [v if v.pinned and not v.schema_url else _with_revision(v, settings) for v in found]
    versions = tuple(sorted(found, key=lambda v: v.version, reverse=True))
    default, warning = choose(versions, aliases, settings.model_version)
    return Catalog(
        name=name,
        source=scrub(settings.source_label),
        versions=versions,
        aliases=aliases,
        default=default,
        warning=warning,
    )


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
    _refuse_duplicates(versions)
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


def _with_revision(version: ModelVersion, settings: Settings) -> ModelVersion:
    """The version with what its unpinned files look like now, so one replaced in place is loaded again."""
    urls = [f.url for f in version.files if not f.sha256] + ([version.schema_url] if version.schema_url else [])
    return dataclasses.replace(version, revision="|".join(revision(url, settings) for url in urls))


def _env_versions(settings: Settings) -> list[ModelVersion]:
    found = []
    single = _single_version(settings.model_version)
    if settings.model_url:
        found.append(
            ModelVersion(
                version=single,
                kind="file",
                origin="MODEL_URL",
                model=FileRef(settings.model_url, settings.model_sha256),
                schema_url=settings.schema_url,
            )
        )
    if settings.architecture_url and settings.weights_url:
        found.append(
            ModelVersion(
                version=single,
                kind="architecture",
                origin="MODEL_ARCHITECTURE_URL",
                architecture=FileRef(settings.architecture_url),
                weights=FileRef(settings.weights_url),
                schema_url=settings.schema_url,
            )
        )
    if settings.builder and settings.weights_url:
        found.append(
            ModelVersion(
                version=single,
                kind="builder",
                origin="MODEL_BUILDER",
                builder=settings.builder,
                weights=FileRef(settings.weights_url),
                schema_url=settings.schema_url,
            )
        )
    for label, url, sha in settings.versioned_urls:
        name = "MODEL_URL_V" + label.upper().replace(".", "_")
        try:
            version = Version(label)
        except InvalidVersion:
            raise ManifestError(
                f"{name}: {label!r} is not a PEP 440 version; name the variable like MODEL_URL_V1 or MODEL_URL_V1_2_0"
            ) from None
        found.append(
            ModelVersion(
                version=version, kind="file", origin=name, model=FileRef(url, sha), schema_url=settings.schema_url
            )
        )
    return found


def _single_version(requested: str | None) -> Version:
    """A lone MODEL_URL is version MODEL_VERSION when that is an exact version, else 1."""
    try:
        return Version(requested) if requested else Version("1")
    except InvalidVersion:
        return Version("1")


def _refuse_duplicates(versions: list[ModelVersion]) -> None:
    seen: dict[Version, ModelVersion] = {}
    for v in versions:
        if v.version in seen:
            first = seen[v.version]
            raise ManifestError(
                f"version {v.label} is defined twice: in {first.origin} and in {v.origin}; "
                "remove one of them or give it another version"
            )
        seen[v.version] = v


def _newest(versions: tuple[ModelVersion, ...]) -> ModelVersion:
    finals = [v for v in versions if not v.version.is_prerelease]
    return max(finals or versions, key=lambda v: v.version)


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
