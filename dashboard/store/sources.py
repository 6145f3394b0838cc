"""Sources (manifest, MODEL_URL, MODEL_URL_V*, architecture/builder + weights) -> the catalog of versions."""

from __future__ import annotations

import dataclasses

from packaging.version import InvalidVersion, Version

from dashboard.config import Settings
from dashboard.errors import ManifestError, scrub
from dashboard.store.fetch import revision
from dashboard.store.manifest import read_manifest
from dashboard.store.versions import Catalog, FileRef, ModelVersion, choose, refuse_duplicates


def load_catalog(settings: Settings) -> Catalog:
    """Read every configured source and choose the default version."""
    found: list[ModelVersion] = []
    aliases: dict[str, str] = {}
    name = "model"
    if settings.manifest_url:
        manifest_versions, aliases, name = read_manifest(settings.manifest_url, settings)
        found.extend(manifest_versions)
    found.extend(_env_versions(settings))
    refuse_duplicates(found)
    name = settings.model_name or name
    found = [dataclasses.replace(v, model_name=name) for v in found]
    found = [v if v.pinned and not v.schema_url else _with_revision(v, settings) for v in found]
    versions = tuple(sorted(found, key=lambda v: v.version, reverse=True))
    default, warning = choose(versions, aliases, settings.model_version)
    return Catalog(
        name=name,
        source=scrub(f"manifest {settings.manifest_url}" if settings.model_name else settings.source_label),
        versions=versions,
        aliases=aliases,
        default=default,
        warning=warning,
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
