"""Prediction history and feedback: every form, batch, API and CLI prediction recorded with its provenance, and
"wrong answer" reports tied to the prediction they correct.

Recording never blocks or breaks a prediction: `Recorder.record` only appends to a bounded queue (microseconds);
one writer thread per process turns what waits into rows and inserts them in batches. While the database is slow
or down the records wait (HISTORY_QUEUE of them and HISTORY_QUEUE_MB in memory, then on disk in a spool.Spool, also
at a stop; past that they are dropped, counted and logged) and are written when it returns. Reads (the History and
Feedback tabs, the API's lists) go to the database directly.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from dashboard.config import Settings
from dashboard.errors import ConfigError, InputError
from dashboard.history import database, monitoring, queries, records, reports
from dashboard.history.database import HistoryError
from dashboard.history.queries import PAGE_ROWS, Filters, Listing
from dashboard.history.records import Served, Source
from dashboard.history.spool import Spool
from dashboard.history.tables import feedback
from dashboard.history.writer import UNREACHABLE, Writer


@dataclass
class Recorder(Writer):
    """The process's history: recording goes through the writer's queue (writer.Writer); the reads behind the tabs
    and the API (queries, reports) go to the database directly, once this process's waiting records are written."""

    monitor_cache_seconds: float = 10.0
    _monitors: dict[monitoring.Scope, tuple[float, monitoring.Monitor, int]] = field(default_factory=dict)

    # recording
    def record(
        self,
        served: Served,
        source: Source,
        who: str,
        table: pd.DataFrame,
        seconds: float,
        keep_rows: int,
        file_name: str | None = None,
        file_sha256: str | None = None,
    ) -> str:
        """Queue one prediction from its result table and return its id at once (see records.of_table)."""
        return self.queue(records.of_table(served, source, who, table, seconds, keep_rows, file_name, file_sha256))

    def record_answer(
        self,
        served: Served,
        who: str,
        rows: list[Mapping[str, Any]],
        answers: list[dict[str, Any]],
        seconds: float,
        keep_rows: int,
        source: Source = "api",
    ) -> str:
        """Queue a JSON API call from its rows as sent and its answer rows: no table to convert (the hot path)."""
        return self.queue(records.of_answer(served, who, rows, answers, seconds, keep_rows, source))

    def record_summary(
        self, served: Served, source: Source, who: str, rows: int, errors: int, seconds: float, file_name: str
    ) -> str:
        """Queue a run known only by its counts (a Spark job: its rows never leave the cluster)."""
        return self.queue(records.of_summary(served, source, who, rows, errors, seconds, file_name))

    def close(self, timeout: float = 10.0) -> bool:
        """Write what waits and stop the writer (writer.Writer.close); the next recorder() starts a new one."""
        flushed = super().close(timeout)
        with _RECORDERS_LOCK:
            for key, found in list(_RECORDERS.items()):
                if found is self:
                    del _RECORDERS[key]
        return flushed

    # reading
    def predictions(self, filters: Filters, limit: int = PAGE_ROWS, offset: int = 0, details: bool = False) -> Listing:
        """One page of predictions, newest first (with inputs and outputs when details)."""
        return queries.predictions(self._read, filters, limit, offset, details)

    def prediction(self, prediction_id: str) -> dict[str, Any] | None:
        """One prediction with its inputs and outputs (after the queue is written, unless the database is down), or
        None."""
        if self._problem is None:
            self.flush(5.0)
        return queries.prediction(self._read, prediction_id)

    def distinct(self, column: str) -> list[str]:
        """The values of a column (version, user, source) seen in the history, for the filters."""
        return queries.distinct(self._read, column)

    # wrong-answer reports
    def add_feedback(
        self,
        prediction_id: str,
        who: str,
        label: str | None = None,
        value: float | None = None,
        comment: str | None = None,
        row: int = 0,
        scope_user: str | None = None,
    ) -> dict[str, Any]:
        """Store a "wrong answer" report for one row of a prediction; InputError when it does not fit it."""
        found = self.prediction(prediction_id) if reports.is_id(prediction_id) else None
        return reports.add(
            self._read, self._insert_report, found, prediction_id, who, label, value, comment, row, scope_user
        )

    def feedback(self, filters: Filters, limit: int = PAGE_ROWS, offset: int = 0) -> Listing:
        """One page of reports, newest first, each with the version, inputs and answer it corrects."""
        return reports.listing(self._read, filters, limit, offset)

    def agreement(self, filters: Filters) -> pd.DataFrame:
        """Per version: predictions recorded, rows, rows flagged as wrong, and the share of rows flagged."""
        return reports.agreement(self._read, filters)

    def training_rows(self, filters: Filters) -> pd.DataFrame:
        """The reports as training data: the corrected row's feature columns, then label (the right answer)."""
        return reports.training_rows(self._read, filters)

    def training_zip(self, filters: Filters) -> bytes:
        """The reports of an image model as a zip: one folder per right answer, and labels.csv."""
        return reports.training_zip(self._read, filters)

    # monitoring
    def monitor(
        self, scope: monitoring.Scope, output_type: str, reference: Mapping[str, Any] | None
    ) -> monitoring.Monitor:
        """The Monitor tab's figures for scope (monitoring.monitor), computed again only when this process wrote
        predictions since and monitor_cache_seconds have passed: a page's reruns and a dashboard's viewers share one
        computation under load, and an idle dashboard shows its last prediction at once."""
        now = time.monotonic()
        with self._wake:
            kept = self._monitors.get(scope)
            waiting = bool(self._pending or self._busy)
        age = now - kept[0] if kept is not None else math.inf
        unchanged = kept is not None and kept[2] == self.written and not waiting
        if age < self.monitor_cache_seconds or (unchanged and age < 300):
            return kept[1]
        written = self.written
        found = monitoring.monitor(self._read, self.engine.dialect.name, scope, output_type, reference)
        with self._wake:
            if len(self._monitors) > 64:  # old scopes (ranges ending at past hours) are not asked again
                self._monitors.clear()
            self._monitors[scope] = (now, found, written)
        return found

    def _insert_report(self, entry: dict[str, Any]) -> int:
        try:
            with self.engine.begin() as connection:
                found = connection.execute(feedback.insert().returning(feedback.c.id), entry).scalar_one()
            with self._wake:
                self._monitors.clear()  # the monitors' agreement changed
            return found
        except UNREACHABLE as exc:
            raise HistoryError(
                f"the history database cannot be reached: {database.explain(exc, self.url)}; try again"
            ) from exc

    def _read(self, query: Any) -> list[dict[str, Any]]:
        """Rows of query, once this process's waiting records are written (a list shows what was just predicted;
        not while the database is down, when the read fails anyway)."""
        if self._problem is None:
            self.flush(2.0)
        with self.connect() as connection:
            try:
                return [dict(row._mapping) for row in connection.execute(query)]
            except UNREACHABLE as exc:
                raise HistoryError(
                    f"the history database cannot be reached: {database.explain(exc, self.url)}"
                ) from exc
            except (sa.exc.DataError, OverflowError) as exc:  # a filter the database cannot compare (a NUL, ...)
                raise InputError("a filter value holds characters the database cannot compare; remove them") from exc


