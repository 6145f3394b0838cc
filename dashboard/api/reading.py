"""What the three route families share on the way in: the request's body (bounded), its media type, its JSON
rows, the version it asks for (or why it cannot be served yet), and who sent it."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

from fastapi import Request

from dashboard.api import uploads
from dashboard.api.errors import RETRY_AFTER, ApiError
from dashboard.api.uploads import IMAGE_TYPES
from dashboard.common import jsontext
from dashboard.common.logs import report
from dashboard.errors import DashboardError, InputError, UnknownModelError
from dashboard.prediction.reading.json_rows import TooManyRows, rows_from_json
from dashboard.service import Served
from dashboard.service.serving import Serving
from dashboard.store.catalog import ModelCatalog
from dashboard.store.versions import Catalog, ModelVersion


def who(request: Request | None) -> str:
    """Who made the request: the token's name (set by gate.BearerGate), or anonymous on an open dashboard."""
    return request.scope.get("state", {}).get("who", "anonymous")


def model_of(request: Request | None) -> str | None:
    """The model a request asks for: ?model=NAME (absent: the default model)."""
    return request.query_params.get("model") or None if request is not None else None


def models_of(serving: Serving, request: Request | None) -> ModelCatalog:
    """The catalog of models as the request's sender sees it (503 while it cannot be read)."""
    try:
        return serving.models(who(request) if request is not None else None)
    except DashboardError as exc:
        raise ApiError(
            503, "unavailable", f"the catalog could not be read: {exc.message}", {"Retry-After": "30"}
        ) from exc


def catalog_of(serving: Serving, request: Request | None = None, model: str | None = None) -> Catalog:
    """The versions of the model the request asks for (?model=, or `model` from the path), if its sender may use it;
    404 naming the models they may use otherwise."""
    try:
        return serving.catalog(model or model_of(request), who(request) if request is not None else None)
    except UnknownModelError as exc:
        raise ApiError(404, "unknown_model", exc.message) from exc
    except DashboardError as exc:
        report(exc, "the API could not read the versions")
        raise ApiError(
            503, "unavailable", f"no model versions could be read: {exc.message}", {"Retry-After": "30"}
        ) from exc


def choose(catalog: Catalog, spec: str) -> ModelVersion:
    """An explicitly asked version (exact, alias, PEP 440 specifier, latest): never a silent substitute."""
    chosen, warning = catalog.choose(spec, asked_by="?version= in the request")
    if warning:
        raise ApiError(404, "unknown_version", f"{warning.split(';')[0]}; available: {', '.join(catalog.labels)}")
    return chosen


async def version_for(
    serving: Serving, spec: str | None, request: Request | None = None, model: str | None = None
) -> tuple[Served, str | None]:
    """The loaded version asked for (or the default), and a note when the default fell back to another version.

    An explicit version that is loading or failed is a 503 with Retry-After; the default may fall back to the
    newest loaded version, and the answer then says so."""
    catalog = catalog_of(serving, request, model)
    version = choose(catalog, spec) if spec else catalog.default
    state, served, why = serving.state(version)
    if served is not None:
        return served, None
    if not spec:
        for label in reversed(serving.pool.loaded(version.model_name)):
            other = catalog.get(label)
            fallback = serving.pool.peek(serving.settings, other)
            if fallback is not None:
                return fallback, f"default version {version.label} is {state}; answered by {other.label}"
    if state == "loading":
        raise ApiError(
            503, "loading", f"version {version.label} is loading; try again shortly", {"Retry-After": RETRY_AFTER}
        )
    raise ApiError(503, "unavailable", f"version {version.label} could not be loaded: {why}", {"Retry-After": "30"})


async def read_body(request: Request, serving: Serving) -> bytes:
    """The request body, refused past API_MAX_BYTES before it is all read."""
    limit = serving.settings.api_max_bytes
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


def media_type(request: Request, images: bool = False) -> str:
    """application/json or text/csv (and, with images, multipart/form-data or a raw image); else a 415."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind in ("application/json", "text/csv") or (images and (kind == "multipart/form-data" or kind in IMAGE_TYPES)):
        return kind
    also = ", multipart/form-data or an image (image/png, image/jpeg, image/webp)" if images else " or text/csv"
    raise ApiError(
        415,
        "unsupported_media_type",
        f"Content-Type {kind!r} is not supported; send application/json{', text/csv' if images else ''}{also}",
    )


SMALL = 1_000  # rows (or ~64 KiB of JSON) handled on the event loop; more go to a worker thread


_EXPLAINER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="explain")


async def json_rows(body: bytes, served: Served, serving: Serving) -> tuple[Any, list]:
    """(the parsed body, its rows): over API_MAX_JSON_BYTES refused before parsing, a large body parsed in a worker
    thread so no other request (nor the page) waits for it, rows counted before they are built."""
    limit = serving.settings.api_max_json_bytes
    if len(body) > limit:
        raise ApiError(
            413,
            "too_large",
            f"the JSON body is {len(body):,} bytes, over the {limit:,} limit for JSON (API_MAX_JSON_BYTES); send "
            "the rows as text/csv (up to API_MAX_BYTES) or in several requests",
        )

    def parse() -> tuple[Any, list]:
        data = parse_json(body)
        rows = uploads.images_of(rows_for(data, served, serving), served)
        if served.schema.images:
            uploads.check_pixels(rows, served, serving.settings.api_max_bytes)
        return data, rows

    return parse() if len(body) <= 65_536 else await asyncio.to_thread(parse)


def check_explain(serving: Serving, served: Served, rows: int) -> None:
    """Refuse an explanation larger than API_EXPLAIN_MAX_CELLS (rows x inputs) before any work."""
    if served.schema.images:
        raise ApiError(
            400,
            "bad_request",
            "explain=true is not available for image models yet; the page's Predict tab shows which parts of an "
            "image mattered",
        )
    cells, limit = rows * len(served.schema.features), serving.settings.api_explain_max_cells
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


def rows_for(data: Any, served: Served, serving: Serving) -> list:
    try:
        _, rows = rows_from_json(data, served.schema.names, serving.settings.api_max_rows)
    except TooManyRows as exc:
        raise ApiError(413, "too_many_rows", exc.message) from exc
    except InputError as exc:
        raise ApiError(400, "bad_request", exc.message) from exc
    return rows
