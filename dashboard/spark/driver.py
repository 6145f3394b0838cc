"""The same predictions as an Apache Spark job: `predict(df)` for notebooks, `python -m dashboard predict --engine
spark` on the command line (both need `requirements-spark.txt`).

Steps:
1. On the driver: settings, catalog, the version (default or asked for), its files fetched and verified, the model
   loaded once to check it and to know its schema; an unpinned version is pinned to the sha256 of what was
   fetched. Everything that can fail (store unreachable, wrong sha256, model refused, missing input columns)
   fails here, once, with the CLI's message, before any task runs.
2. On the executors: one `mapInPandas` over the rows. Each Python worker fetches the pinned files through the
   same verified, cached download and loads the model once, then reuses it for every task and partition it runs.
   Each Arrow batch goes through the same validation and prediction as a row on a dyno (service.predict_table):
   bad rows are flagged in `error`, never fail a task.

Credentials for private stores reach executors through their environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS,
...), never inside the job: the settings shipped with the job have them removed.
"""

from __future__ import annotations

import atexit
import dataclasses
import glob
import os
import re
import shutil
import sys
import tempfile
import threading
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from dashboard import service

from dashboard.prediction.reading import csv_files
from dashboard.access import Access
from dashboard.config import Settings, quiet_tensorflow
from dashboard.prediction.reading.csv_files import CsvTable
from dashboard.errors import DashboardError, InputError, MissingColumnsError, scrub
from dashboard.store.fetch import sha256_of
from dashboard.prediction.scoring import output_columns
from dashboard.prediction.schema import Schema
from dashboard.service import Served
from dashboard.store.versions import FileRef, ModelVersion

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

OutputFormat = Literal["csv", "parquet"]
CORRUPT = "_dashboard_corrupt_record"  # Spark puts a CSV line whose field count is wrong here
MARKER = "dashboard error: "  # how a worker's clear message is found again in Spark's exception text
RAGGED = (
    "this line's field count differs from the header's; a stray separator, or a text value with a separator that "
    "needs quotes"
)

warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")


@dataclass(frozen=True)
class Job:
    """What every worker needs, decided once on the driver: the pinned version, its schema, the settings (secrets
    removed), the output columns and whether text is neutralised for spreadsheets (CSV output)."""

    settings: Settings
    version: ModelVersion
    schema: Schema
    schema_source: str
    columns: tuple[str, ...]
    input_columns: tuple[str, ...]
    safe_text: bool = False
    raw_text: tuple[str, ...] = ()  # text columns sent as bytes: checked as UTF-8 per cell by the worker

    @property
    def key(self) -> str:
        return self.version.identity + "|" + self.settings.runtime


@dataclass(frozen=True)
class Run:
    """What a command-line job did: the version served on the driver, rows written, rows with an error."""

    job: Job
    served: Served
    rows: int
    errors: int


@dataclass(frozen=True)
class Counters:
    """Accumulators the workers add to: model loads (one per Python worker), rows, rows with an error."""

    loads: Any
    rows: Any
    errors: Any


def predict(
    df: DataFrame, version: str | None = None, settings: Settings | None = None, *, _safe_text: bool = False
) -> DataFrame:
    """df with the CLI's output columns added (prediction, probabilities, model_version, error), as a lazy Spark
    DataFrame; version as MODEL_VERSION takes it (None: the default). Raises DashboardError on the driver."""
    job = prepare(df, version, settings, _safe_text)
    return _apply(df, job)


def prepare(df: DataFrame, version: str | None, settings: Settings | None, safe_text: bool = False) -> Job:
    """Step 1 on the driver: resolve, pin, check; the Job the workers run."""
    return _prepare(df, version, settings, safe_text)[0]