_RECORDERS: dict[str, Recorder] = {}
_RECORDERS_LOCK = threading.Lock()


def check(settings: Settings) -> None:
    """Raise ConfigError now when DATABASE_URL cannot be used (nothing is opened or created)."""
    if settings.history:
        database.database_url(settings.database_url, settings.cache_dir)


def _spool_folder(settings: Settings, key: str) -> Path:
    """The spool of one database, in the cache folder (a name from the URL's hash: no password on disk)."""
    import hashlib

    return Path(settings.cache_dir) / "history-spool" / hashlib.sha256(key.encode()).hexdigest()[:16]


def recorder(settings: Settings) -> Recorder | None:
    """The process's recorder for settings' database (None when HISTORY=off); one per database URL."""
    if not settings.history:
        return None
    url = database.database_url(settings.database_url, settings.cache_dir)
    key = url.render_as_string(hide_password=False)
    with _RECORDERS_LOCK:
        found = _RECORDERS.get(key)
        if found is None:
            try:
                found = Recorder(
                    url,
                    bound=settings.history_queue,
                    local=not settings.database_url,
                    bound_bytes=settings.history_queue_mb << 20,
                    spool=Spool(_spool_folder(settings, key), settings.history_spool_mb << 20),
                    retention_days=settings.history_retention_days,
                )
            except ImportError as exc:  # the driver of DATABASE_URL's database is not installed
                raise ConfigError(
                    f"DATABASE_URL needs the {exc.name} package, which is not installed: "
                    "pip install -r requirements.txt"
                ) from None
            _RECORDERS[key] = found
        return found
