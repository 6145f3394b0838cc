"""One history record: the row a prediction becomes (its provenance, summary, and the rows when small enough),
built off the request path by the writer thread, and inserted in batches."""

from __future__ import annotations

import getpass
import json
import math
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
import sqlalchemy as sa

from dashboard.history import monitoring
from dashboard.history.tables import predictions
from dashboard.prediction import images
from dashboard.prediction.schema import Schema
from dashboard.prediction.scoring import output_columns
from dashboard.store.versions import ModelVersion

Source = Literal["form", "batch", "api", "cli", "mcp"]
SOURCES: tuple[Source, ...] = ("form", "batch", "api", "cli", "mcp")
MAX_KEPT_BYTES = 256 * 1024  # rows kept with one prediction, as JSON; past it the summary alone
_COLUMNS = tuple(c.name for c in predictions.c)
_QUOTED = tuple(f'"{name}"' for name in _COLUMNS)


class Served(Protocol):
    """What a record reads of the version that answered (service.Served offers it)."""

    schema: Schema
    label: str
    version: ModelVersion
    runtime: str


@dataclass
class Pending:
    """A prediction waiting to be written; turned into a row by the writer thread, off the request path."""

    fields: dict[str, Any]  # the row's columns known when it was recorded (features among them)
    output: Any  # schema.Output
    keep: bool = False  # keep the rows (inputs and outputs), not only the summary
    table: pd.DataFrame | None = None  # the result table (inputs + output columns)
    rows: list[Mapping[str, Any]] | None = None  # a JSON API call: the rows as sent
    answers: list[dict[str, Any]] | None = None  # ... and the answer's rows
    ready: bool = False  # fields already complete (record_summary)
    reference: Mapping[str, Any] | None = None  # the version's training reference: the monitor's drift bins
    bins: monitoring.Digest | None = None  # the inputs' bins, counted before a large table's inputs were dropped

    @property
    def size(self) -> int:
        """Bytes this record holds while it waits, roughly (64 per cell): what HISTORY_QUEUE_MB bounds."""
        if self.table is not None:
            return 64 * self.table.size
        return 64 * (len(self.rows or ()) + len(self.answers or ())) * max(1, len(self.features)) + 1024

    @property
    def features(self) -> list[str]:
        return self.fields["features"]


def of_table(
    served: Served,
    source: Source,
    who: str,
    table: pd.DataFrame,
    seconds: float,
    keep_rows: int,
    file_name: str | None = None,
    file_sha256: str | None = None,
) -> Pending:
    """A prediction (a form row, a batch file, a CLI run, a CSV or compatible API call) from its result table
    (inputs, prediction, probabilities, error); its rows are kept when there are at most keep_rows of them."""
    fields = _fields(served, source, who, len(table), seconds, file_name, file_sha256)
    keep = len(table) <= keep_rows
    reference, bins = served.version.reference, None
    if not keep:  # only the summary is stored: the queue holds two columns, not the whole table (and the bins)
        bins = monitoring.input_bins(_good_columns(table, served.schema.names), reference) if reference else []
        table = table[["prediction", "error"]]
    return Pending(fields, served.schema.output, keep, table=table, reference=reference, bins=bins)


def of_answer(
    served: Served,
    who: str,
    rows: list[Mapping[str, Any]],
    answers: list[dict[str, Any]],
    seconds: float,
    keep_rows: int,
    source: Source = "api",
) -> Pending:
    """A JSON API call (or an assistant's tool call) from its rows as sent and its answer rows: no table to convert
    (the hot path)."""
    fields = _fields(served, source, who, len(rows), seconds, None, None)
    keep = len(rows) <= keep_rows
    return Pending(fields, served.schema.output, keep, rows=rows, answers=answers, reference=served.version.reference)


def of_summary(
    served: Served, source: Source, who: str, rows: int, errors: int, seconds: float, file_name: str
) -> Pending:
    """A run known only by its counts (a Spark job: its rows never leave the cluster)."""
    fields = _fields(served, source, who, rows, seconds, file_name, None)
    fields.update(errors=errors, summary={"predicted": rows - errors}, inputs=None, outputs=None)
    return Pending(fields, served.schema.output, ready=True)


