"""The history's reading: pages of predictions and one prediction, for the History tab and the API's lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from dashboard.history.tables import predictions as predictions_table

if TYPE_CHECKING:
    pass

PAGE_ROWS = 50


@dataclass(frozen=True)
class Filters:
    """What the History and Feedback lists are narrowed to (None: any)."""

    model: str | None = None
    model_is_default: bool = False  # rows from before models had names (NULL) count as the default model's
    version: str | None = None
    user: str | None = None
    source: str | None = None
    since: datetime | None = None


@dataclass(frozen=True)
class Listing:
    """One page of a list, newest first, and how many match in all."""

    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


Read = Callable[[Any], list[dict[str, Any]]]  # a query -> its rows, once this process's waiting records are written


def predictions(
    read: Read, filters: Filters, limit: int = PAGE_ROWS, offset: int = 0, details: bool = False
) -> Listing:
    """One page of predictions, newest first (with inputs and outputs when details)."""
    where = where_clauses(predictions_table, filters, with_source=True)
    columns = [c for c in predictions_table.c if details or c.name not in ("inputs", "outputs")]
    query = sa.select(*columns).where(*where).order_by(predictions_table.c.created_at.desc(), predictions_table.c.id)
    items = read(query.limit(limit).offset(offset))
    total = read(sa.select(sa.func.count()).select_from(predictions_table).where(*where))[0]["count_1"]
    return Listing([public(item) for item in items], total, limit, offset)


def prediction(read: Read, prediction_id: str) -> dict[str, Any] | None:
    """One prediction with its inputs and outputs, or None."""
    found = read(sa.select(predictions_table).where(predictions_table.c.id == prediction_id))
    return public(found[0]) if found else None


def distinct(read: Read, column: str) -> list[str]:
    """The values of a column (version, user, source) seen in the history, for the filters."""
    col = predictions_table.c[column]
    return [row[column] for row in read(sa.select(col).distinct().order_by(col))]


def where_clauses(table: sa.Table, filters: Filters, with_source: bool) -> list[Any]:
    """The filters on table's own user and time columns, and (with_source) on the prediction's model, version and
    source."""
    where = []
    if filters.user:
        where.append(table.c.user == filters.user)
    if filters.since is not None:
        since = filters.since if filters.since.tzinfo else filters.since.replace(tzinfo=UTC)
        where.append(table.c.created_at >= since.astimezone(UTC))
    return where + (prediction_clauses(filters) if with_source else [])


def prediction_clauses(filters: Filters) -> list[Any]:
    """The filters on the prediction a row is (or a report is about): its model, version and source."""
    where = []
    if filters.model:
        named = predictions_table.c.model == filters.model
        where.append(sa.or_(named, predictions_table.c.model.is_(None)) if filters.model_is_default else named)
    if filters.version:
        where.append(predictions_table.c.version == filters.version)
    if filters.source:
        where.append(predictions_table.c.source == filters.source)
    return where


def public(item: dict[str, Any]) -> dict[str, Any]:
    """A row as the tabs and the API show it: times in ISO 8601 UTC."""
    created = item.get("created_at")
    if isinstance(created, datetime):
        created = created if created.tzinfo else created.replace(tzinfo=UTC)
        item = {**item, "created_at": created.astimezone(UTC).isoformat(timespec="milliseconds")}
    return item
