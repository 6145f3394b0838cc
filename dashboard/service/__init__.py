"""The chains every door calls: load a version, predict a table, understand, publish; and what a serving process
keeps (the pool of loaded models, the micro-batcher). The doors import these names from here:
`service.load_version`, `service.predict_table` (the seam where page, API, CLI and Spark meet)."""

from dashboard.service.load import (
    Progress,
    SchemaSource,
    Served,
    catalog,
    fetch_file,
    fetch_files,
    given_schema,
    load_version,
    resolve_schema,
    runtime_for,
    settings,
)
from dashboard.service.models import for_model, models
from dashboard.service.pool import ModelPool, process_pool
from dashboard.service.predicting import (
    predict_csv,
    predict_frame,
    predict_row,
    predict_rows,
    predict_table,
    read_csv,
)

__all__ = [
    "ModelPool",
    "Progress",
    "SchemaSource",
    "Served",
    "catalog",
    "fetch_file",
    "fetch_files",
    "for_model",
    "given_schema",
    "load_version",
    "models",
    "predict_csv",
    "predict_frame",
    "predict_row",
    "predict_rows",
    "predict_table",
    "process_pool",
    "read_csv",
    "resolve_schema",
    "runtime_for",
    "settings",
]
