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
import shutil
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from dashboard import service
from dashboard.access import Access
from dashboard.config import Settings
from dashboard.errors import InputError, MissingColumnsError
from dashboard.prediction.reading.spark_batches import CORRUPT
from dashboard.prediction.scoring import output_columns
from dashboard.service import Served
from dashboard.spark.worker import Counters, Job, batches_of
from dashboard.store.fetch import sha256_of
from dashboard.store.versions import FileRef, ModelVersion

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

OutputFormat = Literal["csv", "parquet"]

warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")


@dataclass(frozen=True)
class Run:
    """What a command-line job did: the version served on the driver, rows written, rows with an error."""

    job: Job
    served: Served
    rows: int
    errors: int


def predict(
    df: DataFrame,
    version: str | None = None,
    settings: Settings | None = None,
    *,
    model: str | None = None,
    _safe_text: bool = False,
) -> DataFrame:
    """df with the CLI's output columns added (prediction, probabilities, model_version, error), as a lazy Spark
    DataFrame; version as MODEL_VERSION takes it (None: the default). Raises DashboardError on the driver."""
    if model is not None:  # a model of the catalog (MODEL_CATALOG_URL) by name
        settings = settings or service.settings()
        settings = service.for_model(settings, service.models(settings), model)
    job = prepare(df, version, settings, _safe_text)
    return apply(df, job)


def prepare(df: DataFrame, version: str | None, settings: Settings | None, safe_text: bool = False) -> Job:
    """Step 1 on the driver: resolve, pin, check; the Job the workers run."""
    return prepare_served(df, version, settings, safe_text)[0]


def prepare_served(
    df: DataFrame, version: str | None, settings: Settings | None, safe_text: bool = False, images: str | None = None
) -> tuple[Job, Served]:
    """Step 1 (see prepare); images: df is a folder of images (`file`, and this column of bytes)."""
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
    if images is not None:
        if len(served.schema.features) != 1 or served.schema.features[0].type != "image":
            raise InputError(
                f"a folder of images is for models of one image input; version {served.label} takes "
                f"{', '.join(served.schema.names)}: give a CSV or Parquet file"
            )
        given = [c for c in given if c != images]
    missing = [name for name in served.schema.names if name not in given and images is None]
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
        images=images,
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


def apply(df: DataFrame, job: Job, raw_text: bool = True) -> DataFrame:
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
    return df.mapInPandas(batches_of(job, counters), schema)


_COUNTERS: dict[int, Counters] = {}
_SHIPPED: set[int] = set()


def ship_package(spark: SparkSession) -> None:
    """Send this dashboard package's code to the executors once per Spark context (as `--py-files` would), so
    the workers run exactly the driver's validation and prediction code, installed on the cluster or not."""
    context = spark.sparkContext
    if id(context) in _SHIPPED:
        return
    package = Path(__file__).resolve().parents[1]  # the dashboard package, every group of it
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


# --- the command line -----------------------------------------------------------------------------------------
