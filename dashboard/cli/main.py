"""Command line: `python -m dashboard versions` and `python -m dashboard predict` (see SPEC)."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import os
import shlex
import sys
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from dashboard import history, service
from dashboard.prediction.reading.csv_files import results_csv
from dashboard.errors import DashboardError, InputError, describe, scrub
from dashboard.common.files import write_bytes_atomic

HISTORY_WAIT = 10.0  # seconds the CLI waits for the history database before it warns and exits


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog=_program(), description="Keras prediction dashboard tools.")
    parser.add_argument("--debug", action="store_true", help="print the full (redacted) error on failure")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("versions", help="list every version, newest first")
    run = commands.add_parser("predict", help="predict every row of a CSV file")
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
    put = commands.add_parser("publish", help="check a model and add it to a store's manifest")
    put.add_argument(
        "model", type=Path, help="a .keras or full-model .h5 file, or an architecture JSON (with --weights)"
    )
    put.add_argument("--version", required=True, help="PEP 440 version to publish as, such as 1.2.0")
    put.add_argument(
        "--store",
        required=True,
        help="the store: a folder, s3://bucket/prefix or gs://bucket/prefix (it holds manifest.json)",
    )
    put.add_argument("--weights", type=Path, help="the .weights.h5 file, when MODEL is an architecture JSON")
    put.add_argument("--schema", type=Path, help="schema JSON to check against the model and embed")
    put.add_argument("--notes", default="", help="free text shown on the model card")
    put.add_argument("--alias", help="point this alias (such as stable) at the new version")
    put.add_argument("--force", action="store_true", help="replace the version if it is already published")
    put.add_argument("--lean", action="store_true", help="also convert to LiteRT (parity-checked) for the lean runtime")
    put.add_argument("--reference", type=Path, help="training CSV: its statistics are stored for drift checks")
    convert = commands.add_parser("convert", help="add a LiteRT artifact to a published version (lean runtime)")
    convert.add_argument("--version", required=True, help="the published version to convert")
    convert.add_argument("--store", required=True, help="the store: a folder, s3://bucket/prefix or gs://bucket/prefix")
    convert.add_argument(
        "--reference", type=Path, help="add the statistics of this training CSV (no LiteRT conversion)"
    )
    token = commands.add_parser("token", help="API tokens: create one, or list the configured names")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", help="print a new token once, and its API_TOKENS line")
    create.add_argument("name", help="who or what uses it (letters, digits, . _ @ -)")
    token_commands.add_parser("list", help="the token names in API_TOKENS")
    args = parser.parse_args(argv)
    if not args.debug and args.command in ("predict", "publish", "convert"):
        _quiet_tensorflow()
    try:
        if args.command == "versions":
            return _versions()
        if args.command == "publish":
            return _publish(args)
        if args.command == "convert":
            return _convert(args)
        if args.command == "token":
            return _token(args)
        if args.engine == "spark":
            return _predict_spark(args)
        if args.format != "csv" or args.master:
            raise InputError("--format and --master are for --engine spark; the local engine writes a CSV")
        return _predict(Path(args.input), Path(args.output), args.version, args.explain, args.drift)
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


def _quiet_tensorflow() -> None:
    """A command line shows only its own words: TensorFlow's C++ log level set before it is imported, and the lines
    its native libraries print while loading (oneDNN, absl) kept off the terminal. --debug shows them all."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
            return
    except ImportError:  # an import hook refuses it: the lean stack
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)  # the native libraries write to fd 2 directly, not to sys.stderr
            with contextlib.suppress(Exception):  # a broken install is reported by the command that needs it
                import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _versions() -> int:
    settings = service.settings()
    catalog = service.catalog(settings)
    if catalog.warning:
        print(f"warning: {catalog.warning}", file=sys.stderr)
    for version in catalog.versions:
        sha = version.digest[:12] if version.pinned else "(unpinned)  "
        line = f"{version.label:<12} {sha:<12}  {_printable(version.notes)}".rstrip()
        if version is catalog.default:
            line += " (default)"
        print(line)
    return 0


def _print_drift(served, table, result) -> None:
    """Per-feature drift verdicts on stderr (or why there are none)."""
    from dashboard.service import understand

    found = understand.drift(served, table, result)
    if isinstance(found, str):
        print(f"drift: {found}", file=sys.stderr)
        return
    for item in found:
        print(
            f"drift: {item.feature}: {item.verdict} (PSI {item.psi:.3f}; at {item.rows:,} rows moderate from "
            f"{item.moderate_at:.3f}, major from {item.major_at:.3f}; {item.outside:.1%} outside the training range)",
            file=sys.stderr,
        )


def _printable(text: str) -> str:
    """Text from a manifest as one terminal-safe line: secrets removed, control characters (newlines, escape
    sequences) shown as spaces, so notes can neither forge a line nor drive the terminal."""
    cleaned = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in scrub(text))
    return " ".join(cleaned.split())


