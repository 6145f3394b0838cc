"""Drop-in doors for clients written for other servers: TF Serving's REST API and MLflow's scoring server.

They answer as those servers do ({"predictions": ...} / {"outputs": ...}: each row's model outputs as numbers,
or {"error": "..."} for the whole request), through the same catalog, pool, validation and micro-batcher.
"""

from __future__ import annotations

import time

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from dashboard.api.answers import answer_rows, counted, predict_csv, raw_outputs, record_rows
from dashboard.api.errors import ApiError
from dashboard.api.reading import catalog_of, json_rows, media_type, models_of, read_body, version_for
from dashboard.common.logs import report
from dashboard.service.serving import Serving
from dashboard.store.catalog import NAME


def compat_routes(serving: Serving) -> list[Route]:
    """TF Serving (/v1/models/...) and MLflow (/invocations, /ping) routes."""

    async def tf_predict(request: Request) -> Response:
        return await _guard(_tf_predict(serving, request), tf_style=True)

    async def tf_status(request: Request) -> Response:
        return await _guard(_tf_status(serving, request), tf_style=True)

    async def invocations(request: Request) -> Response:
        return await _guard(_invocations(serving, request), tf_style=False)

    async def ping(request: Request) -> Response:
        return PlainTextResponse("\n")

    return [
        Route("/v1/models/{name}/versions/{version}:predict", tf_predict, methods=["POST"]),
        Route("/v1/models/{name}/labels/{label}:predict", tf_predict, methods=["POST"]),
        Route("/v1/models/{name}:predict", tf_predict, methods=["POST"]),
        Route("/v1/models/{name}/versions/{version}", tf_status, methods=["GET"]),
        Route("/v1/models/{name}", tf_status, methods=["GET"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
    ]


async def _guard(work, tf_style: bool) -> Response:
    """Errors as the emulated server words them: TF Serving {"error": "..."}; MLflow {"error_code", "message"}."""
    try:
        return await work
    except ApiError as exc:
        body = {"error": exc.message} if tf_style else {"error_code": exc.code.upper(), "message": exc.message}
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)
    except Exception as exc:
        report(exc, "unexpected error in a compatible endpoint")
        message = "unexpected error; the details are in the server log"
        body = {"error": message} if tf_style else {"error_code": "INTERNAL_ERROR", "message": message}
        return JSONResponse(body, status_code=500)


def _model_name(serving: Serving, request: Request) -> str | None:
    """The model named in the path (None: the default model, also called "default"), if the caller may use it."""
    name = request.path_params["name"]
    catalog = models_of(serving, request)
    if name == "default":
        return None
    if name not in catalog.names:
        shown = name if NAME.match(name) else "that name"
        raise ApiError(
            404,
            "not_found",
            f"Servable not found for request: Latest({shown}); models here: {', '.join(catalog.names) or 'none'}",
        )
    return name


def _spec(request: Request) -> str | None:
    return request.path_params.get("version") or request.path_params.get("label")


async def _tf_predict(serving: Serving, request: Request) -> Response:
    started = time.perf_counter()
    model = _model_name(serving, request)
    if media_type(request) != "application/json":  # a form or text/plain POST from any web page: refused
        raise ApiError(
            415, "unsupported_media_type", "TF Serving's API takes JSON: send Content-Type: application/json"
        )
    served, _ = await version_for(serving, _spec(request), request, model)
    data, rows = await json_rows(await read_body(request, serving), served, serving)
    columnar = isinstance(data, dict) and isinstance(data.get("inputs"), dict)
    part = await serving.batcher.predict(served, rows)
    _refuse_bad_rows(part)
    outputs = raw_outputs(served, part)
    answers = answer_rows(served, part) if serving.recorder is not None else []  # only what the history keeps
    recorded = record_rows(serving, served, request, rows, answers, started)
    counted(request, served, len(rows), "TF Serving")
    return JSONResponse(
        {"outputs": outputs} if columnar else {"predictions": outputs}, headers=_headers(served, recorded)
    )


def _headers(served, prediction_id: str | None) -> dict[str, str]:
    """The answer's headers: the version, and the history id (the body keeps the emulated server's shape)."""
    headers = {"X-Model-Version": served.label, "X-Model-Name": served.version.model_name}
    if prediction_id:
        headers["X-Prediction-Id"] = prediction_id
    return headers


async def _tf_status(serving: Serving, request: Request) -> Response:
    catalog = catalog_of(serving, request, _model_name(serving, request))
    spec = _spec(request)
    versions = [catalog.get(spec)] if spec else list(catalog.versions)
    status = []
    for version in versions:
        state, _, why = serving.state(version) if version is catalog.default or spec else ("", None, None)
        loaded = serving.pool.peek(serving.settings, version) is not None
        status.append(
            {
                "version": version.label,
                "state": "AVAILABLE"
                if loaded
                else "LOADING"
                if state == "loading"
                else "END"
                if state == "failed"
                else "START",
                "status": {"error_code": "OK" if state != "failed" else "UNAVAILABLE", "error_message": why or ""},
            }
        )
    return JSONResponse({"model_version_status": status})


async def _invocations(serving: Serving, request: Request) -> Response:
    started = time.perf_counter()
    served, _ = await version_for(serving, request.query_params.get("version"), request)
    body = await read_body(request, serving)
    if media_type(request) == "text/csv":
        return await predict_csv(serving, served, body, request=request, started=started)
    _, rows = await json_rows(body, served, serving)
    part = await serving.batcher.predict(served, rows)
    _refuse_bad_rows(part)
    answers = answer_rows(served, part) if serving.recorder is not None else []  # only what the history keeps
    recorded = record_rows(serving, served, request, rows, answers, started)
    counted(request, served, len(rows), "MLflow")
    return JSONResponse({"predictions": raw_outputs(served, part)}, headers=_headers(served, recorded))


def _refuse_bad_rows(part) -> None:
    """These clients expect numbers for every row: a bad row fails the request, naming the row and why."""
    errors = part.errors
    bad = np.flatnonzero(~part.good).tolist()
    if bad:
        first = bad[0]
        raise ApiError(
            400, "bad_request", f"{len(bad)} of {len(errors)} rows cannot be predicted; row {first}: {errors[first]}"
        )