def _prepare(
    df: DataFrame, version: str | None, settings: Settings | None, safe_text: bool = False
) -> tuple[Job, Served]:
    settings = settings or service.settings()
    width = len([c for c in df.columns if c != CORRUPT])
    if width > settings.csv_max_columns:  # as the local CLI refuses it: 5,000 columns took Spark 221 s
        raise InputError(
            f"the input has {width:,} columns, over the {settings.csv_max_columns:,} limit; keep the model's "
            "columns, or raise CSV_MAX_COLUMNS"
        )
    catalog = service.catalog(settings)
    chosen, warning = (
        catalog.choose(version, "the version argument") if version is not None else (catalog.default, None)
    )
    if warning:
        warnings.warn(warning, stacklevel=3)
    runtime = service.runtime_for(settings, chosen)
    pinned = pin(settings, chosen, runtime)
    served = service.load_version(settings, pinned)
    given = [c for c in df.columns if c != CORRUPT]
    missing = [name for name in served.schema.names if name not in given]
    if missing:
        raise MissingColumnsError(
            f"column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} "
            f"{'are' if len(missing) > 1 else 'is'} missing from the input; expected columns: "
            f"{', '.join(served.schema.names)}"
        )
    added = output_columns(served.schema.output)
    clash = [c for c in given if c in added]
    if clash:
        raise InputError(f"the input already has column(s) {', '.join(clash)}, which the output adds; rename them")
    job = Job(
        settings=_without_secrets(settings),
        version=pinned,
        schema=served.schema,
        schema_source=served.schema_source,
        columns=(*given, *added),
        input_columns=tuple(given),
        safe_text=safe_text,
    )
    return job, served


def pin(settings: Settings, version: ModelVersion, runtime: str) -> ModelVersion:
    """The version with a sha256 on every file it will load: pinned ones as they are, others pinned to the sha256
    of the files fetched now, so a file replaced while the job runs fails its check instead of mixing models."""
    if runtime == "litert":
        if version.tflite is not None and version.tflite.sha256:
            return version
        path = service.fetch_file(settings, version.tflite)
        return dataclasses.replace(version, tflite=FileRef(version.tflite.url, sha256_of(path)))
    if version.pinned:
        return version
    paths = service.fetch_files(settings, version)
    changes = {role: FileRef(getattr(version, role).url, sha256_of(path)) for role, path in paths.items()}
    return dataclasses.replace(version, **changes)


def _without_secrets(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        aws_access_key_id=None,
        aws_secret_access_key=None,
        aws_session_token=None,
        access=Access(),
        database_url=None,
    )


def _apply(df: DataFrame, job: Job, raw_text: bool = True) -> DataFrame:
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    spark = df.sparkSession
    ship_package(spark)
    counters = counters_for(spark)
    text = tuple(f.name for f in df.schema.fields if isinstance(f.dataType, T.StringType) and f.name != CORRUPT)
    if text and raw_text:  # text not UTF-8 cannot reach a worker through Arrow (one byte failed the job): as bytes
        job = dataclasses.replace(job, raw_text=text)
        df = df.select(*[F.col(c).cast("binary").alias(c) if c in text else F.col(c) for c in df.columns])
    fields = {f.name: (T.StructField(f.name, T.StringType(), True) if f.name in text else f) for f in df.schema.fields}
    output = job.schema.output
    prediction = T.DoubleType() if output.type == "regression" else T.StringType()
    added = {"prediction": prediction, "model_version": T.StringType(), "error": T.StringType()}
    schema = T.StructType(
        [fields[name] for name in job.input_columns]
        + [T.StructField(name, added.get(name, T.DoubleType()), True) for name in job.columns[len(job.input_columns) :]]
    )
    return df.mapInPandas(_worker(job, counters), schema)


_COUNTERS: dict[int, Counters] = {}
_SHIPPED: set[int] = set()


def ship_package(spark: SparkSession) -> None:
    """Send this dashboard package's code to the executors once per Spark context (as `--py-files` would), so
    the workers run exactly the driver's validation and prediction code, installed on the cluster or not."""
    context = spark.sparkContext
    if id(context) in _SHIPPED:
        return
    package = Path(__file__).resolve().parent
    folder = Path(tempfile.mkdtemp(prefix="dashboard-code-"))
    atexit.register(shutil.rmtree, folder, True)  # the executors fetch it during the run; gone when we are
    archive = folder / "dashboard.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(package.rglob("*")):
            if path.suffix in (".py", ".json") and "__pycache__" not in path.parts:
                bundle.write(path, Path("dashboard") / path.relative_to(package))
    context.addPyFile(str(archive))
    _SHIPPED.add(id(context))


def counters_for(spark: SparkSession) -> Counters:
    """This Spark context's counters (created once per context)."""
    context = spark.sparkContext
    key = id(context)
    if key not in _COUNTERS:
        _COUNTERS[key] = Counters(context.accumulator(0), context.accumulator(0), context.accumulator(0))
    return _COUNTERS[key]


# --- on the workers -------------------------------------------------------------------------------------------

_SERVED: dict[str, Served] = {}  # per Python worker process: reused by every task and partition it runs
_SERVED_LOCK = threading.Lock()


