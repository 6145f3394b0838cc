"""The HTTP prediction API under /api/v1 (FastAPI, mounted in the dashboard's own st.App): programs predict the way
people do, through the same catalog, model pool, validation and prediction.

Thin like the UI: it parses a request, calls the core, and words the answer. Errors are
{"error": {"code": ..., "message": ...}} with the dashboard's own words; never a traceback, never a secret.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from dashboard.api import predicting
from dashboard.api.answers import models_listing, version_info
from dashboard.api.documents import ERRORS, PREDICT_BODY, ErrorAnswer, ModelInfo, Models, PredictAnswer, Versions
from dashboard.api.errors import RETRY_AFTER, ApiError, error_response
from dashboard.api.history_routes import add_history_routes, add_monitor_route
from dashboard.api.reading import (
    catalog_of,
    choose,
)
from dashboard.common.logs import report
from dashboard.service.serving import Serving

DOCS_ASSETS = Path(importlib.util.find_spec("fastapi_offline").origin).parent / "static"


def create_api(serving: Serving) -> FastAPI:
    """The /api/v1 application for this process's Serving."""
    api = FastAPI(
        title="Keras prediction dashboard API",
        version="1",
        description="Predict with the dashboard's models from programs. Errors are "
        '{"error": {"code": ..., "message": ...}}.',
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        # documents the bearer scheme (for /docs' Authorize button); gate.BearerGate enforces it
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
    api.state.serving = serving

    _answer_errors(api)
    _add_health_routes(api, serving)
    _add_model_routes(api, serving)
    _add_predict_route(api, serving)
    add_history_routes(api, serving)
    add_monitor_route(api, serving)
    _add_docs(api)
    return api


def _answer_errors(api: FastAPI) -> None:
    """Every refusal in the API's error shape: ours, FastAPI's validation, Starlette's 404/405, and the unexpected."""

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


def _add_health_routes(api: FastAPI, serving: Serving) -> None:
    """health (the process answers) and ready (the default version is loaded)."""

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
        version = catalog_of(serving).default  # the default model's default version (pinned, preloaded)
        state, _, why = serving.state(version)
        if state == "ready":
            return JSONResponse({"status": "ready", "version": version.label})
        if state == "failed":
            raise ApiError(
                503, "unavailable", f"version {version.label} could not be loaded: {why}", {"Retry-After": "30"}
            )
        raise ApiError(503, "loading", f"version {version.label} is loading", {"Retry-After": RETRY_AFTER})


def _add_model_routes(api: FastAPI, serving: Serving) -> None:
    """models, versions and models/{version}: what a client needs to choose and call a model's version."""

    @api.get(
        "/models",
        summary="Every model this dashboard serves (that the caller may use)",
        response_model=Models,
        responses=ERRORS,
    )
    async def models(request: Request) -> JSONResponse:
        return JSONResponse(await asyncio.to_thread(models_listing, serving, request))

    @api.get(
        "/versions",
        summary="Every version of a model, newest first, with the default",
        response_model=Versions,
        responses=ERRORS,
    )
    async def versions(request: Request, model: str | None = None) -> JSONResponse:
        catalog = catalog_of(serving, request)
        tags = catalog.tags
        return JSONResponse(
            {
                "name": catalog.name,
                "model": catalog.default.model_name,
                "default": catalog.default.label,
                "warning": catalog.warning,
                "versions": [version_info(v, catalog, tags[v.label]) for v in catalog.versions],
            }
        )

    @api.get(
        "/models/{version}", summary="What a client needs to call a version", response_model=ModelInfo, responses=ERRORS
    )
    async def model(request: Request, version: str, model: str | None = None) -> JSONResponse:
        chosen = choose(catalog_of(serving, request), version)
        state, served, why = serving.state(chosen)
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
                "model": chosen.model_name,
                "version": chosen.label,
                "sha256": chosen.digest if chosen.pinned else None,
                "features": schema["features"],
                "output": schema["output"],
                "runtime": served.runtime,
                "loaded": True,
                "state": state,
            }
        )


def _add_predict_route(api: FastAPI, serving: Serving) -> None:
    """POST /predict: JSON rows through the micro-batcher (or explained), or a CSV file."""

    @api.post(
        "/predict",
        summary="Predict rows (JSON or CSV)",
        response_model=PredictAnswer,
        responses={**ERRORS, 200: {"content": {"text/csv": {}}}},
        openapi_extra=PREDICT_BODY,
    )
    async def predict(
        request: Request, version: str | None = None, explain: bool = False, model: str | None = None
    ) -> Response:
        # the documented route; requests reach predicting.fast_routes' equal twin first (no FastAPI machinery)
        return await predicting.predict(serving, request, version, explain)


def _add_docs(api: FastAPI) -> None:
    """/docs: Swagger UI over the OpenAPI document."""
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
