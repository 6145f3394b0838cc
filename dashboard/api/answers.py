"""What the three route families (/api/v1, TF Serving, MLflow) share on the way out: the error shape, an answer's
rows built from a prediction, the CSV answer, and the history record of an API call."""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from typing import Any

import numpy as np
import pandas as pd
from fastapi import Request
from fastapi.responses import Response

from dashboard import service
from dashboard.api.errors import ApiError
from dashboard.api.reading import check_explain, explaining, who
from dashboard.common.logs import log
from dashboard.errors import InputError, MissingColumnsError, scrub
from dashboard.prediction.results import results_csv
from dashboard.prediction.schema import Output
from dashboard.prediction.scoring import output_columns
from dashboard.service import Served, understand
from dashboard.service.batching import Part
from dashboard.service.serving import Serving
from dashboard.store.versions import Catalog, ModelVersion


def record(
    serving: Serving,
    served: Served,
    request: Request,
    table: pd.DataFrame,
    started: float,
    body: bytes | None = None,
) -> str | None:
    """Queue the request's prediction in the history (never waits for the database); its id, or None when off."""
    if serving.recorder is None:
        return None
    return serving.recorder.record(
        served,
        "api",
        who(request),
        table,
        time.perf_counter() - started,
        keep_rows=serving.settings.history_rows,
        file_sha256=hashlib.sha256(body).hexdigest() if body is not None else None,
    )


async def predict_csv(
    serving: Serving,
    served: Served,
    body: bytes,
    explain: bool = False,
    request: Request | None = None,
    started: float | None = None,
) -> Response:
    """A CSV as the Batch tab takes it; the answer is the results CSV (with attribution columns when asked), and
    the drift against the training data in the X-Drift header."""
    settings = serving.settings
    try:
        table = await asyncio.to_thread(service.read_csv, settings, body)
        if table.rows > settings.api_max_rows:
            raise ApiError(
                413,
                "too_many_rows",
                f"{table.rows:,} rows, over the {settings.api_max_rows:,} limit (API_MAX_ROWS); split the file",
            )
        if explain:
            check_explain(serving, served, table.rows)
            result = (await explaining(understand.explain_table, served, table)).result
        else:
            result = await asyncio.to_thread(service.predict_table, served, table)
        data = await asyncio.to_thread(results_csv, result.table, table)
        found = await asyncio.to_thread(understand.drift, served, table, result)
    except InputError as exc:
        raise ApiError(422 if isinstance(exc, MissingColumnsError) else 400, "bad_input", exc.message) from exc
    log.info("API predicted %d of %d CSV rows with version %s", result.predicted, result.rows, served.label)
    drift = (
        scrub(found)[:300]
        if isinstance(found, str)
        else "; ".join(
            f"{d.feature}={d.verdict} psi={d.psi:.3f} moderate_at={d.moderate_at:.3f} major_at={d.major_at:.3f} "
            f"outside={d.outside:.3f}"
            for d in found
        )
    )
    headers = {
        "X-Model-Version": served.label,
        "X-Rows-With-Errors": str(result.failed),
        "X-Drift": drift.encode("ascii", "replace").decode(),
    }
    if request is not None:
        prediction_id = record(serving, served, request, result.table, started or time.perf_counter(), body)
        if prediction_id:
            headers["X-Prediction-Id"] = prediction_id
    return Response(data, media_type="text/csv", headers=headers)


def answer(served: Served, part: Part, fallback: str | None = None) -> dict[str, Any]:
    """The JSON answer for one request's rows."""
    table, output = part.table, served.schema.output
    predictions = table["prediction"].to_numpy(dtype=object)
    errors = table["error"].to_numpy(dtype=object)
    probabilities = _outputs(table, output)
    names = served.schema.names
    attributions = (
        table[[f"attribution_{n}" for n in names]].to_numpy(dtype=float).tolist()
        if f"attribution_{names[0]}" in table.columns
        else None
    )
    rows = []
    for i, error in enumerate(errors):
        if error:
            row: dict[str, Any] = {"prediction": None, "error": error}
        else:
            value = predictions[i]
            row = {"prediction": float(value) if output.type == "regression" else value, "error": None}
            if output.type == "classification":
                row["probabilities"] = dict(zip(output.labels, probabilities[i].tolist(), strict=True))
            elif output.type == "binary":
                row["probability"] = float(probabilities[i][0])
            if attributions is not None:
                row["attributions"] = dict(zip(names, attributions[i], strict=True))
        rows.append(row)
    body: dict[str, Any] = {
        "model_version": served.label,
        "sha256": served.version.digest if served.version.pinned else None,
        "predictions": rows,
        "warnings": [
            {"row": w.row, "feature": w.feature, "value": w.value, "bound": w.bound, "limit": w.limit}
            for w in part.warnings
        ],
    }
    if fallback:
        body["fallback"] = fallback
    return body


def raw_outputs(served: Served, part: Part) -> list[list[float] | float]:
    """Each row's model outputs as numbers (what TF Serving and MLflow clients expect), for rows without errors."""
    values = _outputs(part.table, served.schema.output)
    return [[v if math.isfinite(v) else None for v in row] for row in values.tolist()]


def _outputs(table: pd.DataFrame, output: Output) -> np.ndarray:
    """The model's outputs per row (rows x values): the probability columns, or the predicted value."""
    columns = output_columns(output)[1:-2] or ["prediction"]  # between prediction and model_version, error
    return table[columns].to_numpy(dtype=float)


def version_info(version: ModelVersion, catalog: Catalog, tags: list[str]) -> dict[str, Any]:
    return {
        "version": version.label,
        "sha256": version.digest if version.pinned else None,
        "pinned": version.pinned,
        "notes": version.notes,
        "created": version.created,
        "aliases": [t for t in tags if t not in ("default", "pre-release")],
        "prerelease": version.version.is_prerelease,
        "default": version is catalog.default,
    }
