"""Many models by name: the catalog (MODEL_CATALOG_URL, or the single-model settings as a catalog of one) and the
settings narrowed to one of its models, which every chain below (versions, load, predict) then takes unchanged."""

from __future__ import annotations

import dataclasses

from dashboard.config import Settings
from dashboard.store.catalog import CatalogEntry, ModelCatalog, read_catalog
from dashboard.store.sources import load_catalog
from dashboard.store.versions import Catalog


def models(settings: Settings, versions: Catalog | None = None) -> ModelCatalog:
    """The models this dashboard serves: the catalog file's, or the one model of single-model settings (named by
    its manifest; `versions`, when the caller has read them already, saves reading them again)."""
    if settings.catalog_url:
        return read_catalog(settings.catalog_url, settings)
    found = versions if versions is not None else load_catalog(settings)
    return ModelCatalog((CatalogEntry(found.name, None),), found.name, found.source, single=True)


def for_model(settings: Settings, catalog: ModelCatalog, name: str | None) -> Settings:
    """The settings of the model called name (None: the default): its manifest as the only source, its default
    version (the entry's "version", else MODEL_VERSION for the catalog's default model, else the newest).
    An unknown name raises UnknownModelError naming the models that exist."""
    entry = catalog.get(name)
    if entry.manifest_url is None:  # a catalog of one: the settings are the model's already
        return settings
    return dataclasses.replace(
        settings,
        manifest_url=entry.manifest_url,
        model_name=entry.name,
        model_version=entry.version or (settings.model_version if entry.name == catalog.default else None),
        schema_url=None,
    )