def _fields(
    served: Served,
    source: Source,
    who: str,
    rows: int,
    seconds: float,
    file_name: str | None,
    file_sha256: str | None,
) -> dict[str, Any]:
    schema = served.schema
    return {
        "id": _new_id(),
        "created_at": datetime.now(UTC),
        "user": (who or "anonymous")[:320],
        "source": source,
        "model": served.version.model_name[:64] or None,
        "version": served.label[:64],
        "sha256": served.version.digest if served.version.pinned else None,
        "runtime": served.runtime,
        "output_type": schema.output.type,
        "labels": list(schema.output.labels) if schema.output.type != "regression" else None,
        "features": list(schema.names),
        "rows": rows,
        "duration_ms": round(seconds * 1000, 3),
        "file_name": file_name[:255] if file_name else None,
        "file_sha256": file_sha256,
    }


def insert(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """The whole batch as one JSON document in one statement, unpacked by the database (SQLite's json_each,
    PostgreSQL's json_populate_recordset). The writer shares the GIL and the CPU with the request path: one
    driver call per batch instead of one per row spares it the GIL hand-offs, and one C-encoded document is
    far cheaper than SQLAlchemy's per-row bind processing. Times are written as each dialect stores them."""
    sqlite = connection.dialect.name == "sqlite"
    monitoring.add(connection, rows)  # the hourly counts, in the same transaction
    rows = [  # copies: a retry one by one must find the rows as they were
        {**{k: v for k, v in row.items() if k != "monitor"}, "created_at": _stored_time(row["created_at"], sqlite)}
        for row in rows
    ]
    try:
        document = json.dumps(rows, ensure_ascii=False, allow_nan=False)
    except ValueError:  # NaN or infinity somewhere in an output: JSON has no such numbers
        document = json.dumps(_finite(rows), ensure_ascii=False, allow_nan=False)
    columns = ", ".join(_QUOTED)
    if sqlite:
        values = ", ".join(f"json_extract(value, '$.{name}')" for name in _COLUMNS)
        connection.exec_driver_sql(
            f"INSERT INTO predictions ({columns}) SELECT {values} FROM json_each(?)", (document,)
        )
    else:
        connection.exec_driver_sql(
            f"INSERT INTO predictions ({columns}) SELECT {columns} "
            "FROM json_populate_recordset(NULL::predictions, %s::json)",
            (document,),
        )


def _stored_time(when: datetime, sqlite: bool) -> str:
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else when.isoformat()


def row_of(pending: Pending, bins: bool = True) -> dict[str, Any]:
    """The database row for a queued prediction: inputs and outputs (when kept), the summary, and its hourly counts
    ("monitor"; without its inputs' bins when not bins: rows_of counts those for a whole batch at once)."""
    fields = dict(pending.fields)
    if pending.ready:
        return {**fields, "monitor": _digest(fields, [])}
    if pending.answers is not None:
        answers = pending.answers
        row = {**fields, **_from_answers(pending)}
        found = _digest(row, [a["prediction"] for a in answers if not a.get("error")])
    else:
        row = _from_table(pending, fields)
        full = pending.table
        good = ~full["error"].astype(bool).to_numpy() if len(full) else np.zeros(0, dtype=bool)
        found = _digest(row, full["prediction"].to_numpy()[good].tolist() if len(full) else [])
    if pending.bins is not None:  # a large table's inputs, counted when it was recorded
        found += pending.bins
    elif bins and pending.reference:
        found += monitoring.input_bins(_good_inputs(pending), pending.reference)
    return {**row, "monitor": found}


def rows_of(batch: list[Pending]) -> tuple[list[dict[str, Any]], list[tuple[Pending, Exception]]]:
    """The rows of a batch the writer inserts now, and the records that could not become one. The inputs' bins are
    counted once per (version, hour, door) of the batch, over all its records' values together: per record, that
    counting cost more than the rest of the record (~100 us of the writer's share of the GIL per API call)."""
    rows, failed = [], []
    groups: dict[tuple, tuple[Mapping[str, Any], dict[str, list[Any]], int]] = {}
    for pending in batch:
        try:
            row = row_of(pending, bins=False)
            if pending.bins is None and pending.reference:
                hour = monitoring.hour_of(row["created_at"])
                key = (id(pending.reference), row["model"], row["version"], hour, row["source"])
                group = groups.setdefault(key, (pending.reference, {}, len(rows)))
                for name, values in _good_inputs(pending).items():
                    group[1].setdefault(name, []).extend(values)
        except Exception as exc:
            failed.append((pending, exc))
            continue
        rows.append(row)
    for reference, inputs, index in groups.values():  # the group's bins ride on its first row (add() sums them)
        rows[index]["monitor"] = rows[index]["monitor"] + monitoring.input_bins(inputs, reference)
    return rows, failed


def _good_inputs(pending: Pending) -> dict[str, Any]:
    """The predicted rows' value of each feature, as sent."""
    if pending.answers is not None:
        sent = pending.rows or []
        good = [i for i, a in enumerate(pending.answers) if not a.get("error") and i < len(sent)]
        return {name: [sent[i].get(name) for i in good] for name in pending.features}
    return _good_columns(pending.table, pending.features)


def _digest(row: dict[str, Any], answers: list[Any]) -> monitoring.Digest:
    return monitoring.digest(row["duration_ms"], row["rows"], row["errors"], row["output_type"], answers)


def _good_columns(table: pd.DataFrame | None, names: list[str]) -> dict[str, np.ndarray]:
    """The predicted rows' values of each feature column the table has (arrays: a large file's are binned at once)."""
    if table is None or not len(table):
        return {}
    good = ~table["error"].astype(bool).to_numpy()
    return {name: table[name].to_numpy()[good] for name in names if name in table.columns}


def _from_table(pending: Pending, fields: dict[str, Any]) -> dict[str, Any]:
    full = pending.table
    errors = full["error"].astype(bool).to_numpy() if len(full) else []
    fields["errors"] = int(sum(errors))
    fields["summary"] = _summary(full, pending.output)
    fields["inputs"] = fields["outputs"] = None
    if pending.keep:
        names = [n for n in pending.features if n in full.columns]
        fields["inputs"] = _records(full[names])
        shown = [c for c in output_columns(pending.output) if c != "model_version" and c in full.columns]
        fields["outputs"] = _records(full[shown])
    return _bounded(fields)


def _bounded(fields: dict[str, Any]) -> dict[str, Any]:
    """A record whose kept rows are over MAX_KEPT_BYTES keeps its summary only (a 20 MB call of long cells must
    not become a 20 MB history row), and says so in the summary."""
    if fields.get("inputs") is None:
        return fields
    size = len(json.dumps([fields["inputs"], fields["outputs"]], default=str))
    if size <= MAX_KEPT_BYTES:
        return fields
    summary = dict(fields.get("summary") or {})
    summary["rows_not_kept"] = f"{size:,} bytes of rows, over the {MAX_KEPT_BYTES:,} kept per prediction"
    return {**fields, "inputs": None, "outputs": None, "summary": summary}


def _from_answers(pending: Pending) -> dict[str, Any]:
    """errors, summary, inputs and outputs of a JSON API call, in plain Python (no pandas on this path)."""
    answers = pending.answers or []
    good = [a["prediction"] for a in answers if not a.get("error")]
    if pending.output.type == "regression":
        values = [float(v) for v in good if v is not None]
        summary: dict[str, Any] = {"predicted": len(values)}
        if values:
            summary.update(min=min(values), mean=sum(values) / len(values), max=max(values))
    else:
        counts: dict[str, int] = {}
        for label in good:
            counts[str(label)] = counts.get(str(label), 0) + 1
        summary = {"predicted": len(good), "counts": dict(sorted(counts.items(), key=lambda kv: -kv[1]))}
    kept = pending.keep
    return _bounded(
        {
            "errors": len(answers) - len(good),
            "summary": summary,
            "inputs": [{name: images.kept(row.get(name)) for name in pending.features} for row in pending.rows or []]
            if kept
            else None,
            "outputs": answers if kept else None,
        }
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe records (numpy numbers to Python, NaN to null, texts as given)."""
    return json.loads(frame.to_json(orient="records", force_ascii=False, date_format="iso"))


def _summary(table: pd.DataFrame, output: Any) -> dict[str, Any]:
    good = table[~table["error"].astype(bool)] if len(table) else table
    if output.type == "regression":
        values = pd.to_numeric(good["prediction"], errors="coerce").dropna() if len(good) else pd.Series([])
        if values.empty:
            return {"predicted": 0}
        return {
            "predicted": len(values),
            "min": float(values.min()),
            "mean": float(values.mean()),
            "max": float(values.max()),
        }
    counts = good["prediction"].astype(str).value_counts() if len(good) else pd.Series([], dtype=int)
    return {"predicted": len(good), "counts": {str(k): int(v) for k, v in counts.items()}}


def _finite(value: Any) -> Any:
    """value with every NaN or infinite float replaced by None (null in JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _new_id() -> str:
    """32 hex digits: the time in nanoseconds, then 64 random bits. Ids made one after another sort together, so
    the primary-key index grows at its end instead of being split at random places (cheaper inserts)."""
    return f"{time.time_ns():016x}{secrets.randbits(64):016x}"


def local_user() -> str:
    """Who runs the command line (the OS account), for the CLI's records."""
    try:
        return getpass.getuser()
    except Exception:
        return "anonymous"
