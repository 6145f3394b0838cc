"""On the executors: each Python worker loads the job's pinned version once (fetched through the same verified,
cached download) and sends every Arrow batch through service.predict_table; bad rows are flagged, never raised."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dashboard import service
from dashboard.common.csv_export import neutralised
from dashboard.config import Settings
from dashboard.errors import DashboardError
from dashboard.prediction.images import batch_rows
from dashboard.prediction.reading import spark_batches
from dashboard.prediction.results import rounded_probabilities
from dashboard.prediction.schema import Schema
from dashboard.service import Served
from dashboard.store.versions import ModelVersion

MARKER = "dashboard error: "  # how a worker's clear message is found again in Spark's exception text


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
    images: str | None = None  # a folder of images (binaryFile): the column of file bytes, beside `file`

    @property
    def key(self) -> str:
        return self.version.identity + "|" + self.settings.runtime


@dataclass(frozen=True)
class Counters:
    """Accumulators the workers add to: model loads (one per Python worker), rows, rows with an error."""

    loads: Any
    rows: Any
    errors: Any


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


def batches_of(job: Job, counters: Counters):
    """The function mapInPandas runs on each partition: the served version once, then every batch through it."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        try:
            served = _served(job, counters)
        except DashboardError as exc:  # one clear line, found again on the driver
            raise RuntimeError(MARKER + exc.message) from None
        for batch in batches:
            yield predict_batch(served, job, batch, counters)

    return run


def predict_batch(served: Served, job: Job, batch: pd.DataFrame, counters: Counters | None = None) -> pd.DataFrame:
    """One Arrow batch through the same validation and prediction as the CLI (bad rows flagged, never raised);
    images a slice at a time, so their pixels fit images.BATCH_BYTES."""
    if job.images is not None:
        size = batch_rows(job.schema.images)
        if len(batch) > size:
            parts = [batch.iloc[start : start + size] for start in range(0, len(batch), size)]
            return pd.concat([_predict_part(served, job, part, counters) for part in parts], ignore_index=True)
    return _predict_part(served, job, batch, counters)


def _predict_part(served: Served, job: Job, batch: pd.DataFrame, counters: Counters | None) -> pd.DataFrame:
    batch, table = spark_batches.read_batch(batch, job.schema, job.raw_text, job.images)
    result = service.predict_table(served, table, max_warnings=0)
    table = result.table
    table = pd.concat([batch[list(job.input_columns)], table[list(job.columns[len(job.input_columns) :])]], axis=1)
    if job.safe_text:  # CSV output: what the local CLI writes (spreadsheet-safe text, probabilities rounded)
        table = neutralised(rounded_probabilities(table))
    if counters is not None:
        counters.rows.add(result.rows)
        counters.errors.add(result.failed)
    return table
