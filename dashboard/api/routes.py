"""The HTTP prediction API under /api/v1 (FastAPI, mounted in the dashboard's own st.App): programs predict the way
people do, through the same catalog, model pool, validation and prediction.

Thin like the UI: it parses a request, calls the core, and words the answer. Errors are
{"error": {"code": ..., "message": ...}} with the dashboard's own words; never a traceback, never a secret.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import importlib.util
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from dashboard import service

from dashboard.common import jsontext

from dashboard.service import understand
from dashboard.api.documents import ERRORS, PREDICT_BODY, ErrorAnswer, ModelInfo, PredictAnswer, Versions
from dashboard.service.batching import Part
from dashboard.prediction.reading.csv_files import CsvTable, results_csv
from dashboard.errors import DashboardError, InputError, MissingColumnsError, scrub
from dashboard.prediction.reading.json_rows import TooManyRows, frame_of, rows_from_json
from dashboard.common.logs import log, report
from dashboard.prediction.scoring import output_columns
from dashboard.prediction.schema import Output
from dashboard.service.serving import Server
from dashboard.service import Served
from dashboard.store.versions import Catalog, ModelVersion

RETRY_AFTER = "5"

DOCS_ASSETS = Path(importlib.util.find_spec("fastapi_offline").origin).parent / "static"


class ApiError(Exception):
    """An answer other than 200: HTTP status, a stable code, and the message a person reads."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def create_api(server: Server) -> FastAPI:
    """The /api/v1 application for this process's Server."""
    api = FastAPI(
        title="Keras prediction dashboard API",
        version="1",
        description="Predict with the dashboard's models from programs. Errors are "
        '{"error": {"code": ..., "message": ...}}.',
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        # documents the bearer scheme (for /docs' Authorize button); httpauth.BearerGate enforces it
        dependencies=[
            Depends(
                HTTPBearer(
                    auto_error=False,
                    description="an API token (python -m dashboard token "
                    "create NAME); needed when sign-in or API_TOKENS is configured",
                )
            )
        ],
    )
    api.state.server = server

    @api.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @api.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return error_response(ApiError(400, "bad_request", f"{where}: {first.get('msg', 'invalid')}"))

    @api.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else "method_not_allowed" if exc.status_code == 405 else "error"
        message = (
            f"no API route {request.method} {request.url.path}; see /api/v1/docs"
            if exc.status_code in (404, 405)
            else str(exc.detail)
        )
        return error_response(ApiError(exc.status_code, code, message))

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        report(exc, f"unexpected error answering {request.method} {request.url.path}")
        return error_response(ApiError(500, "internal", "unexpected error; the details are in the server log"))

    @api.get(
        "/health",
        summary="Liveness: the process answers",
        responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
    )
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.get(
        "/ready",
        summary="Readiness: the default version is loaded (503 with Retry-After before)",
        responses={503: {"model": ErrorAnswer}},
    )
    async def ready() -> JSONResponse:
        version = _catalog(server).default
        state, _, why = server.state(version)
        if state == "ready":
            return JSONResponse({"status": "ready", "version": version.label})
        if state == "failed":
            raise ApiError(
                503, "unavailable", f"version {version.label} could not be loaded: {why}", {"Retry-After": "30"}
            )
        raise ApiError(503, "loading", f"version {version.label} is loading", {"Retry-After": RETRY_AFTER})

    @api.get("/versions", summary="Every version, newest first, with the default", response_model=Versions)
    async def versions() -> JSONResponse:
        catalog = _catalog(server)
        tags = catalog.tags
        return JSONResponse(
            {
                "name": catalog.name,
                "default": catalog.default.label,
                "warning": catalog.warning,
                "versions": [_version_info(v, catalog, tags[v.label]) for v in catalog.versions],
            }
        )

    @api.get(
        "/models/{version}", summary="What a client needs to call a version", response_model=ModelInfo, responses=ERRORS
    )
    async def model(version: str) -> JSONResponse:
        chosen = _choose(_catalog(server), version)
        state, served, why = server.state(chosen)
        if served is None:
            code = 503
            raise ApiError(
                code,
                "loading" if state == "loading" else "unavailable",
                f"version {chosen.label} is loading"
                if state == "loading"
                else f"version {chosen.label} could not be loaded: {why}",
                {"Retry-After": RETRY_AFTER},
            )
        schema = served.schema.to_dict()
        return JSONResponse(
            {
                "version": chosen.label,
                "sha256": chosen.digest if chosen.pinned else None,
                "features": schema["features"],
                "output": schema["output"],
                "runtime": served.runtime,
                "loaded": True,
                "state": state,
            }
        )

    @api.post(
        "/predict",
        summary="Predict rows (JSON or CSV)",
        response_model=PredictAnswer,
        responses={**ERRORS, 200: {"content": {"text/csv": {}}}},
        openapi_extra=PREDICT_BODY,
    )
    async def predict(request: Request, version: str | None = None, explain: bool = False) -> Response:
        started = time.perf_counter()
        served, fallback = await serving(server, version)
        body = await read_body(request, server)
        kind = media_type(request)
        if kind == "text/csv":
            return await predict_csv(server, served, body, explain, request, started)
        _, rows = await json_rows(body, served, server)
        if explain:  # not batched with others: each request's rows explained against the reference input
            check_explain(server, served, len(rows))
            frame = frame_of(rows, served.schema.names)
            explained = await explaining(understand.explain_table, served, CsvTable(frame))
            part = Part(explained.result, 0, len(rows))
        else:
            part = await server.batcher.predict(served, rows)
        log.info("API prediction by %s: %d rows with version %s", who(request), len(rows), served.label)
        headers = {"X-Model-Version": served.label}
        if fallback:
            headers["X-Model-Fallback"] = fallback
        found = (
            answer(served, part, fallback)
            if len(rows) <= SMALL
            else await asyncio.to_thread(answer, served, part, fallback)
        )
        if server.recorder is not None:
            found["prediction_id"] = headers["X-Prediction-Id"] = server.recorder.record_answer(
                served,
                who(request),
                rows,
                found["predictions"],
                time.perf_counter() - started,
                keep_rows=server.settings.history_rows,
            )
        return JSONResponse(found, headers=headers)

    from dashboard.api.history_routes import add_history_routes  # it builds on this module's helpers

    add_history_routes(api, server)

    # Swagger UI's script and style from the fastapi-offline package: the docs page works without the internet
    # (no CDN, so nothing to pin with an integrity hash either)
    api.mount("/static", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @api.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + "/openapi.json",
            title="Keras prediction dashboard API",
            swagger_js_url=f"{root}/static/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/static/swagger-ui.css",
            swagger_favicon_url=f"{root}/static/favicon.png",
        )

    return api


