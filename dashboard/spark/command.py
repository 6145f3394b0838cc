"""The command line's Spark run (`python -m dashboard predict --engine spark`): a session, the input read as the
CLI reads it (CSV as text, or Parquet), the predictions written by the executors to a new folder."""

from __future__ import annotations

import glob
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from dashboard import service
from dashboard.config import Settings, quiet_tensorflow
from dashboard.errors import DashboardError, InputError, scrub
from dashboard.prediction.images import FILE_COLUMN
from dashboard.prediction.reading.spark_batches import CORRUPT
from dashboard.spark.driver import OutputFormat, Run, apply, counters_for, prepare_served
from dashboard.spark.worker import MARKER

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def session(master: str | None = None) -> SparkSession:
    """A Spark session for the command line (the cluster's, when spark-submit started this process)."""
    from pyspark.sql import SparkSession

    quiet_tensorflow()  # inherited by the local workers; a cluster's executors get it from executorEnv
    if (master or "local").startswith("local") and not os.environ.get("PYSPARK_PYTHON"):
        os.environ["PYSPARK_PYTHON"] = sys.executable  # local workers: this interpreter, not python3 from PATH
    log_config = Path(__file__).resolve().parent / "log4j2.properties"
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


def input_format(path: str) -> Literal["csv", "parquet", "images"]:
    """parquet for a .parquet file, glob or folder of them; images for a local folder of image files (no CSV or
    Parquet in it); csv otherwise."""
    bare = path.rstrip("/")
    if re.search(r"\.(parquet|pq)$", bare, re.IGNORECASE):
        return "parquet"
    local = Path(bare.removeprefix("file://"))
    if "://" not in bare or bare.startswith("file://"):
        if local.is_dir() and any(local.glob("*.parquet")):
            return "parquet"
        if local.is_dir() and not any(local.glob("*.csv")) and not any(local.glob("part-*")):
            return "images"
        if not local.exists() and not glob.glob(str(local)):
            raise InputError(f"cannot read {path}: no such file, folder or glob match; check the path")
    return "csv"


def read(spark: SparkSession, path: str) -> DataFrame:
    """PATH as Spark reads it: CSV (header, every column as text, as the CLI reads it; a line with the wrong number
    of fields flagged) or Parquet."""
    from pyspark.sql import types as T

    if input_format(path) == "parquet":
        return spark.read.parquet(path)
    if input_format(path) == "images":
        return read_images(spark, path)
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


IMAGE_BYTES = "_dashboard_image_bytes"  # the binaryFile content column, until the worker makes it the image feature


def read_images(spark: SparkSession, path: str) -> DataFrame:
    """A folder of images as Spark's binaryFile reads it (every file under it, hidden ones skipped): `file` (its
    path inside the folder, as the local CLI names it) and its bytes."""
    from pyspark.sql import functions as F

    root = Path(path.removeprefix("file://")).resolve().as_uri()  # file:///... as Spark writes a local path
    files = spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(path)
    relative = F.regexp_replace(F.col("path"), "^file:(//)?" + re.escape(root.removeprefix("file://")) + "/", "")
    return (
        files.select(relative.alias(FILE_COLUMN), F.col("content").alias(IMAGE_BYTES))
        .where(~F.col(FILE_COLUMN).rlike(r"(^|/)\."))
        .orderBy(FILE_COLUMN)
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
    kind = input_format(input_path)
    images = IMAGE_BYTES if kind == "images" else None
    job, served = prepare_served(df, version, settings, safe_text=fmt == "csv", images=images)
    counters = counters_for(spark)
    rows_before, errors_before = counters.rows.value, counters.errors.value
    result = apply(df, job, raw_text=kind == "parquet")  # Spark's CSV reader makes valid text
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
