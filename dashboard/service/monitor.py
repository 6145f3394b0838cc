"""The Monitor tab's figures for a served version: its scope (model, version, time range) over the history's hourly
counts (history.monitoring), shared by the page, GET /api/v1/monitor and the alert watcher."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard.errors import InputError
from dashboard.history import Recorder
from dashboard.history.monitoring import Bucket, Monitor, Scope, default_range
from dashboard.service.load import Served

DEFAULT_DAYS = 7  # a monitor asked without since: the week before until (default: the current hour's end)
MAX_DAYS = 366  # the longest range one monitor covers
MAX_HOURLY_DAYS = 31  # ... and by hour


def scope_of(
    served: Served,
    since: datetime | None = None,
    until: datetime | None = None,
    bucket: Bucket = "day",
    default_model: bool = False,
) -> Scope:
    """The scope of a monitor of served's version over [since, until) (default: the last 7 days); InputError for a
    range that is empty, reversed or too long."""
    try:
        until = _utc(until) or default_range()[1]
        since = _utc(since) or until - timedelta(days=DEFAULT_DAYS)
    except OverflowError as exc:  # a date near year 1 or 9999
        raise InputError("since and until must be dates between the years 2 and 9998") from exc
    if since >= until:
        raise InputError(f"since ({since:%Y-%m-%d %H:%M}) must be before until ({until:%Y-%m-%d %H:%M})")
    longest = MAX_HOURLY_DAYS if bucket == "hour" else MAX_DAYS
    if until - since > timedelta(days=longest):
        raise InputError(f"a monitor covers at most {longest} days by {bucket}; narrow since and until")
    version = served.version
    return Scope(version.model_name or "", served.label, since, until, default_model, bucket)


def figures(recorder: Recorder, served: Served, scope: Scope) -> Monitor:
    """The monitor of scope, read from the history (cached briefly by the recorder)."""
    return recorder.monitor(scope, served.schema.output.type, served.version.reference)


def _utc(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
