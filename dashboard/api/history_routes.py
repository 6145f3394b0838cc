"""The history routes of the HTTP API: GET /history and GET /feedback (the History and Feedback tabs' lists, with
the same filters and paging) and POST /feedback (report a wrong answer by the prediction_id of an answer)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from datetime import datetime
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from dashboard.api.documents import ERRORS, FeedbackPage, FeedbackRequest, HistoryPage
from dashboard.api.errors import ApiError
from dashboard.api.reading import catalog_of, models_of, version_for, who
from dashboard.errors import InputError, UnknownModelError
from dashboard.history import SOURCES, Filters, Recorder, UnknownPredictionError
from dashboard.history.database import HistoryError
from dashboard.service import monitor as watch
from dashboard.service.serving import Serving

MAX_LIMIT = 500
MAX_OFFSET = 1_000_000_000


def add_history_routes(api: FastAPI, serving: Serving) -> None:
    """GET /history, GET /feedback, POST /feedback on api."""

    def asked(
        request: Request,
        model: str | None = None,
        version: str | None = None,
        user: str | None = None,
        source: str | None = None,
        since: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[Filters, int, int]:
        """The filters and paging of a list request (HISTORY_SCOPE=own fixes the user to the caller)."""
        filters = _filters(serving, request, version, user, source, since)
        return _for_model(serving, request, filters, model), _limit(limit), _offset(offset)

    @api.get("/history", summary="Recorded predictions, newest first", response_model=HistoryPage, responses=ERRORS)
    async def history(query: tuple[Filters, int, int] = Depends(asked)) -> JSONResponse:
        listing = await _read(_recorder(serving).predictions, *query, True)
        return JSONResponse(_page(listing))

    @api.get(
        "/feedback",
        summary="Wrong-answer reports, newest first, and how often each version was flagged",
        response_model=FeedbackPage,
        responses=ERRORS,
    )
    async def feedback_list(query: tuple[Filters, int, int] = Depends(asked)) -> JSONResponse:
        recorder = _recorder(serving)
        listing = await _read(recorder.feedback, *query)
        agreement = await _read(recorder.agreement, query[0])
        return JSONResponse({**_page(listing), "versions": agreement.to_dict(orient="records")})

    @api.post(
        "/feedback",
        summary="Report a wrong answer: the right label (or value) for a prediction_id",
        status_code=201,
        responses=ERRORS,
    )
    async def feedback(request: Request, report: FeedbackRequest) -> JSONResponse:
        recorder = _recorder(serving)
        scope = who(request) if serving.settings.history_scope == "own" else None
        try:
            stored = await in_database(
                recorder.add_feedback,
                report.prediction_id,
                who(request),
                report.label,
                report.value,
                report.comment,
                report.row,
                scope,
            )
        except UnknownPredictionError as exc:
            raise ApiError(404, "unknown_prediction", exc.message) from exc
        except InputError as exc:
            raise ApiError(422, "bad_feedback", exc.message) from exc
        except HistoryError as exc:
            raise ApiError(503, "history_unavailable", exc.message, {"Retry-After": "30"}) from exc
        return JSONResponse(stored, status_code=201)


def add_monitor_route(api: FastAPI, serving: Serving) -> None:
    """GET /monitor: the Monitor tab's figures as JSON."""

    @api.get(
        "/monitor",
        summary="One version watched over a time range: volume by door, latency, answers, drift, feedback",
        responses=ERRORS,
    )
    async def monitor(
        request: Request,
        model: str | None = None,
        version: str | None = None,
        since: str | None = None,
        until: str | None = None,
        bucket: str = "day",
    ) -> JSONResponse:
        recorder = _recorder(serving)
        if bucket not in ("day", "hour"):
            raise ApiError(400, "bad_request", f"bucket={bucket!r} is not one of day, hour")
        catalog = catalog_of(serving, request)
        served, _ = await version_for(serving, version or catalog.default.label, request)
        default = served.version.model_name == models_of(serving, None).default
        try:
            scope = watch.scope_of(served, _when("since", since), _when("until", until), bucket, default)
        except InputError as exc:
            raise ApiError(400, "bad_request", exc.message) from exc
        found = await _read(watch.figures, recorder, served, scope)
        return JSONResponse(found.as_json(), headers={"X-Model-Name": scope.model, "X-Model-Version": scope.version})


def _when(name: str, text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise ApiError(
            400,
            "bad_request",
            f"{name}={text!r} is not a date; use ISO 8601 such as 2026-11-30 or 2026-11-30T08:00:00Z",
        ) from exc


def _recorder(serving: Serving) -> Recorder:
    if serving.recorder is None:
        raise ApiError(404, "history_off", "prediction history is off on this server (HISTORY=off)")
    return serving.recorder


def _filters(
    serving: Serving, request: Request, version: str | None, user: str | None, source: str | None, since: str | None
) -> Filters:
    if source is not None and source not in SOURCES:
        raise ApiError(400, "bad_request", f"source={source!r} is not one of {', '.join(SOURCES)}")
    when = _when("since", since)
    if serving.settings.history_scope == "own":
        user = who(request)
    return Filters(version=version or None, user=user or None, source=source, since=when)


def _for_model(serving: Serving, request: Request, filters: Filters, model: str | None) -> Filters:
    """The filters narrowed to one model (?model=, absent: the default one) that the caller may use; rows from
    before models had names count as the default model's."""
    everything = models_of(serving, None)
    try:
        name = models_of(serving, request).get(model).name
    except UnknownModelError as exc:
        raise ApiError(404, "unknown_model", exc.message) from exc
    return dataclasses.replace(filters, model=name, model_is_default=name == everything.default)


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "bad_request", f"limit={limit} must be between 1 and {MAX_LIMIT}")
    return limit


def _offset(offset: int) -> int:
    if not 0 <= offset <= MAX_OFFSET:
        raise ApiError(400, "bad_request", f"offset={offset} must be between 0 and {MAX_OFFSET:,}")
    return offset


# The history's database calls run on threads of their own: a stalled database holds these (and answers 503 after
# READ_TIMEOUT), never the threads that predictions run on
_DATABASE = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="history-api")
READ_TIMEOUT = 10.0


async def in_database(method, *args: Any) -> Any:
    """method(*args) on the history's own threads, given up (503) after READ_TIMEOUT seconds."""
    future = asyncio.get_running_loop().run_in_executor(_DATABASE, method, *args)
    try:
        return await asyncio.wait_for(future, READ_TIMEOUT)
    except TimeoutError as exc:
        raise ApiError(
            503,
            "history_unavailable",
            f"the history database did not answer within {READ_TIMEOUT:g} s; predictions go on, try again later",
            {"Retry-After": "30"},
        ) from exc


async def _read(method, *args: Any) -> Any:
    try:
        return await in_database(method, *args)
    except HistoryError as exc:
        raise ApiError(503, "history_unavailable", exc.message, {"Retry-After": "30"}) from exc
    except InputError as exc:
        raise ApiError(400, "bad_request", exc.message) from exc


def _page(listing) -> dict[str, Any]:
    return {"items": listing.items, "total": listing.total, "limit": listing.limit, "offset": listing.offset}
