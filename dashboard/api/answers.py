"""What the three route families (/api/v1, TF Serving, MLflow) share on the way out: the error shape, an answer's
rows built from a prediction, the CSV answer, and the history record of an API call."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import pandas as pd
from fastapi import Request
from fastapi.responses import Response

from dashboard import service
from dashboard.api.errors import ApiError
from dashboard.api.reading import check_explain, explaining, models_of, who
from dashboard.common.logs import Tally, log
from dashboard.errors import DashboardError, InputError, MissingColumnsError, scrub
from dashboard.history import Source
from dashboard.prediction import images
from dashboard.prediction.results import results_csv
from dashboard.service import Served, understand
from dashboard.service.batching import Part
from dashboard.service.serving import Serving
from dashboard.store.versions import Catalog, ModelVersion

# every JSON door's predictions, one log line a minute (a line per request was 4-7% of a loaded server's CPU)
PREDICTIONS = Tally("API predictions")


def counted(request: Request, served: Served, rows: int, door: str = "api/v1") -> None:
    """Count a JSON prediction for the log's minute line: who, through which door, with which version."""
    PREDICTIONS.add(f"{who(request)} via {door} with version {served.label}", rows)


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


def record_rows(
    serving: Serving,
    served: Served,
    request: Request,
    rows: list,
    answers: list[dict[str, Any]],
    started: float,
    source: Source = "api",
) -> str | None:
    """Queue a JSON call in the history from its rows as sent and its answer rows (every JSON door alike: no table
    is built for it); its id, or None when off."""
    if serving.recorder is None:
        return None
    if served.schema.images:  # the file's name, size and digest (and a thumbnail when asked), never the pixels
        thumbnails = serving.settings.history_images == "thumbnails"
        rows = [{name: images.kept(value, thumbnails) for name, value in row.items()} for row in rows]
    return serving.recorder.record_answer(
        served,
        who(request),
        rows,
        answers,
        time.perf_counter() - started,
        keep_rows=serving.settings.history_rows,
        source=source,
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


def answer(served: Served, part: Part, fallback: str | None = None, explained: bool = False) -> dict[str, Any]:
    """The JSON answer for one request's rows, built from the batch's arrays (attributions, when explained, from
    the explained table)."""
    body: dict[str, Any] = {
        "model": served.version.model_name,
        "model_version": served.label,
        "sha256": served.version.digest if served.version.pinned else None,
        "predictions": answer_rows(served, part, explained),
        "warnings": [
            {"row": w.row, "feature": w.feature, "value": w.value, "bound": w.bound, "limit": w.limit}
            for w in part.warnings
        ],
    }
    if fallback:
        body["fallback"] = fallback
    return body


def answer_rows(served: Served, part: Part, explained: bool = False) -> list[dict[str, Any]]:
    """Each row's answer: its prediction with the named probabilities (or probability), or its error."""
    output = served.schema.output
    labels, kind = list(output.labels), output.type
    values = iter(part.values.tolist())
    names = served.schema.names
    attributions = None
    if explained and f"attribution_{names[0]}" in part.result.table.columns:  # none when no row could be predicted
        attributions = part.table[[f"attribution_{n}" for n in names]].to_numpy(dtype=float).tolist()
    rows = []
    for i, error in enumerate(part.errors.tolist()):
        if error:
            rows.append({"prediction": None, "error": error})
            continue
        value = next(values)
        if kind == "classification":
            best = max(range(len(value)), key=value.__getitem__)  # the first of equals, as numpy's argmax
            row: dict[str, Any] = {"prediction": labels[best], "error": None, "probabilities": dict(zip(labels, value))}
        elif kind == "binary":
            label = labels[1] if value[0] >= output.threshold else labels[0]
            row = {"prediction": label, "error": None, "probability": value[0]}
        else:
            row = {"prediction": value[0], "error": None}
        if attributions is not None:
            row["attributions"] = dict(zip(names, attributions[i], strict=True))
        rows.append(row)
    return rows


def raw_outputs(served: Served, part: Part) -> list[list[float | None]]:
    """Each row's model outputs as numbers (what TF Serving and MLflow clients expect); None for a row with an
    error (the compatible doors refuse those before answering)."""
    output = served.schema.output
    width = len(output.labels) if output.type == "classification" else 1
    values = iter(part.values.tolist())
    return [[None] * width if error else next(values) for error in part.errors.tolist()]


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


def models_listing(serving: Serving, request: Request) -> dict[str, Any]:
    """GET /api/v1/models: the catalog as the caller sees it, each model with its default version (or why its versions
    cannot be read: that model's problem only)."""
    catalog, caller = models_of(serving, request), who(request)
    entries = []
    for entry in catalog.entries:
        item: dict[str, Any] = {
            "name": entry.name,
            "description": entry.description,
            "default": entry.name == catalog.default,
        }
        try:
            versions = serving.catalog(entry.name, caller)
        except DashboardError as exc:
            item.update(default_version=None, versions=None, error=exc.message)
        else:
            item.update(default_version=versions.default.label, versions=len(versions.versions), error=None)
        entries.append(item)
    # a refused entry may name a model kept from this caller: the problems go to those who see every model
    everyone = len(catalog.entries) == len(serving.models().entries)
    return {"default": catalog.default, "models": entries, "problems": list(catalog.problems) if everyone else []}
