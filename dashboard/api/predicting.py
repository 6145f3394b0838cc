"""POST /api/v1/predict: JSON rows through the micro-batcher (or explained), or a CSV file.

The route is documented by the FastAPI application (routes.py: its OpenAPI entry, its validation errors' shape), but
requests are answered by a plain Starlette route placed before it (`fast_routes`), as the TF Serving and MLflow doors
are: FastAPI's dependency and validation machinery cost ~0.4 ms of a ~2 ms single-row answer, for two query
parameters. The answers and error bodies are the same either way.
"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dashboard.api import uploads
from dashboard.api.answers import answer, counted, predict_csv, record_rows
from dashboard.api.errors import ApiError, error_response
from dashboard.api.reading import SMALL, check_explain, explaining, json_rows, media_type, read_body, version_for
from dashboard.common.logs import report
from dashboard.prediction.reading.json_rows import frame_of
from dashboard.prediction.reading.table import InputTable
from dashboard.service import understand
from dashboard.service.batching import Part
from dashboard.service.serving import Serving

# pydantic's words for a boolean query parameter (what FastAPI accepts for explain=)
_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no"}


def fast_routes(serving: Serving) -> list[Route]:
    """The prediction route as a plain Starlette route, to be placed before the /api/v1 mount."""

    async def endpoint(request: Request) -> Response:
        try:
            return await predict(serving, request, request.query_params.get("version"), _explain(request))
        except ApiError as exc:
            return error_response(exc)
        except Exception as exc:
            report(exc, f"unexpected error answering {request.method} {request.url.path}")
            return error_response(ApiError(500, "internal", "unexpected error; the details are in the server log"))

    return [Route("/api/v1/predict", endpoint, methods=["POST"])]


def _explain(request: Request) -> bool:
    """The explain= query parameter as FastAPI reads a bool (absent: false)."""
    raw = request.query_params.get("explain")
    if raw is None:
        return False
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ApiError(400, "bad_request", "query.explain: Input should be a valid boolean, unable to interpret input")


async def predict(serving: Serving, request: Request, version: str | None, explain: bool) -> Response:
    """Answer one prediction request (JSON or CSV), recorded in the history."""
    started = time.perf_counter()
    served, fallback = await version_for(serving, version, request)
    body = await read_body(request, serving)
    kind = media_type(request, images=bool(served.schema.images))
    if kind == "text/csv":
        return await predict_csv(serving, served, body, explain, request, started)
    if kind == "application/json":
        _, rows = await json_rows(body, served, serving)
    else:
        rows = (
            uploads.form_rows(body, request.headers["content-type"], served, serving.settings.api_max_rows)
            if kind == "multipart/form-data"
            else uploads.raw_image_rows(body, served)
        )
        uploads.check_pixels(rows, served, serving.settings.api_max_bytes)
    if explain:  # not batched with others: each request's rows explained against the reference input
        check_explain(serving, served, len(rows))
        frame = frame_of(rows, served.schema.names)
        explained = await explaining(understand.explain_table, served, InputTable(frame))
        part = Part(explained.result, 0, len(rows))
    else:
        part = await serving.batcher.predict(served, rows)
    counted(request, served, len(rows))
    headers = {"X-Model-Version": served.label, "X-Model-Name": served.version.model_name}
    if fallback:
        headers["X-Model-Fallback"] = fallback
    found = (
        answer(served, part, fallback, explain)
        if len(rows) <= SMALL
        else await asyncio.to_thread(answer, served, part, fallback, explain)
    )
    recorded = record_rows(serving, served, request, rows, found["predictions"], started)
    if recorded is not None:
        found["prediction_id"] = headers["X-Prediction-Id"] = recorded
    return JSONResponse(found, headers=headers)
