"""The Model Context Protocol door at /mcp (streamable HTTP, the official `mcp` SDK): tools an AI assistant calls to
list the models, read what a model takes and gives, predict and explain.

Thin like the other doors: the same catalog, access rule (the bearer-token gate runs before it; each tool sees only
the models open to the caller), validation, micro-batcher and history (source `mcp`). A failure an assistant can fix
(an unknown model or version, a bad row) is a tool error in the dashboard's own words; rows that cannot be predicted
are that row's `error`, as in the API's answer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from dashboard.api.answers import answer, record_rows
from dashboard.api.errors import ApiError
from dashboard.api.reading import check_explain, choose, explaining, rows_for, who
from dashboard.errors import DashboardError
from dashboard.prediction.reading.json_rows import frame_of
from dashboard.prediction.reading.table import InputTable
from dashboard.service import Served, understand
from dashboard.service.batching import Part
from dashboard.service.serving import Serving

PATH = "/mcp"
LOAD_WAIT = 120.0  # seconds a tool waits for a version to load (an assistant cannot act on "retry later" well)
INSTRUCTIONS = (
    "Predictions from the Keras models of this dashboard. Call list_models, then describe_model to learn a model's "
    "features (names, types, usual ranges, choices) and output, then predict with rows as objects keyed by feature "
    "name. Rows that cannot be predicted come back with an error saying why; the others are predicted."
)
Model = Annotated[str | None, Field(description="the model's name from list_models; omit for the default model")]
Version = Annotated[
    str | None, Field(description="exact version, alias, PEP 440 specifier or 'latest'; omit for the default")
]
Rows = Annotated[
    list[dict[str, float | int | str | bool | None]],
    Field(
        description="one object per row, keyed by feature name as describe_model lists them, e.g. "
        '[{"sepal_length": 5.1, "sepal_width": 3.5}]; an image as base64 text of its file',
        min_length=1,
        max_length=1000,
    ),
]


def create_mcp(serving: Serving, open_access: bool) -> MCPServer:
    """The MCP server with the dashboard's tools (open_access: no tokens nor sign-in, so only local hosts)."""
    mcp = MCPServer("keras-prediction-dashboard", instructions=INSTRUCTIONS)

    @mcp.tool(description="The models this dashboard serves to you, with their default versions.")
    async def list_models(ctx: Context) -> dict[str, Any]:
        caller = _who(ctx)
        catalog = _call(serving.models, caller)
        models = []
        for entry in catalog.entries:
            item: dict[str, Any] = {"name": entry.name, "description": entry.description}
            item["default"] = entry.name == catalog.default
            try:
                item["default_version"] = serving.catalog(entry.name, caller).default.label
            except DashboardError as exc:
                item["error"] = exc.message
            models.append(item)
        return {"models": models}

    @mcp.tool(description="Every version of a model, newest first, with its notes and which is the default.")
    async def list_versions(ctx: Context, model: Model = None) -> dict[str, Any]:
        catalog = _call(serving.catalog, model, _who(ctx))
        tags = catalog.tags
        versions = [
            {"version": v.label, "notes": v.notes, "created": v.created, "tags": tags[v.label]}
            for v in catalog.versions
        ]
        return {"model": catalog.default.model_name, "default": catalog.default.label, "versions": versions}

    @mcp.tool(description="What a model takes (features: type, usual range, unit, choices) and what it gives.")
    async def describe_model(ctx: Context, model: Model = None, version: Version = None) -> dict[str, Any]:
        served = await _served(serving, ctx, model, version)
        schema = served.schema.to_dict()
        return {
            "model": served.version.model_name,
            "version": served.label,
            "features": schema["features"],
            "output": schema["output"],
            "notes": served.version.notes,
        }

    @mcp.tool(description="Predict rows with a model: each row's prediction (label or value), probabilities, error.")
    async def predict(ctx: Context, rows: Rows, model: Model = None, version: Version = None) -> dict[str, Any]:
        started = time.perf_counter()
        served = await _served(serving, ctx, model, version)
        found = _call(rows_for, {"instances": rows}, served, serving)
        part = await serving.batcher.predict(served, found)
        return _answered(serving, ctx, served, found, part, started, explained=False)

    @mcp.tool(description="Predict rows and say why: each feature's share of each prediction (Shapley values).")
    async def explain(ctx: Context, rows: Rows, model: Model = None, version: Version = None) -> dict[str, Any]:
        started = time.perf_counter()
        served = await _served(serving, ctx, model, version)
        found = _call(rows_for, {"instances": rows}, served, serving)
        _call(check_explain, serving, served, len(found))
        table = InputTable(frame_of(found, served.schema.names))
        explained = await explaining(understand.explain_table, served, table)
        return _answered(serving, ctx, served, found, Part(explained.result, 0, len(found)), started, explained=True)

    security = None if open_access else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    mcp.streamable_http_app(
        streamable_http_path=PATH, stateless_http=True, json_response=True, transport_security=security
    )
    return mcp


def mcp_routes(mcp: MCPServer) -> list[BaseRoute]:
    """The /mcp route (the session manager runs in the app's lifespan: `mcp.session_manager.run()`)."""
    return [Route(PATH, endpoint=StreamableHTTPASGIApp(mcp.session_manager))]


def _who(ctx: Context) -> str:
    request = ctx.request_context.request
    return who(request) if isinstance(request, Request) else "anonymous"


def _call(function, *args: Any) -> Any:
    """function(*args), its refusals turned into tool errors in the dashboard's words."""
    try:
        return function(*args)
    except (ApiError, DashboardError) as exc:
        raise ToolError(exc.message) from None


async def _served(serving: Serving, ctx: Context, model: str | None, version: str | None) -> Served:
    """The version asked for (or the model's default), loaded: waits while it loads (up to LOAD_WAIT)."""
    catalog = _call(serving.catalog, model, _who(ctx))
    chosen = _call(choose, catalog, version) if version else catalog.default
    deadline = time.monotonic() + LOAD_WAIT
    while True:
        state, served, why = serving.state(chosen)
        if served is not None:
            return served
        if state == "failed":
            raise ToolError(f"version {chosen.label} of {chosen.model_name} could not be loaded: {why}")
        if time.monotonic() > deadline:
            raise ToolError(f"version {chosen.label} of {chosen.model_name} is still loading; try again in a minute")
        await asyncio.sleep(0.2)


def _answered(
    serving: Serving, ctx: Context, served: Served, rows: list, part: Part, started: float, explained: bool
) -> dict[str, Any]:
    """The API's JSON answer (with the model's name and the history id), recorded with source mcp."""
    found = answer(served, part, None, explained)
    request = ctx.request_context.request
    if isinstance(request, Request):
        recorded = record_rows(serving, served, request, rows, found["predictions"], started, source="mcp")
        if recorded is not None:
            found["prediction_id"] = recorded
    return found