def _served(job: Job, counters: Counters) -> Served:
    with _SERVED_LOCK:
        found = _SERVED.get(job.key)
        if found is not None:
            return found
        settings = _with_local_credentials(job.settings)
        loaded = service.load_version(settings, job.version)
        found = dataclasses.replace(loaded, schema=job.schema, schema_source=job.schema_source)
        _SERVED.clear()  # one version per worker at a time: a new job's version replaces the last one
        _SERVED[job.key] = found
        counters.loads.add(1)
        return found


def _with_local_credentials(settings: Settings) -> Settings:
    """The job's settings with this machine's bucket credentials (read from its environment)."""
    local = service.settings()
    return dataclasses.replace(
        settings,
        aws_access_key_id=local.aws_access_key_id,
        aws_secret_access_key=local.aws_secret_access_key,
        aws_session_token=local.aws_session_token,
    )


def _worker(job: Job, counters: Counters):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        try:
            served = _served(job, counters)
        except DashboardError as exc:  # one clear line, found again on the driver
            raise RuntimeError(MARKER + exc.message) from None
        for batch in batches:
            yield predict_batch(served, job, batch, counters)

    return run


def predict_batch(served: Served, job: Job, batch: pd.DataFrame, counters: Counters | None = None) -> pd.DataFrame:
    """One Arrow batch through the same validation and prediction as the CLI (bad rows flagged, never raised)."""
    batch = batch.reset_index(drop=True)
    row_errors: dict[int, str] = {}
    if CORRUPT in batch.columns:
        flagged = batch[CORRUPT].notna().to_numpy()
        row_errors = {int(i): RAGGED for i in flagged.nonzero()[0]}
        batch = batch.drop(columns=[CORRUPT])
    if job.raw_text:
        batch = batch.copy()
        for name in job.raw_text:
            batch[name] = _decoded(batch[name], name, row_errors)
    result = service.predict_table(served, CsvTable(_as_read(batch, job.schema), row_errors), max_warnings=0)
    table = result.table
    table = pd.concat([batch[list(job.input_columns)], table[list(job.columns[len(job.input_columns) :])]], axis=1)
    if job.safe_text:  # CSV output: what the local CLI writes (spreadsheet-safe text, probabilities rounded)
        table = csv_files.neutralised(csv_files.rounded_probabilities(table))
    if counters is not None:
        counters.rows.add(result.rows)
        counters.errors.add(result.failed)
    return table


def _decoded(column: pd.Series, name: str, row_errors: dict[int, str]) -> pd.Series:
    """A text column that came as bytes, as text: a cell that is not UTF-8 is shown with U+FFFD and its row is an
    error, the other rows go on (the whole column at once when it is all valid, the usual case)."""
    import pyarrow as pa

    values = pa.array(column, type=pa.binary(), from_pandas=True)
    try:
        return pd.Series(values.cast(pa.string()).to_pandas(), index=column.index, dtype=object)
    except pa.ArrowInvalid:
        pass
    cells = []
    for i, raw in enumerate(column.tolist()):
        if raw is None:
            cells.append(None)
            continue
        try:
            cells.append(bytes(raw).decode("utf-8"))
        except UnicodeDecodeError:
            cells.append(bytes(raw).decode("utf-8", errors="replace"))
            why = f"{name}: the text is not valid UTF-8; save the data as UTF-8"
            row_errors[i] = f"{row_errors[i]}; {why}" if i in row_errors else why
    return pd.Series(cells, index=column.index, dtype=object)


