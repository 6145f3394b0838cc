"""The catalog: many models by name (MODEL_CATALOG_URL's catalog.json), each with its own manifest.

A catalog entry that is malformed is that entry's problem only (kept in `problems`, shown by the doors); the other
models serve. Single-model settings (MODEL_MANIFEST_URL, MODEL_URL, ...) are a catalog of one, built by the service.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dashboard.access import ModelAccess, parse_list
from dashboard.common import jsontext
from dashboard.common.urls import redact, resolve
from dashboard.config import Settings
from dashboard.errors import DashboardError, ManifestError, UnknownModelError
from dashboard.store.fetch import read_bytes

CATALOG = "catalog.json"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # a path segment of every door (/v1/models/NAME)
NAME_RULE = "1 to 64 letters, digits or . _ - (starting with a letter or digit)"
MAX_DESCRIPTION = 300


@dataclass(frozen=True)
class CatalogEntry:
    """One model of the catalog: its name, its manifest, and who may use it."""

    name: str
    manifest_url: str | None  # None: the single-model settings themselves (a catalog of one)
    description: str = ""
    version: str | None = None  # the model's default version (exact, alias, specifier); None: MODEL_VERSION/latest
    access: ModelAccess = field(default_factory=ModelAccess)


@dataclass(frozen=True)
class ModelCatalog:
    """The models a dashboard serves, in the catalog's order, the default one, and the entries that were refused."""

    entries: tuple[CatalogEntry, ...]
    default: str
    source: str  # where the catalog is, redacted, for messages
    problems: tuple[str, ...] = ()  # one message per entry that could not be read
    single: bool = False  # single-model settings, not a catalog file

    @property
    def names(self) -> list[str]:
        """The models' names, in the catalog's order."""
        return [e.name for e in self.entries]

    def visible(self, who: str) -> ModelCatalog:
        """The catalog as `who` sees it: only the models open to them (the default may then be another one)."""
        shown = tuple(e for e in self.entries if e.access.admits(who))
        if len(shown) == len(self.entries):
            return self
        default = self.default if any(e.name == self.default for e in shown) else (shown[0].name if shown else "")
        return ModelCatalog(shown, default, self.source, self.problems, self.single)

    def get(self, name: str | None) -> CatalogEntry:
        """The entry called name (None or "": the default), or an error naming the models that exist."""
        wanted = name or self.default
        for entry in self.entries:
            if entry.name == wanted:
                return entry
        if not self.entries:
            raise UnknownModelError("no model is open to you here; ask the dashboard's owner for access")
        shown = wanted if NAME.match(wanted) else f"{wanted[:64]!r}"
        raise UnknownModelError(f"there is no model {shown}; models: {', '.join(self.names)}")


def read_catalog(url: str, settings: Settings) -> ModelCatalog:
    """The catalog at url (a folder's catalog.json, HTTPS, s3:// or gs://)."""
    raw = read_bytes(url, settings)
    data = jsontext.loads(raw, f"catalog {redact(url)}", ManifestError, "validate it with: python -m json.tool")
    return parse_catalog(data, url)


def parse_catalog(data: Any, url: str) -> ModelCatalog:
    """Check the catalog's structure; a bad entry becomes a problem, not an error (the others still serve)."""
    shown = redact(url)
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise ManifestError(
            f'catalog {shown} must be a JSON object with a "models" list, such as '
            '{"models": [{"name": "iris", "manifest_url": "iris/manifest.json"}], "default": "iris"}'
        )
    entries: list[CatalogEntry] = []
    problems: list[str] = []
    for index, raw in enumerate(data["models"]):
        try:
            entry = _entry(raw, index, url)
        except DashboardError as exc:
            problems.append(exc.message)
            continue
        if entry.name in {e.name for e in entries}:
            problems.append(
                f"catalog {shown}, models[{index}]: the name {entry.name!r} is listed twice; kept the first"
            )
            continue
        entries.append(entry)
    if not entries:
        detail = f": {problems[0]}" if problems else ""
        raise ManifestError(f"catalog {shown} lists no model that can be read{detail}")
    default = data.get("default")
    names = [e.name for e in entries]
    if default is None:
        default = names[0]
    elif default not in names:
        problems.append(f"catalog {shown}: the default {default!r} is not a listed model; using {names[0]!r}")
        default = names[0]
    return ModelCatalog(tuple(entries), str(default), shown, tuple(problems))


def _entry(raw: Any, index: int, url: str) -> CatalogEntry:
    where = f"catalog {redact(url)}, models[{index}]"
    if not isinstance(raw, dict):
        raise ManifestError(f'{where} must be an object with "name" and "manifest_url"')
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise ManifestError(f'{where}: "name" must be {NAME_RULE}')
    where = f"catalog {redact(url)}, model {name!r}"
    manifest = raw.get("manifest_url")
    if not isinstance(manifest, str) or not manifest.strip():
        raise ManifestError(f'{where}: "manifest_url" must be the URL of its manifest, such as "{name}/manifest.json"')
    version = raw.get("version")
    if version is not None and not isinstance(version, (str, int, float)):
        raise ManifestError(f'{where}: "version" must be a version, an alias or a specifier such as "~=1.2"')
    return CatalogEntry(
        name=name,
        manifest_url=resolve(url, manifest.strip()),
        description=str(raw.get("description") or "")[:MAX_DESCRIPTION],
        version=str(version) if version is not None else None,
        access=ModelAccess(
            emails=_names(raw, "allowed_emails", where),
            domains=_names(raw, "allowed_domains", where),
            tokens=frozenset(n.strip() for n in _list(raw, "tokens", where)),
        ),
    )


def _list(raw: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = raw.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(f'{where}: "{key}" must be a list of strings')
    return value


def _names(raw: Mapping[str, Any], key: str, where: str) -> frozenset[str]:
    return parse_list(",".join(_list(raw, key, where)))


def with_model(data: Mapping[str, Any] | None, name: str, manifest_url: str, description: str | None) -> dict:
    """The catalog with NAME listed (added, or its manifest and description updated; access lists kept as they are);
    the first model published becomes the default."""
    catalog = dict(data or {})
    models = [dict(m) for m in catalog.get("models", []) if isinstance(m, dict)]
    for model in models:
        if model.get("name") == name:
            model["manifest_url"] = manifest_url
            if description is not None:
                model["description"] = description
            break
    else:
        models.append(
            {"name": name, "manifest_url": manifest_url, **({"description": description} if description else {})}
        )
    catalog["models"] = models
    catalog.setdefault("default", name)
    return catalog
