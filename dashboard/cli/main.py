"""The command line's entry: `python -m dashboard` / `keras-dashboard` (see SPEC): the parser, then the command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from dashboard.cli import commands, predicting
from dashboard.errors import DashboardError, InputError, describe, scrub
from dashboard.loading import runtime

MODEL_HELP = "the model's name in the catalog (MODEL_CATALOG_URL; default: the catalog's default model)"


def parser() -> argparse.ArgumentParser:
    """The command line's arguments: one sub-command per job."""
    found = argparse.ArgumentParser(prog=_program(), description="Keras prediction dashboard tools.")
    found.add_argument("--debug", action="store_true", help="print the full (redacted) error on failure")
    subcommands = found.add_subparsers(dest="command", required=True)
    subcommands.add_parser("models", help="list the models of the catalog (MODEL_CATALOG_URL), the default first")
    listing = subcommands.add_parser("versions", help="list every version of a model, newest first")
    listing.add_argument("--model", help=MODEL_HELP)
    _add_predict(subcommands)
    _add_publish(subcommands)
    _add_convert_and_token(subcommands)
    return found


def _add_predict(subcommands) -> None:
    """predict --input --output [--version --explain --drift --engine --format --master]"""
    run = subcommands.add_parser("predict", help="predict every row of a CSV file")
    run.add_argument(
        "--input",
        required=True,
        help="CSV (or Parquet) file with one row per prediction; with --engine spark also a "
        "folder, a glob or any URL Spark reads (s3a://, gs://)",
    )
    run.add_argument(
        "--output", required=True, help="where to write the predictions CSV; with --engine spark a new folder"
    )
    run.add_argument(
        "--version",
        help="exact version, alias, PEP 440 specifier or 'latest' (default: MODEL_VERSION, else the newest)",
    )
    run.add_argument("--model", help=MODEL_HELP)
    run.add_argument("--explain", action="store_true", help="add attribution_<feature> columns (why each prediction)")
    run.add_argument("--drift", action="store_true", help="print per-feature drift against the training data to stderr")
    run.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="local: this process (default); spark: an Apache Spark job (pip install -r requirements-spark.txt)",
    )
    run.add_argument("--format", choices=("csv", "parquet"), default="csv", help="output format (--engine spark)")
    run.add_argument("--master", help="Spark master URL, such as local[4] or yarn (--engine spark; default: Spark's)")


def _add_publish(subcommands) -> None:
    """publish MODEL --version --store [--weights --schema --notes --alias --force --lean --reference]"""
    put = subcommands.add_parser("publish", help="check a model and add it to a store's manifest")
    put.add_argument(
        "model", type=Path, help="a .keras or full-model .h5 file, or an architecture JSON (with --weights)"
    )
    put.add_argument("--version", required=True, help="PEP 440 version to publish as, such as 1.2.0")
    put.add_argument(
        "--store",
        required=True,
        help="the store: a folder, s3://bucket/prefix or gs://bucket/prefix (it holds manifest.json)",
    )
    put.add_argument(
        "--model",
        dest="model_name",
        metavar="NAME",
        help="publish into STORE/NAME/ and list NAME in STORE/catalog.json (a store of many models)",
    )
    put.add_argument("--description", help="with --model: the one line the model picker shows beside its name")
    put.add_argument("--weights", type=Path, help="the .weights.h5 file, when MODEL is an architecture JSON")
    put.add_argument("--schema", type=Path, help="schema JSON to check against the model and embed")
    put.add_argument("--notes", default="", help="free text shown on the model card")
    put.add_argument("--alias", help="point this alias (such as stable) at the new version")
    put.add_argument("--force", action="store_true", help="replace the version if it is already published")
    put.add_argument("--lean", action="store_true", help="also convert to LiteRT (parity-checked) for the lean runtime")
    put.add_argument(
        "--reference",
        type=Path,
        help="training CSV (an image model: a folder or zip of training images): its statistics, for drift checks",
    )


def _add_convert_and_token(subcommands) -> None:
    """convert --version --store [--reference]; token create NAME | token list"""
    convert = subcommands.add_parser("convert", help="add a LiteRT artifact to a published version (lean runtime)")
    convert.add_argument("--version", required=True, help="the published version to convert")
    convert.add_argument("--store", required=True, help="the store: a folder, s3://bucket/prefix or gs://bucket/prefix")
    convert.add_argument("--model", help="the model's name in a store of many models (STORE/NAME/manifest.json)")
    convert.add_argument(
        "--reference", type=Path, help="add the statistics of this training CSV (no LiteRT conversion)"
    )
    token = subcommands.add_parser("token", help="API tokens: create one, or list the configured names")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", help="print a new token once, and its API_TOKENS line")
    create.add_argument("name", help="who or what uses it (letters, digits, . _ @ -)")
    token_commands.add_parser("list", help="the token names in API_TOKENS")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = parser().parse_args(argv)
    if not args.debug and args.command in ("predict", "publish", "convert"):
        runtime.import_tensorflow_quietly()
    try:
        if args.command == "models":
            return commands.models()
        if args.command == "versions":
            return commands.versions(args.model)
        if args.command == "publish":
            return commands.publish_model(args)
        if args.command == "convert":
            return commands.convert(args)
        if args.command == "token":
            return commands.token(args)
        if args.engine == "spark":
            return predicting.predict_spark(args)
        if args.format != "csv" or args.master:
            raise InputError("--format and --master are for --engine spark; the local engine writes a CSV")
        return predicting.predict(
            Path(args.input), Path(args.output), args.version, args.explain, args.drift, args.model
        )
    except DashboardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.debug:
            print(describe(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # an unexpected failure: still one line, secrets removed
        print(
            f"error: unexpected {type(exc).__name__}: {scrub(str(exc))}; rerun with --debug for details",
            file=sys.stderr,
        )
        if args.debug:
            print(describe(exc), file=sys.stderr)
        return 1


def _program() -> str:
    """How the user started the command line, for its usage lines."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "keras-dashboard" if name == "keras-dashboard" else "python -m dashboard"


def run() -> None:
    """The `keras-dashboard` console script: the same as `python -m dashboard`."""
    sys.exit(main())


if __name__ == "__main__":
    run()