def _as_read(batch: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The batch as the CLI's CSV reader would hand it over: a number column whose every cell is a number becomes
    floats (Arrow parses it in C++; validating text costs ~6x more per cell), any other column stays text for the
    validation to word each bad cell. Missing cells are None or NaN, as pandas reads them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    frame = batch.copy(deep=False)
    for feature in schema.features:
        column = frame.get(feature.name)
        if feature.type != "number" or column is None or pd.api.types.is_numeric_dtype(column):
            continue
        try:
            numbers = pc.cast(pa.array(column, type=pa.string(), from_pandas=True), pa.float64())
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            frame[feature.name] = column.astype(object).where(column.notna(), None)
            continue
        frame[feature.name] = numbers.to_numpy(zero_copy_only=False)
    return frame


# --- the command line -----------------------------------------------------------------------------------------


def session(master: str | None = None) -> SparkSession:
    """A Spark session for the command line (the cluster's, when spark-submit started this process)."""
    from pyspark.sql import SparkSession

    quiet_tensorflow()  # inherited by the local workers; a cluster's executors get it from executorEnv
    if (master or "local").startswith("local") and not os.environ.get("PYSPARK_PYTHON"):
        os.environ["PYSPARK_PYTHON"] = sys.executable  # local workers: this interpreter, not python3 from PATH
    log_config = Path(__file__).resolve().parent / "spark-log4j2.properties"
    builder = (
        SparkSession.builder.appName("keras-dashboard predict")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log_config}")
        .config("spark.executorEnv.TF_CPP_MIN_LOG_LEVEL", "2")
        # fewer, larger batches per Python call (each batch is validated and predicted at once)
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "50000")
    )
    if master:
        builder = builder.master(master)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def input_format(path: str) -> Literal["csv", "parquet"]:
    """parquet for a .parquet file, glob or folder of them; csv otherwise."""
    bare = path.rstrip("/")
    if re.search(r"\.(parquet|pq)$", bare, re.IGNORECASE):
        return "parquet"
    local = Path(bare.removeprefix("file://"))
    if "://" not in bare or bare.startswith("file://"):
        if local.is_dir() and any(local.glob("*.parquet")):
            return "parquet"
        if not local.exists() and not glob.glob(str(local)):
            raise InputError(f"cannot read {path}: no such file, folder or glob match; check the path")
    return "csv"


def read(spark: SparkSession, path: str) -> DataFrame:
    """PATH as Spark reads it: CSV (header, every column as text, as the CLI reads it; a line with the wrong number
    of fields flagged) or Parquet."""
    from pyspark.sql import types as T

    if input_format(path) == "parquet":
        return spark.read.parquet(path)
    header = spark.read.option("header", True).option("inferSchema", False).csv(path).columns
    header = [c.strip().lstrip("\ufeff") for c in header]
    schema = T.StructType(
        [T.StructField(c, T.StringType(), True) for c in header] + [T.StructField(CORRUPT, T.StringType())]
    )
    return (
        spark.read.option("header", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .option("ignoreLeadingWhiteSpace", True)
        .option("ignoreTrailingWhiteSpace", True)
        .option("escape", '"')  # RFC 4180: a quote inside a quoted field is doubled
        .option("multiLine", False)
        .schema(schema)
        .csv(path)
    )


def run(
    input_path: str,
    output: str,
    version: str | None,
    fmt: OutputFormat = "csv",
    master: str | None = None,
    settings: Settings | None = None,
) -> Run:
    """The CLI's Spark job: read, predict, write OUT (a folder, written by the executors; it must not exist)."""
    settings = settings or service.settings()
    if os.path.exists(output):
        raise InputError(f"{output} already exists; choose a new output folder (Spark writes a folder of part files)")
    input_format(input_path)  # a missing local file is reported before Spark starts
    spark = session(master)
    try:
        df = read(spark, input_path)
    except DashboardError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read {input_path}: {_spark_message(exc)}") from None
    job, served = _prepare(df, version, settings, safe_text=fmt == "csv")
    counters = counters_for(spark)
    rows_before, errors_before = counters.rows.value, counters.errors.value
    result = _apply(df, job, raw_text=input_format(input_path) == "parquet")  # Spark's CSV reader makes valid text
    try:
        writer = result.write.mode("errorifexists")
        if fmt == "csv":
            writer.option("header", True).option("emptyValue", "").option("escape", '"').csv(output)
        else:
            writer.parquet(output)
    except Exception as exc:
        message = _spark_message(exc)
        raise DashboardError(f"the Spark job failed: {message}") from None
    return Run(job, served, counters.rows.value - rows_before, counters.errors.value - errors_before)


def _spark_message(exc: BaseException) -> str:
    """The one line a person needs from a Spark exception: the dashboard's own message when a worker raised one,
    else the first line of Spark's (never the Java stack trace)."""
    text = str(exc)
    found = re.search(re.escape(MARKER) + r"(.+)", text)
    if found:
        return scrub(found.group(1).strip())
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    # a Python worker's failure: its traceback's last line says what went wrong (the first only that it did)
    raised = [line for line in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Warning)\b.*:", line)]
    raised = [line for line in raised if not line.startswith(("org.", "java.", "py4j.", "scala."))]
    if raised and raised[-1] not in first:
        first = f"{first} {raised[-1]}"
    return scrub(first)[:500]
