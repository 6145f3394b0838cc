"""The seam where every door meets: a table (from a CSV, a form, a JSON body, a Spark batch) -> validation ->
predictions, against a served version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from dashboard.common import metrics
from dashboard.config import Settings
from dashboard.prediction import scoring
from dashboard.prediction.reading import csv_files
from dashboard.prediction.reading.json_rows import frame_of, matrix_of
from dashboard.prediction.reading.table import InputTable
from dashboard.prediction.scoring import BatchResult
from dashboard.prediction.validate import validate, validate_matrix
from dashboard.service.load import Served


def predict_table(
    served: Served, table: InputTable, progress: scoring.ProgressFn | None = None, max_warnings: int | None = 20
) -> BatchResult:
    """Validate a table read from a CSV file against the served schema and predict its good rows."""
    strings = frozenset(i.name for i in served.model.inputs if i.is_string)
    validated = validate(table, served.schema, served.model.named_inputs, strings, max_warnings)
    return counted(
        served,
        scoring.predict_validated(served.model, table.frame, validated, served.schema.output, served.label, progress),
    )


def counted(served: Served, result: BatchResult) -> BatchResult:
    """result, its rows counted in the process's metrics (predicted, and refused by reason)."""
    model, version = served.version.model_name, served.label
    predicted = int(result.good.sum())
    if predicted:
        metrics.ROWS_PREDICTED.labels(model, version).inc(predicted)
    if predicted < len(result.good):
        for reason, rows in scoring.refusals(result.errors, result.good).items():
            metrics.ROWS_REFUSED.labels(model, version, reason).inc(rows)
    return result


def predict_frame(
    served: Served, frame: pd.DataFrame, progress: scoring.ProgressFn | None = None, max_warnings: int | None = 20
) -> BatchResult:
    """Predict a table built in code (the form, the API): no reading problems, no decimal commas.

    max_warnings: how many range warnings to keep (None: all, as the API reports them per row)."""
    return predict_table(served, InputTable(frame), progress, max_warnings)


def read_csv(settings: Settings, data: bytes) -> InputTable:
    """Read uploaded CSV bytes with the settings' limits."""
    return csv_files.read_csv(data, settings.csv_max_bytes, settings.csv_max_rows, settings.csv_max_columns)


def predict_csv(
    settings: Settings, served: Served, data: bytes, progress: scoring.ProgressFn | None = None
) -> BatchResult:
    """Read uploaded CSV bytes (with the settings' limits) and predict them."""
    return predict_table(served, read_csv(settings, data), progress)


def predict_row(served: Served, values: Mapping[str, Any]) -> BatchResult:
    """Predict one row given as {feature: value} (the form's path)."""
    frame = pd.DataFrame([{name: values.get(name) for name in served.schema.names}])
    return predict_frame(served, frame)


def predict_rows(served: Served, rows: Sequence[Mapping[str, Any]]) -> BatchResult:
    """Predict rows given as {feature: value} (a JSON request, the micro-batcher's batch): all-number rows for a
    model of one 2-D input go through validate_matrix as one float matrix (no DataFrame per request); any other
    rows through the table path. Same answers, messages and warnings either way; every range warning kept."""
    names = served.schema.names
    numbers = None
    if not served.model.named_inputs and all(f.type == "number" for f in served.schema.features):
        numbers = matrix_of(rows, names)
    if numbers is None:
        return predict_frame(served, frame_of(rows, names), None, None)
    validated = validate_matrix(numbers, served.schema, None)
    frame = pd.DataFrame(numbers, columns=list(names), copy=False)
    result = scoring.predict_validated(served.model, frame, validated, served.schema.output, served.label)
    return counted(served, result)