def record(
    server: Server,
    served: Served,
    request: Request,
    table: pd.DataFrame,
    started: float,
    body: bytes | None = None,
) -> str | None:
    """Queue the request's prediction in the history (never waits for the database); its id, or None when off."""
    if server.recorder is None:
        return None
    return server.recorder.record(
        served,
        "api",
        who(request),
        table,
        time.perf_counter() - started,
        keep_rows=server.settings.history_rows,
        file_sha256=hashlib.sha256(body).hexdigest() if body is not None else None,
    )


def who(request: Request) -> str:
    """Who made the request: the token's name (set by httpauth.BearerGate), or anonymous on an open dashboard."""
    return request.scope.get("state", {}).get("who", "anonymous")


def error_response(exc: ApiError) -> JSONResponse:
    """{"error": {"code", "message"}} with the status and headers of exc."""
    return JSONResponse(
        {"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status, headers=exc.headers
    )


def _catalog(server: Server) -> Catalog:
    try:
        return server.catalog()
    except DashboardError as exc:
        report(exc, "the API could not read the versions")
        raise ApiError(
            503, "unavailable", f"no model versions could be read: {exc.message}", {"Retry-After": "30"}
        ) from exc


def _choose(catalog: Catalog, spec: str) -> ModelVersion:
    """An explicitly asked version (exact, alias, PEP 440 specifier, latest): never a silent substitute."""
    chosen, warning = catalog.choose(spec, asked_by="?version= in the request")
    if warning:
        raise ApiError(404, "unknown_version", f"{warning.split(';')[0]}; available: {', '.join(catalog.labels)}")
    return chosen


async def serving(server: Server, spec: str | None) -> tuple[Served, str | None]:
    """The loaded version asked for (or the default), and a note when the default fell back to another version.

    An explicit version that is loading or failed is a 503 with Retry-After; the default may fall back to the
    newest loaded version, and the answer then says so."""
    catalog = _catalog(server)
    version = _choose(catalog, spec) if spec else catalog.default
    state, served, why = server.state(version)
    if served is not None:
        return served, None
    if not spec:
        for label in reversed(server.pool.loaded()):
            other = catalog.get(label)
            fallback = server.pool.peek(server.settings, other)
            if fallback is not None:
                return fallback, f"default version {version.label} is {state}; answered by {other.label}"
    if state == "loading":
        raise ApiError(
            503, "loading", f"version {version.label} is loading; try again shortly", {"Retry-After": RETRY_AFTER}
        )
    raise ApiError(503, "unavailable", f"version {version.label} could not be loaded: {why}", {"Retry-After": "30"})


async def read_body(request: Request, server: Server) -> bytes:
    """The request body, refused past API_MAX_BYTES before it is all read."""
    limit = server.settings.api_max_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(
            413, "too_large", f"the body is {int(declared):,} bytes, over the {limit:,} limit (API_MAX_BYTES)"
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "too_large", f"the body is over the {limit:,} bytes limit (API_MAX_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    """application/json or text/csv; anything else is a 415."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind in ("application/json", "text/csv"):
        return kind
    raise ApiError(
        415, "unsupported_media_type", f"Content-Type {kind!r} is not supported; send application/json or text/csv"
    )


SMALL = 1_000  # rows (or ~64 KiB of JSON) handled on the event loop; more go to a worker thread
_EXPLAINER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="explain")


async def json_rows(body: bytes, served: Served, server: Server) -> tuple[Any, list]:
    """(the parsed body, its rows): over API_MAX_JSON_BYTES refused before parsing, a large body parsed in a worker
    thread so no other request (nor the page) waits for it, rows counted before they are built."""
    limit = server.settings.api_max_json_bytes
    if len(body) > limit:
        raise ApiError(
            413,
            "too_large",
            f"the JSON body is {len(body):,} bytes, over the {limit:,} limit for JSON (API_MAX_JSON_BYTES); send "
            "the rows as text/csv (up to API_MAX_BYTES) or in several requests",
        )

    def parse() -> tuple[Any, list]:
        data = parse_json(body)
        return data, rows_for(data, served, server)

    return parse() if len(body) <= 65_536 else await asyncio.to_thread(parse)


def check_explain(server: Server, served: Served, rows: int) -> None:
    """Refuse an explanation larger than API_EXPLAIN_MAX_CELLS (rows x inputs) before any work."""
    cells, limit = rows * len(served.schema.features), server.settings.api_explain_max_cells
    if cells > limit:
        raise ApiError(
            413,
            "too_much_to_explain",
            f"explaining {rows:,} rows x {len(served.schema.features)} inputs is over the {limit:,} limit "
            "(API_EXPLAIN_MAX_CELLS); explain fewer rows per request, or leave explain off to predict them all",
        )


async def explaining(function, *args):
    """Explanations run one at a time on their own thread: a burst of them queues there, and plain predictions
    (the default thread pool, the micro-batcher) never wait behind it."""
    return await asyncio.get_running_loop().run_in_executor(_EXPLAINER, function, *args)


def parse_json(body: bytes) -> Any:
    try:
        return jsontext.loads(body, "the body", InputError, 'send JSON such as {"instances": [{...}]}')
    except InputError as exc:
        raise ApiError(400, "bad_request", exc.message) from exc


def rows_for(data: Any, served: Served, server: Server) -> list:
    try:
        _, rows = rows_from_json(data, served.schema.names, server.settings.api_max_rows)
    except TooManyRows as exc:
        raise ApiError(413, "too_many_rows", exc.message) from exc
    except InputError as exc:
        raise ApiError(400, "bad_request", exc.message) from exc
    return rows


async def predict_csv(
    server: Server,
    served: Served,
    body: bytes,
    explain: bool = False,
    request: Request | None = None,
    started: float | None = None,
) -> Response:
    """A CSV as the Batch tab takes it; the answer is the results CSV (with attribution columns when asked), and
    the drift against the training data in the X-Drift header."""
    settings = server.settings
    try:
        table = await asyncio.to_thread(service.read_csv, settings, body)
        if table.rows > settings.api_max_rows:
            raise ApiError(
                413,
                "too_many_rows",
                f"{table.rows:,} rows, over the {settings.api_max_rows:,} limit (API_MAX_ROWS); split the file",
            )
        if explain:
            check_explain(server, served, table.rows)
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
        prediction_id = record(server, served, request, result.table, started or time.perf_counter(), body)
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


def _version_info(version: ModelVersion, catalog: Catalog, tags: list[str]) -> dict[str, Any]:
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
