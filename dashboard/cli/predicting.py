"""`predict`: a CSV or Parquet file through the same reading, validation and prediction as the Batch tab, written as
the results CSV and recorded in the history; or the same as a Spark job (--engine spark)."""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from dashboard import history, service
from dashboard.common.files import write_bytes_atomic
from dashboard.config import Settings
from dashboard.errors import InputError
from dashboard.prediction import images
from dashboard.prediction.images import SUFFIXES
from dashboard.prediction.reading import image_files, parquet_files
from dashboard.prediction.results import results_csv

HISTORY_WAIT = 10.0  # seconds the CLI waits for the history database before it warns and exits


def _print_drift(served, table, result) -> None:
    """Per-feature drift verdicts on stderr (or why there are none)."""
    from dashboard.service import understand

    _print_drift_found(understand.drift(served, table, result))


def _print_drift_found(found) -> None:
    if isinstance(found, str):
        print(f"drift: {found}", file=sys.stderr)
        return
    for item in found:
        print(
            f"drift: {item.feature}: {item.verdict} (PSI {item.psi:.3f}; at {item.rows:,} rows moderate from "
            f"{item.moderate_at:.3f}, major from {item.major_at:.3f}; {item.outside:.1%} outside the training range)",
            file=sys.stderr,
        )


def predict(
    source: Path,
    target: Path,
    requested: str | None,
    explain: bool = False,
    drift: bool = False,
    model: str | None = None,
) -> int:
    settings = model_settings(model)
    if not source.exists():
        raise InputError(f"cannot read {source}: no such file or folder; check the path")
    catalog = service.catalog(settings)
    version, warning = (
        catalog.choose(requested, "--version") if requested is not None else (catalog.default, catalog.warning)
    )
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    history.check(settings)  # a bad DATABASE_URL fails here, before any work
    served = service.load_version(settings, version)
    if served.schema.images and (source.is_dir() or source.suffix.lower() in (".zip", *SUFFIXES)):
        if explain:
            raise InputError(
                "--explain is not available for image files yet; the page's Predict tab shows which parts of an "
                "image mattered"
            )
        return predict_images(settings, served, source, target, drift)
    data = _read(source)
    started = time.perf_counter()
    table = (
        parquet_files.read_parquet(source, data)
        if source.suffix.lower() in (".parquet", ".pq")
        else service.read_csv(settings, data)
    )
    if served.schema.images:  # a CSV whose image columns hold paths relative to it
        table = image_files.with_paths(table, [f.name for f in served.schema.images], source.parent)
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


def _read(source: Path) -> bytes:
    if source.is_dir():
        raise InputError(f"{source} is a folder; give a CSV or Parquet file (folders of images are for image models)")
    try:
        return source.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror}; check the path") from exc


def predict_images(settings, served, source: Path, target: Path, drift: bool = False) -> int:
    """A folder, a zip or one image file: predicted a chunk of images at a time (memory holds one chunk), written
    as one results CSV with the file's name first, recorded in the history as one run."""
    import pandas as pd

    features = served.schema.images
    if len(served.schema.features) != 1:
        others = ", ".join(f.name for f in served.schema.features if f.type != "image")
        raise InputError(
            f"this model also takes {others}: give a CSV with a {features[0].name} column of image paths "
            "(relative to the CSV) and the other columns"
        )
    started = time.perf_counter()
    tables, digest, failed, first = [], hashlib.sha256(), 0, ""
    statistics: list[dict] = []  # --drift: each predicted image's statistics, chunk by chunk
    kept: list[pd.DataFrame] = []
    recorder = history.recorder(settings)
    thumbnails = settings.history_images == "thumbnails"
    size = min(image_files.CHUNK, images.batch_rows(features))  # a chunk's pixels fit images.BATCH_BYTES
    for chunk in image_files.chunks(image_files.source_files(source), features[0].name, size):
        result = service.predict_table(served, chunk)
        if recorder is not None and sum(map(len, tables)) + chunk.rows <= settings.history_file_rows:
            kept.append(images.kept_table(result.table, features, chunk.frame, thumbnails))  # rows the history keeps
        tables.append(result.table)
        if drift:
            files = [f for f, good in zip(chunk.frame[features[0].name], result.good, strict=True) if good]
            statistics.append(images.statistic_columns(files, features[0].name))
        for item in chunk.frame[features[0].name]:
            digest.update(f"{item.name}\0{item.digest}\0".encode())
        if result.failed and not first:
            index = int(np.flatnonzero(~result.good)[0])
            first = str(result.errors[index])
        failed += result.failed
    if not tables:
        raise InputError(f"{source} holds no files; give a folder or a zip of images")
    table = pd.concat(tables, ignore_index=True)
    _write_output(target, results_csv(table))
    if recorder is not None:
        seconds = time.perf_counter() - started
        whole = len(kept) == len(tables)  # every row is kept (up to HISTORY_FILE_ROWS): with the image records
        recorder.record(
            served,
            "cli",
            history.local_user(),
            pd.concat(kept, ignore_index=True) if whole else table,
            seconds,
            keep_rows=settings.history_file_rows,
            file_name=source.name,
            file_sha256=digest.hexdigest(),
        )
        _close_history(recorder)
    if drift:
        from dashboard.service import understand

        columns = {k: np.concatenate([part[k] for part in statistics]) for k in statistics[0]}
        _print_drift_found(understand.image_drift(served, columns))
    rows = len(table)
    if failed:
        print(
            f"{failed:,} of {rows:,} files {'has' if failed == 1 else 'have'} errors (see the error column); "
            f"first: {first}",
            file=sys.stderr,
        )
    if failed == rows:
        print(
            f"error: no image could be predicted with version {served.label}; the reasons are in {target}",
            file=sys.stderr,
        )
        return 1
    print(f"predicted {rows - failed} of {rows} images with version {served.label} -> {target}", file=sys.stderr)
    return 0


def predict_spark(args: argparse.Namespace) -> int:
    """The same predictions as a Spark job writing a folder of part files (see dashboard/spark.py)."""
    if args.explain or args.drift:
        raise InputError("--explain and --drift are not available with --engine spark yet; run them locally")
    try:
        from dashboard import spark
    except ImportError as exc:
        raise InputError(
            f"--engine spark needs PySpark ({exc.name} is not installed): pip install -r requirements-spark.txt"
        ) from None
    settings = model_settings(args.model)
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


def model_settings(name: str | None) -> Settings:
    """The settings of the model called name (--model; None: the catalog's default model)."""
    settings = service.settings()
    if name is None and not settings.catalog_url:
        return settings
    return service.for_model(settings, service.models(settings), name)


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


def _write_output(target: Path, data: bytes) -> None:
    try:
        write_bytes_atomic(target, data)
    except OSError as exc:
        raise InputError(f"cannot write {target}: {exc.strerror}; check the folder exists and is writable") from exc
