"""Wrong-answer reports: stored against the prediction row they correct, listed, summed up per version, and
exported as training rows."""

from __future__ import annotations

import base64
import io
import re
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from dashboard.common.csv_export import safe_csv
from dashboard.common.logs import log
from dashboard.errors import InputError
from dashboard.history.queries import PAGE_ROWS, Filters, Listing, Read, prediction_clauses, public, where_clauses
from dashboard.history.tables import feedback, predictions

MAX_REPORTS = 100  # wrong-answer reports on one prediction


def is_id(text: str | None) -> bool:
    """True for a prediction id's shape (32 hex digits): anything else is not looked up."""
    return re.fullmatch(r"[0-9a-f]{32}", text or "") is not None


class UnknownPredictionError(InputError):
    """Feedback names a prediction the history does not hold (or, with HISTORY_SCOPE=own, someone else's)."""


def add(
    read: Read,
    insert: Callable[[dict[str, Any]], int],
    found: dict[str, Any] | None,
    prediction_id: str,
    who: str,
    label: str | None = None,
    value: float | None = None,
    comment: str | None = None,
    row: int = 0,
    scope_user: str | None = None,
) -> dict[str, Any]:
    """Store a "wrong answer" report for one row of the prediction `found` (None: not in the history); InputError
    when it does not fit it. insert writes the report and returns its id."""
    if found is None or (scope_user is not None and found["user"] != scope_user):
        raise UnknownPredictionError(
            f"no prediction {prediction_id!r} in the history; use the prediction_id of a prediction answer"
        )
    if not 0 <= row < found["rows"]:
        raise InputError(f"row {row} is not in prediction {prediction_id} (it has {found['rows']} row(s))")
    count = sa.select(sa.func.count()).select_from(feedback).where(feedback.c.prediction_id == prediction_id)
    if read(count)[0]["count_1"] >= MAX_REPORTS:
        raise InputError(
            f"prediction {prediction_id} already has {MAX_REPORTS} reports, the most one prediction keeps; "
            "report a wrong answer on another prediction"
        )
    labels = found["labels"] or []
    if found["output_type"] == "regression":
        if value is None or label is not None:
            raise InputError("this version predicts a value: send the right one as value (a number)")
        if not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
            raise InputError(f"value {value!r} is not a finite number")
    else:
        if label is None or value is not None:
            raise InputError(f"send the right answer as label, one of: {', '.join(labels)}")
        if label not in labels:
            raise InputError(f"label {label!r} is not one of this version's labels: {', '.join(labels)}")
    entry = {
        "prediction_id": prediction_id,
        "row": row,
        "created_at": datetime.now(UTC),
        "user": (who or "anonymous")[:320],
        "label": label,
        "value": float(value) if value is not None else None,
        "comment": (comment or "").replace("\x00", "").strip()[:2000] or None,
        "answer": _answer(found, row),
    }
    entry["id"] = insert(entry)
    log.info("feedback %s by %s on prediction %s (version %s)", entry["id"], who, prediction_id, found["version"])
    return public(entry)


def _answer(found: dict[str, Any], row: int) -> str | None:
    """The answer the report corrects, as text, when the prediction kept its rows (else None)."""
    answered = _row_of(found.get("outputs"), row)
    value = answered.get("prediction") if isinstance(answered, dict) else None
    return None if value is None else str(value)[:255]


def listing(read: Read, filters: Filters, limit: int = PAGE_ROWS, offset: int = 0) -> Listing:
    """One page of reports, newest first, each with the version, inputs and answer it corrects."""
    query = _feedback_query(filters)
    items = read(query.limit(limit).offset(offset))
    count = sa.select(sa.func.count()).select_from(query.subquery())
    total = read(count)[0]["count_1"]
    return Listing([_feedback_item(item) for item in items], total, limit, offset)


