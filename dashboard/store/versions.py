"""A model's versions as values: the files of one version, the catalog of all of them, and choosing one (PEP 440).

Where versions come from (manifest, environment) is sources.py's job; reading a manifest is manifest.py's.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from dashboard.contract import ModelKind
from dashboard.errors import ManifestError, VersionError


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
    reference: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)  # training statistics
    schema_url: str | None = None
    tflite: FileRef | None = None  # the LiteRT artifact for the lean runtime, when published with --lean
    notes: str = ""
    created: str = ""
    revision: str = ""  # for unpinned files: ETag / Last-Modified / size / mtime seen when the catalog was read
    model_name: str = ""  # the model's name (its catalog entry, or its manifest's "name"): history rows carry it

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
            self.model_name,
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


MAX_REQUEST = 200  # characters of a version asked for: longer is never a version (nor a sane specifier)


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
    if len(text) > MAX_REQUEST:  # Python refuses to read 4,301-digit numbers: never let one reach packaging
        return newest, (
            f"a version of {len(text):,} characters was asked for ({asked_by}) but does not exist; "
            f"using the newest, {newest.label}"
        )
    try:
        wanted = Version(text)
    except (InvalidVersion, ValueError):
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
        matching = [v for v in versions if spec.contains(v.version, prereleases=False)]
    except (InvalidSpecifier, ValueError):
        known = ", ".join(sorted(aliases)) or "none defined"
        return newest, (
            f"{asked_by}={text!r} is not a version, an alias ({known}) or a PEP 440 specifier "
            f"such as ~=1.2; using the newest, {newest.label}"
        )
    if matching:
        return max(matching, key=lambda v: v.version), None
    return newest, f"no version matches {text} ({asked_by}); using the newest, {newest.label}"


def _newest(versions: tuple[ModelVersion, ...]) -> ModelVersion:
    finals = [v for v in versions if not v.version.is_prerelease]
    return max(finals or versions, key=lambda v: v.version)


def refuse_duplicates(versions: list[ModelVersion]) -> None:
    """Refuse a version defined twice, naming both places."""
    seen: dict[Version, ModelVersion] = {}
    for v in versions:
        if v.version in seen:
            first = seen[v.version]
            raise ManifestError(
                f"version {v.label} is defined twice: in {first.origin} and in {v.origin}; "
                "remove one of them or give it another version"
            )
        seen[v.version] = v
