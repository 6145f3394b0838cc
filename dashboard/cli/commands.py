"""The other commands: `models`, `versions`, `publish`, `convert` and `token`."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from dashboard import service
from dashboard.cli.predicting import model_settings
from dashboard.common.text import one_line


def models() -> int:
    settings = service.settings()
    catalog = service.models(settings)
    for problem in catalog.problems:
        print(f"warning: {problem}", file=sys.stderr)
    for entry in sorted(catalog.entries, key=lambda e: e.name != catalog.default):
        line = f"{entry.name:<24} {one_line(entry.description)}".rstrip()
        print(line + (" (default)" if entry.name == catalog.default else ""))
    return 0


def versions(model: str | None = None) -> int:
    settings = model_settings(model)
    catalog = service.catalog(settings)
    if catalog.warning:
        print(f"warning: {catalog.warning}", file=sys.stderr)
    for version in catalog.versions:
        sha = version.digest[:12] if version.pinned else "(unpinned)  "
        line = f"{version.label:<12} {sha:<12}  {one_line(version.notes)}".rstrip()
        if version is catalog.default:
            line += " (default)"
        print(line)
    return 0


def publish_model(args: argparse.Namespace) -> int:
    from dashboard.service.publish import PublishOptions, publish

    options = PublishOptions(
        schema_path=args.schema,
        notes=args.notes,
        alias=args.alias,
        force=args.force,
        weights=args.weights,
        lean=args.lean,
        reference=args.reference,
        model_name=args.model_name,
        description=args.description,
    )
    done = publish(args.model, args.version, args.store, options, settings=service.settings())
    print(f"published version {done.version} ({', '.join(done.files)}; schema {done.schema}) in {done.manifest}")
    if done.catalog is not None:
        print(f"listed as {args.model_name!r} in {done.catalog}")
        print(f"serve every model of the store with: MODEL_CATALOG_URL={shlex.quote(manifest_url(done.catalog))}")
    else:
        print(f"serve it with: MODEL_MANIFEST_URL={shlex.quote(manifest_url(done.manifest))}")
    if done.lean is not None and done.lean.added:
        print(done.lean.detail)
    elif done.lean is not None:
        print(f"warning: {done.lean.detail}", file=sys.stderr)
    return 0


def manifest_url(manifest: str) -> str:
    """The exact MODEL_MANIFEST_URL value for a published manifest: a bucket URL as it is, a folder's absolute path."""
    if "://" in manifest:
        return manifest
    return str(Path(manifest).resolve())


def convert(args: argparse.Namespace) -> int:
    from dashboard.service.publish import add_lean, add_reference, model_store

    args.store = model_store(args.store, args.model)
    if args.reference is not None:
        done = add_reference(args.store, args.version, args.reference, settings=service.settings())
        print(f"version {done.version}: reference statistics from {args.reference.name} added in {done.manifest}")
        return 0

    done = add_lean(args.store, args.version, settings=service.settings())
    print(f"version {done.version}: {done.lean.detail} as {done.files[0]} in {done.manifest}")
    return 0


def token(args: argparse.Namespace) -> int:
    from dashboard.access import new_token

    if args.token_command == "create":
        token, line = new_token(args.name)
        print(f"token for {args.name} (shown once; send it as Authorization: Bearer <token>):\n{token}")
        print(f"add this line to API_TOKENS (it holds the token's sha256, never the token):\n{line}")
        return 0
    names = [name for name, _ in service.settings().access.tokens]
    print("\n".join(names) if names else "no API tokens configured (API_TOKENS is empty)")
    return 0