def agreement(read: Read, filters: Filters) -> pd.DataFrame:
    """Per version: predictions recorded, rows, rows flagged as wrong, and the share of rows flagged."""
    where = where_clauses(predictions, filters, with_source=True)
    made = read(
        sa.select(
            predictions.c.version,
            sa.func.count().label("predictions"),
            sa.func.sum(predictions.c.rows).label("rows"),
        )
        .where(*where)
        .group_by(predictions.c.version)
    )
    flagged = read(
        sa.select(predictions.c.version, sa.func.count().label("flagged"))
        .select_from(feedback.join(predictions))
        .where(*where)
        .group_by(predictions.c.version)
    )
    table = pd.DataFrame(made, columns=["version", "predictions", "rows"])
    counts = {row["version"]: row["flagged"] for row in flagged}
    table["flagged"] = [int(counts.get(v, 0)) for v in table["version"]]
    table["rows"] = table["rows"].fillna(0).astype(int)
    table["flagged_share"] = (table["flagged"] / table["rows"].where(table["rows"] > 0)).fillna(0.0).round(4)
    return table.sort_values("version", ascending=False, ignore_index=True)


def training_rows(read: Read, filters: Filters) -> pd.DataFrame:
    """The reports as training data: the corrected row's feature columns, then label (the right answer); an image
    as its file's name (training_zip has the images)."""
    table = _training_records(read, filters)
    for column in table.columns:
        table[column] = [_image_name(v) if isinstance(v, dict) and "sha256" in v else v for v in table[column]]
    return table


def _image_name(kept: dict[str, Any]) -> str:
    return str(kept.get("file") or f"sha256 {kept['sha256']}")


def _training_records(read: Read, filters: Filters) -> pd.DataFrame:
    rows, columns = [], []
    for item in read(_feedback_query(filters)):
        inputs = _row_of(item["inputs"], item["row"])
        if inputs is None:
            continue
        for name in item["features"] or []:
            if name not in columns:
                columns.append(name)
        rows.append({**inputs, "label": item["label"] if item["label"] is not None else item["value"]})
    return pd.DataFrame(rows, columns=[*columns, "label"])


def training_zip(read: Read, filters: Filters) -> bytes:
    """The reports of an image model as training data: each corrected image (its kept thumbnail) in a folder named
    by the right answer, plus labels.csv (path in the zip, the other inputs, label): ready for
    keras.utils.image_dataset_from_directory. Reports whose image was kept without a thumbnail are listed in
    labels.csv by file name and sha256 only."""
    table = _training_records(read, filters)
    listed = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, row in enumerate(table.to_dict(orient="records")):
            folder = re.sub(r"[^\w.-]+", "_", str(row["label"])).strip("._") or "unlabelled"
            entry = {}
            for name, value in row.items():
                if isinstance(value, dict) and "sha256" in value:
                    stem = re.sub(r"[^\w.-]+", "_", str(value.get("file") or "").rsplit("/", 1)[-1]).strip("._")
                    path = f"{folder}/{index:05d}-{(stem.rsplit('.', 1)[0] or value['sha256'][:12])}.png"
                    thumbnail = str(value.get("thumbnail") or "")
                    if thumbnail.startswith("data:image/png;base64,"):
                        archive.writestr(path, base64.b64decode(thumbnail.split(",", 1)[1]))
                        entry[name] = path
                    else:
                        entry[name] = f"(not kept) {value.get('file') or ''} sha256 {value['sha256']}"
                else:
                    entry[name] = value
            listed.append(entry)
        archive.writestr("labels.csv", safe_csv(pd.DataFrame(listed, columns=list(table.columns))))
    return buffer.getvalue()


def _feedback_query(filters: Filters) -> Any:
    where = where_clauses(feedback, filters, with_source=False) + prediction_clauses(filters)
    return (
        sa.select(
            feedback,
            predictions.c.model,
            predictions.c.version,
            predictions.c.source,
            predictions.c.features,
            predictions.c.inputs,
            predictions.c.outputs,
            predictions.c.output_type,
        )
        .select_from(feedback.join(predictions))
        .where(*where)
        .order_by(feedback.c.created_at.desc(), feedback.c.id.desc())
    )


def _row_of(rows: Any, index: int) -> dict[str, Any] | None:
    return rows[index] if isinstance(rows, list) and 0 <= index < len(rows) else None


def _feedback_item(item: dict[str, Any]) -> dict[str, Any]:
    return public(
        {
            "id": item["id"],
            "prediction_id": item["prediction_id"],
            "row": item["row"],
            "created_at": item["created_at"],
            "user": item["user"],
            "model": item["model"],
            "version": item["version"],
            "source": item["source"],
            "label": item["label"],
            "value": item["value"],
            "comment": item["comment"],
            "inputs": _row_of(item["inputs"], item["row"]),
            "predicted": _row_of(item["outputs"], item["row"]),
        }
    )