def _predict(source: Path, target: Path, requested: str | None, explain: bool = False, drift: bool = False) -> int:
    settings = service.settings()
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror}; check the path") from exc
    catalog = service.catalog(settings)
    version, warning = (
        catalog.choose(requested, "--version") if requested is not None else (catalog.default, catalog.warning)
    )
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    history.check(settings)  # a bad DATABASE_URL fails here, before any work
    served = service.load_version(settings, version)
    started = time.perf_counter()
    table = (
        _read_parquet(source, data)
        if source.suffix.lower() in (".parquet", ".pq")
        else service.read_csv(settings, data)
    )
    if explain:
        from dashboard.service import understand

        result = understand.explain_table(served, table).result
    else:
        result = service.predict_table(served, table)
    _write_output(target, results_csv(result.table, table))
    recorder = history.recorder(settings)
    if recorder is not None:
        _record(recorder, settings, served, result, source, data, time.perf_counter() - started)
    if drift:
        _print_drift(served, table, result)
    if result.failed:
        first = result.first_errors[0]
        print(
            f"{result.failed:,} of {result.rows:,} rows {'has' if result.failed == 1 else 'have'} errors "
            f"(see the error column); first: {first}",
            file=sys.stderr,
        )
    if result.predicted == 0:
        print(
            f"error: no row could be predicted with version {served.label}; the reasons are in {target}",
            file=sys.stderr,
        )
        return 1
    print(
        f"predicted {result.predicted} of {result.rows} rows with version {served.label} -> {target}", file=sys.stderr
    )
    return 0


def _read_parquet(source: Path, data: bytes):
    """A Parquet file as a table (the same rows a Spark job would read from it)."""
    import io

    import pandas as pd

    from dashboard.prediction.reading.csv_files import CsvTable

    try:
        return CsvTable(pd.read_parquet(io.BytesIO(data)))
    except Exception as exc:
        raise InputError(f"cannot read {source} as Parquet: {scrub(str(exc))[:200]}") from exc


def _predict_spark(args: argparse.Namespace) -> int:
    """The same predictions as a Spark job writing a folder of part files (see dashboard/spark.py)."""
    if args.explain or args.drift:
        raise InputError("--explain and --drift are not available with --engine spark yet; run them locally")
    try:
        from dashboard import spark
    except ImportError as exc:
        raise InputError(
            f"--engine spark needs PySpark ({exc.name} is not installed): pip install -r requirements-spark.txt"
        ) from None
    settings = service.settings()
    history.check(settings)
    started = time.perf_counter()
    done = spark.run(args.input, args.output, args.version, args.format, args.master, settings)
    seconds = time.perf_counter() - started
    job, rows, errors = done.job, done.rows, done.errors
    recorder = history.recorder(settings)
    if recorder is not None:
        recorder.record_summary(done.served, "cli", history.local_user(), rows, errors, seconds, args.input)
        _close_history(recorder)
    if errors:
        print(f"{errors:,} of {rows:,} rows have errors (see the error column)", file=sys.stderr)
    print(
        f"predicted {rows - errors} of {rows} rows with version {job.version.label} (sha256 "
        f"{job.version.digest[:12]}) on Spark in {seconds:.1f} s -> {args.output}",
        file=sys.stderr,
    )
    return 0 if rows > errors or rows == 0 else 1


def _record(recorder, settings, served, result, source: Path, data: bytes, seconds: float) -> None:
    """Write the run to the prediction history (a database that does not answer within seconds is a warning)."""
    recorder.record(
        served,
        "cli",
        history.local_user(),
        result.table,
        seconds,
        keep_rows=settings.history_file_rows,
        file_name=source.name,
        file_sha256=hashlib.sha256(data).hexdigest(),
    )
    _close_history(recorder)


def _close_history(recorder) -> None:
    """Wait for the run's record (at most HISTORY_WAIT seconds); a database that does not answer is a warning."""
    if not recorder.close(timeout=HISTORY_WAIT):
        why = recorder.status().paused or "it did not answer in time"
        print(f"warning: this run was not recorded in the prediction history: {why}", file=sys.stderr)


def _publish(args: argparse.Namespace) -> int:
    from dashboard.service.publish import PublishOptions, publish

    options = PublishOptions(
        schema_path=args.schema,
        notes=args.notes,
        alias=args.alias,
        force=args.force,
        weights=args.weights,
        lean=args.lean,
        reference=args.reference,
    )
    done = publish(args.model, args.version, args.store, options, settings=service.settings())
    print(f"published version {done.version} ({', '.join(done.files)}; schema {done.schema}) in {done.manifest}")
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


def _convert(args: argparse.Namespace) -> int:
    from dashboard.service.publish import add_lean, add_reference

    if args.reference is not None:
        done = add_reference(args.store, args.version, args.reference, settings=service.settings())
        print(f"version {done.version}: reference statistics from {args.reference.name} added in {done.manifest}")
        return 0

    done = add_lean(args.store, args.version, settings=service.settings())
    print(f"version {done.version}: {done.lean.detail} as {done.files[0]} in {done.manifest}")
    return 0


def _token(args: argparse.Namespace) -> int:
    from dashboard.access import new_token

    if args.token_command == "create":
        token, line = new_token(args.name)
        print(f"token for {args.name} (shown once; send it as Authorization: Bearer <token>):\n{token}")
        print(f"add this line to API_TOKENS (it holds the token's sha256, never the token):\n{line}")
        return 0
    names = [name for name, _ in service.settings().access.tokens]
    print("\n".join(names) if names else "no API tokens configured (API_TOKENS is empty)")
    return 0


def _write_output(target: Path, data: bytes) -> None:
    try:
        write_bytes_atomic(target, data)
    except OSError as exc:
        raise InputError(f"cannot write {target}: {exc.strerror}; check the folder exists and is writable") from exc


def run() -> None:
    """The `keras-dashboard` console script: the same as `python -m dashboard`."""
    sys.exit(main())


if __name__ == "__main__":
    run()
