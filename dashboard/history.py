"""Prediction history and feedback: every form, batch, API and CLI prediction recorded with its provenance, and
"wrong answer" reports tied to the prediction they correct.

Recording never blocks or breaks a prediction: `Recorder.record` only appends to a bounded queue (microseconds);
one writer thread per process turns what waits into rows and inserts them in batches. While the database is slow
or down the records wait (HISTORY_QUEUE of them and HISTORY_QUEUE_MB in memory, then on disk in a spool.Spool, also
at a stop; past that they are dropped, counted and logged) and are written when it returns. Reads (the History and
Feedback tabs, the API's lists) go to the database directly.
"""

from __future__ import annotations

import atexit
import getpass
import json
import math
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL

from dashboard import historydb
from dashboard.config import Settings
from dashboard.errors import ConfigError, InputError
from dashboard.historydb import HistoryError
from dashboard.logs import log
from dashboard.predict import output_columns
from dashboard.spool import Spool
from dashboard.tables import feedback, predictions

if TYPE_CHECKING:
    from dashboard.service import Served

Source = Literal["form", "batch", "api", "cli"]
SOURCES: tuple[Source, ...] = ("form", "batch", "api", "cli")
WRITE_BATCH = 500  # records inserted per transaction
LINGER = 0.25  # seconds the writer lets records gather: fewer, larger transactions (and GIL hand-offs)
PAGE_ROWS = 50
MAX_KEPT_BYTES = 256 * 1024  # rows kept with one prediction, as JSON; past it the summary alone
MAX_REPORTS = 100  # wrong-answer reports on one prediction
_COLUMNS = tuple(c.name for c in predictions.c)
_QUOTED = tuple(f'"{name}"' for name in _COLUMNS)
_UNREACHABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)


class UnknownPredictionError(InputError):
    """Feedback names a prediction the history does not hold (or, with HISTORY_SCOPE=own, someone else's)."""


@dataclass(frozen=True)
class Filters:
    """What the History and Feedback lists are narrowed to (None: any)."""

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


@dataclass(frozen=True)
class Status:
    """What the sidebar says about recording."""

    where: str  # "SQLite file …" or "PostgreSQL host:port/name" (no password)
    local: bool  # the default SQLite file in the cache folder: lost when a dyno restarts
    paused: str | None  # why writes are waiting (the database is unreachable), else None
    waiting: int
    dropped: int
    written: int


@dataclass
class _Pending:
    """A prediction waiting to be written; turned into a row by the writer thread, off the request path."""

    fields: dict[str, Any]  # the row's columns known when it was recorded (features among them)
    output: Any  # schema.Output
    keep: bool = False  # keep the rows (inputs and outputs), not only the summary
    table: pd.DataFrame | None = None  # the result table (inputs + output columns)
    rows: list[Mapping[str, Any]] | None = None  # a JSON API call: the rows as sent
    answers: list[dict[str, Any]] | None = None  # ... and the answer's rows
    ready: bool = False  # fields already complete (record_summary)

    @property
    def size(self) -> int:
        """Bytes this record holds while it waits, roughly (64 per cell): what HISTORY_QUEUE_MB bounds."""
        if self.table is not None:
            return 64 * self.table.size
        return 64 * (len(self.rows or ()) + len(self.answers or ())) * max(1, len(self.features)) + 1024

    @property
    def features(self) -> list[str]:
        return self.fields["features"]


@dataclass
class Recorder:
    """The process's history: a bounded queue, one writer thread, and the reads behind the tabs and the API."""

    url: URL
    bound: int = 10_000
    local: bool = False
    bound_bytes: int = 64 << 20
    spool: Spool | None = None  # where records go when the queue is full or the process stops
    retention_days: int = 0  # predictions older than this are deleted by the writer (0: never)
    written: int = 0
    dropped: int = 0
    spooled: int = 0
    _problem: str | None = None
    _pending: deque[_Pending] = field(default_factory=deque)
    _busy: int = 0
    _waiting_bytes: int = 0
    _inflight: list[_Pending] = field(default_factory=list)
    _pruned_at: float = 0.0
    _spool_due: bool = True  # spooled records may wait on disk (at start, and after each spooling)
    _wake: threading.Condition = field(default_factory=threading.Condition)
    _ready: threading.Event = field(default_factory=threading.Event)
    _closing: bool = False
    _hurry: int = 0  # callers waiting in flush()

    def __post_init__(self) -> None:
        self.engine = historydb.create(self.url)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer (it first brings the schema up to date); done by the first record or read, or by the
        server once its port is bound, so nothing of this slows the process's start."""
        with self._wake:
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(target=self._run, name="history writer", daemon=True)
                self._thread.start()
                atexit.register(self._at_exit)

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
        """Queue one prediction (a form row, a batch file, a CLI run, a CSV or compatible API call) and return its
        id at once. table is the result table (inputs, prediction, probabilities, error); its rows are kept when
        there are at most keep_rows of them, else only the summary."""
        fields = self._fields(served, source, who, len(table), seconds, file_name, file_sha256)
        keep = len(table) <= keep_rows
        if not keep:  # only the summary is stored: the queue holds two columns, not the whole table
            table = table[["prediction", "error"]]
        return self._queue(_Pending(fields, served.schema.output, keep, table=table))

    def record_answer(
        self,
        served: Served,
        who: str,
        rows: list[Mapping[str, Any]],
        answers: list[dict[str, Any]],
        seconds: float,
        keep_rows: int,
    ) -> str:
        """Queue a JSON API call from its rows as sent and its answer rows: no table to convert (the hot path)."""
        fields = self._fields(served, "api", who, len(rows), seconds, None, None)
        return self._queue(_Pending(fields, served.schema.output, len(rows) <= keep_rows, rows=rows, answers=answers))

    def record_summary(
        self, served: Served, source: Source, who: str, rows: int, errors: int, seconds: float, file_name: str
    ) -> str:
        """Queue a run known only by its counts (a Spark job: its rows never leave the cluster)."""
        fields = self._fields(served, source, who, rows, seconds, file_name, None)
        fields.update(errors=errors, summary={"predicted": rows - errors}, inputs=None, outputs=None)
        return self._queue(_Pending(fields, served.schema.output, ready=True))

    def _fields(
        self,
        served: Served,
        source: Source,
        who: str,
        rows: int,
        seconds: float,
        file_name: str | None,
        file_sha256: str | None,
    ) -> dict[str, Any]:
        schema = served.schema
        return {
            "id": _new_id(),
            "created_at": datetime.now(UTC),
            "user": (who or "anonymous")[:320],
            "source": source,
            "version": served.label[:64],
            "sha256": served.version.digest if served.version.pinned else None,
            "runtime": served.runtime,
            "output_type": schema.output.type,
            "labels": list(schema.output.labels) if schema.output.type != "regression" else None,
            "features": list(schema.names),
            "rows": rows,
            "duration_ms": round(seconds * 1000, 3),
            "file_name": file_name[:255] if file_name else None,
            "file_sha256": file_sha256,
        }

    def _queue(self, pending: _Pending) -> str:
        if self._thread is None:
            self.start()
        with self._wake:
            full = len(self._pending) >= self.bound or self._waiting_bytes + pending.size > self.bound_bytes
            if not full:
                self._pending.append(pending)
                self._waiting_bytes += pending.size
                if len(self._pending) == 1:
                    self._wake.notify_all()
                return pending.fields["id"]
        self._to_spool([pending], "the queue is full")  # past the memory bounds: to disk, never lost silently
        return pending.fields["id"]

    def _to_spool(self, waiting: list[_Pending], why: str) -> None:
        """Records that cannot wait in memory, onto the spool; what does not fit there is dropped and counted."""
        rows = []
        for pending in waiting:
            try:
                rows.append(_row(pending))
            except Exception as exc:  # a record that cannot become a row is lost: say so
                self.dropped += 1
                log.warning("history: a prediction could not be recorded: %s", historydb.explain(exc, self.url))
        kept = self.spool.add(rows) if self.spool is not None and rows else 0
        self._spool_due = self._spool_due or kept > 0
        lost = len(rows) - kept
        first_spooled = kept and not self.spooled
        self.spooled += kept
        before, self.dropped = self.dropped, self.dropped + lost
        thousands = before // 1000 != self.dropped // 1000
        if first_spooled or (lost and (before == 0 or thousands)) or why.startswith("stopping"):  # once per cause
            log.warning(
                "history: %s (%s): %d record(s) kept on disk in %s, %d dropped (%d dropped so far); raise "
                "HISTORY_QUEUE, HISTORY_QUEUE_MB or HISTORY_SPOOL_MB, or bring the database back",
                why,
                historydb.shown(self.url),
                kept,
                self.spool if self.spool is not None else "no spool",
                lost,
                self.dropped,
            )

    def status(self) -> Status:
        with self._wake:
            waiting = len(self._pending) + self._busy
        return Status(historydb.shown(self.url), self.local, self._problem, waiting, self.dropped, self.written)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued record is written; False when timeout passed first."""
        deadline = time.monotonic() + timeout
        with self._wake:
            if not (self._pending or self._busy):
                return True
            self._hurry += 1  # someone waits: the writer skips its linger
            self._wake.notify_all()
            try:
                while self._pending or self._busy:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._wake.wait(min(left, 0.1))
            finally:
                self._hurry -= 1
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Write what waits (for up to timeout) and stop the writer; what is still waiting then goes to the spool
        (written at the next start). False when records were left unwritten."""
        flushed = self.flush(timeout)
        with self._wake:
            self._closing = True
            left = [*self._inflight, *self._pending]
            self._pending.clear()
            self._waiting_bytes = 0
            self._wake.notify_all()
        if left:
            self._to_spool(left, "stopping with records unwritten")
        self.engine.dispose()
        with _RECORDERS_LOCK:  # the next recorder() for this database starts a new one
            for key, found in list(_RECORDERS.items()):
                if found is self:
                    del _RECORDERS[key]
        return flushed

    def _at_exit(self) -> None:
        """The interpreter is stopping (SIGTERM on a restart): spool what still waits."""
        if not self._closing:
            with self._wake:
                self._closing = True
                left = [*self._inflight, *self._pending]
                self._pending.clear()
            if left:
                self._to_spool(left, "stopping with records unwritten")

    def _replay(self) -> None:
        """Write the spooled records (oldest file first); a file is deleted once written. Raises when unreachable."""
        if self.spool is None or not self._spool_due:  # no folder listing per batch: only when something waits
            return
        self._spool_due = False  # before listing: a record spooled meanwhile sets it again
        try:
            for path in self.spool.files():
                rows = self.spool.read(path)
                written = self._write_rows(rows) if rows else 0
                path.unlink(missing_ok=True)
                self.written += written
                log.info("history: %d spooled record(s) written from %s", written, path.name)
        except BaseException:
            self._spool_due = True  # the database stopped answering: the rest is tried again
            raise

    def _prune(self) -> None:
        """Delete predictions (and their reports) older than the retention, at most once an hour."""
        if not self.retention_days or (self._pruned_at and time.monotonic() - self._pruned_at < 3600):
            return
        self._pruned_at = time.monotonic()
        cutoff = datetime.now(UTC) - timedelta(days=self.retention_days)
        old = sa.select(predictions.c.id).where(predictions.c.created_at < cutoff)
        with self.engine.begin() as connection:
            connection.execute(feedback.delete().where(feedback.c.prediction_id.in_(old)))
            gone = connection.execute(predictions.delete().where(predictions.c.created_at < cutoff)).rowcount
        if gone:
            days = self.retention_days
            log.info("history: %d prediction(s) older than %d days deleted (HISTORY_RETENTION_DAYS)", gone, days)

    def _run(self) -> None:
        delay = 0.5
        while True:
            if not self._ready.is_set():
                try:
                    revision = historydb.migrate(self.engine)
                except Exception as exc:
                    delay = self._pause(exc, "preparing the history database failed", delay)
                    continue
                log.info("history: %s at schema revision %s", historydb.shown(self.url), revision)
                self._ready.set()
            try:
                self._replay()
                self._prune()
            except _UNREACHABLE as exc:
                delay = self._pause(exc, "writing the spooled history failed; it is retried", delay)
                continue
            except Exception as exc:  # pruning or a spool file that cannot be read: say so, go on writing
                log.warning("history: %s", historydb.explain(exc, self.url))
            with self._wake:
                while not self._pending and not self._closing:
                    self._wake.wait()
                if self._closing and not self._pending:
                    return
                if len(self._pending) < WRITE_BATCH and not self._closing and not self._hurry:
                    self._wake.wait(LINGER)  # let a burst gather: one transaction for many records
                batch = [self._pending.popleft() for _ in range(min(WRITE_BATCH, len(self._pending)))]
                self._busy = len(batch)
                self._inflight = batch
                self._waiting_bytes -= sum(p.size for p in batch)
            try:
                done = self._write(batch)
            except _UNREACHABLE as exc:
                with self._wake:
                    if not self._closing:  # closing: close() has spooled them
                        self._pending.extendleft(reversed(batch))
                        self._waiting_bytes += sum(p.size for p in batch)
                    self._busy = 0
                    self._inflight = []
                delay = self._pause(exc, "writing the history failed; the records wait and are retried", delay)
                continue
            except Exception as exc:  # a bug or a refused batch must not stop the writer
                self.dropped += len(batch)
                done = 0
                log.warning(
                    "history: %d record(s) could not be written: %s", len(batch), historydb.explain(exc, self.url)
                )
            if self._problem is not None:
                log.info("history: %s reachable again; waiting records written", historydb.shown(self.url))
            self._problem, delay = None, 0.5
            with self._wake:
                self.written += done
                self._busy = 0
                self._inflight = []
                self._wake.notify_all()

    def _pause(self, exc: BaseException, context: str, delay: float) -> float:
        why = historydb.explain(exc, self.url)
        if self._problem != why:
            log.warning("%s: %s", context, why)
        self._problem = why
        with self._wake:
            self._wake.wait(delay)
            if self._closing:
                delay = 0.0
        return min(delay * 2, 10.0) or 0.05

    def _write(self, batch: list[_Pending]) -> int:
        """Insert the batch in one transaction (one by one when the database refuses one); the rows written."""
        rows = []
        for pending in batch:
            try:
                rows.append(_row(pending))
            except Exception as exc:
                self.dropped += 1
                log.warning("history: a prediction could not be recorded: %s", historydb.explain(exc, self.url))
        return self._write_rows(rows)

    def _write_rows(self, rows: list[dict[str, Any]]) -> int:
        """Insert rows in one transaction, one by one when the database refuses one (a record already written, from
        the spool, is skipped; any other refused record is dropped and logged, never taking the others along)."""
        if not rows:
            return 0
        try:
            with self.engine.begin() as connection:
                self._insert(connection, rows)
            return len(rows)
        except _UNREACHABLE:
            raise
        except (sa.exc.DBAPIError, sa.exc.StatementError):  # a record refused: write the others one by one
            written = 0
            for row in rows:
                try:
                    with self.engine.begin() as connection:
                        self._insert(connection, [row])
                    written += 1
                except _UNREACHABLE:
                    raise
                except sa.exc.IntegrityError:  # its id is there already (spooled at a stop, then written)
                    continue
                except (sa.exc.DBAPIError, sa.exc.StatementError) as exc:
                    self.dropped += 1
                    log.warning("history: the database refused a record: %s", historydb.explain(exc, self.url))
            return written

    def _insert(self, connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
        """The whole batch as one JSON document in one statement, unpacked by the database (SQLite's json_each,
        PostgreSQL's json_populate_recordset). The writer shares the GIL and the CPU with the request path: one
        driver call per batch instead of one per row spares it the GIL hand-offs, and one C-encoded document is
        far cheaper than SQLAlchemy's per-row bind processing. Times are written as each dialect stores them."""
        sqlite = connection.dialect.name == "sqlite"
        rows = [{**row, "created_at": _stored_time(row["created_at"], sqlite)} for row in rows]  # copies: a retry
        # one by one must find the rows as they were
        try:
            document = json.dumps(rows, ensure_ascii=False, allow_nan=False)
        except ValueError:  # NaN or infinity somewhere in an output: JSON has no such numbers
            document = json.dumps(_finite(rows), ensure_ascii=False, allow_nan=False)
        columns = ", ".join(_QUOTED)
        if sqlite:
            values = ", ".join(f"json_extract(value, '$.{name}')" for name in _COLUMNS)
            connection.exec_driver_sql(
                f"INSERT INTO predictions ({columns}) SELECT {values} FROM json_each(?)", (document,)
            )
        else:
            connection.exec_driver_sql(
                f"INSERT INTO predictions ({columns}) SELECT {columns} "
                "FROM json_populate_recordset(NULL::predictions, %s::json)",
                (document,),
            )

    # reading
    def _connect(self, timeout: float = 5.0):
        self.start()
        if not self._ready.wait(timeout):
            raise HistoryError(f"the history database is not ready: {self._problem or 'still starting'}")
        try:
            return self.engine.connect()
        except _UNREACHABLE as exc:
            raise HistoryError(f"the history database cannot be reached: {historydb.explain(exc, self.url)}") from exc

    def _read(self, query: Any) -> list[dict[str, Any]]:
        """Rows of query, once this process's waiting records are written (a list shows what was just predicted;
        not while the database is down, when the read fails anyway)."""
        if self._problem is None:
            self.flush(2.0)
        with self._connect() as connection:
            try:
                return [dict(row._mapping) for row in connection.execute(query)]
            except _UNREACHABLE as exc:
                raise HistoryError(
                    f"the history database cannot be reached: {historydb.explain(exc, self.url)}"
                ) from exc
            except (sa.exc.DataError, OverflowError) as exc:  # a filter the database cannot compare (a NUL, ...)
                raise InputError("a filter value holds characters the database cannot compare; remove them") from exc

    def predictions(self, filters: Filters, limit: int = PAGE_ROWS, offset: int = 0, details: bool = False) -> Listing:
        """One page of predictions, newest first (with inputs and outputs when details)."""
        where = _where(predictions, filters, with_source=True)
        columns = [c for c in predictions.c if details or c.name not in ("inputs", "outputs")]
        query = sa.select(*columns).where(*where).order_by(predictions.c.created_at.desc(), predictions.c.id)
        items = self._read(query.limit(limit).offset(offset))
        total = self._read(sa.select(sa.func.count()).select_from(predictions).where(*where))[0]["count_1"]
        return Listing([_public(item) for item in items], total, limit, offset)

    def prediction(self, prediction_id: str) -> dict[str, Any] | None:
        """One prediction with its inputs and outputs (after the queue is written, unless the database is down), or
        None."""
        if self._problem is None:
            self.flush(5.0)
        found = self._read(sa.select(predictions).where(predictions.c.id == prediction_id))
        return _public(found[0]) if found else None

    def distinct(self, column: str) -> list[str]:
        """The values of a column (version, user, source) seen in the history, for the filters."""
        col = predictions.c[column]
        return [row[column] for row in self._read(sa.select(col).distinct().order_by(col))]

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
        found = self.prediction(prediction_id) if re.fullmatch(r"[0-9a-f]{32}", prediction_id or "") else None
        if found is None or (scope_user is not None and found["user"] != scope_user):
            raise UnknownPredictionError(
                f"no prediction {prediction_id!r} in the history; use the prediction_id of a prediction answer"
            )
        if not 0 <= row < found["rows"]:
            raise InputError(f"row {row} is not in prediction {prediction_id} (it has {found['rows']} row(s))")
        count = sa.select(sa.func.count()).select_from(feedback).where(feedback.c.prediction_id == prediction_id)
        if self._read(count)[0]["count_1"] >= MAX_REPORTS:
            raise InputError(
                f"prediction {prediction_id} already has {MAX_REPORTS} reports, the most one prediction keeps; "
                "report a wrong answer on another prediction"
            )
        labels = found["labels"] or []
        if found["output_type"] == "regression":
            if value is None or label is not None:
                raise InputError("this version predicts a value: send the right one as value (a number)")
            if not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
                raise InputError(f"value {value!r} is not a finite number")
        else:
            if label is None or value is not None:
                raise InputError(f"send the right answer as label, one of: {', '.join(labels)}")
            if label not in labels:
                raise InputError(f"label {label!r} is not one of this version's labels: {', '.join(labels)}")
        entry = {
            "prediction_id": prediction_id,
            "row": row,
            "created_at": datetime.now(UTC),
            "user": (who or "anonymous")[:320],
            "label": label,
            "value": float(value) if value is not None else None,
            "comment": (comment or "").replace("\x00", "").strip()[:2000] or None,
        }
        try:
            with self.engine.begin() as connection:
                entry["id"] = connection.execute(feedback.insert().returning(feedback.c.id), entry).scalar_one()
        except _UNREACHABLE as exc:
            raise HistoryError(
                f"the history database cannot be reached: {historydb.explain(exc, self.url)}; try again"
            ) from exc
        log.info("feedback %s by %s on prediction %s (version %s)", entry["id"], who, prediction_id, found["version"])
        return _public(entry)

    def feedback(self, filters: Filters, limit: int = PAGE_ROWS, offset: int = 0) -> Listing:
        """One page of reports, newest first, each with the version, inputs and answer it corrects."""
        query = _feedback_query(filters)
        items = self._read(query.limit(limit).offset(offset))
        count = sa.select(sa.func.count()).select_from(query.subquery())
        total = self._read(count)[0]["count_1"]
        return Listing([_feedback_item(item) for item in items], total, limit, offset)

    def agreement(self, filters: Filters) -> pd.DataFrame:
        """Per version: predictions recorded, rows, rows flagged as wrong, and the share of rows flagged."""
        where = _where(predictions, filters, with_source=True)
        made = self._read(
            sa.select(
                predictions.c.version,
                sa.func.count().label("predictions"),
                sa.func.sum(predictions.c.rows).label("rows"),
            )
            .where(*where)
            .group_by(predictions.c.version)
        )
        flagged = self._read(
            sa.select(predictions.c.version, sa.func.count().label("flagged"))
            .select_from(feedback.join(predictions))
            .where(*where)
            .group_by(predictions.c.version)
        )
        table = pd.DataFrame(made, columns=["version", "predictions", "rows"])
        counts = {row["version"]: row["flagged"] for row in flagged}
        table["flagged"] = [int(counts.get(v, 0)) for v in table["version"]]
        table["rows"] = table["rows"].fillna(0).astype(int)
        table["flagged_share"] = (table["flagged"] / table["rows"].where(table["rows"] > 0)).fillna(0.0).round(4)
        return table.sort_values("version", ascending=False, ignore_index=True)

    def training_rows(self, filters: Filters) -> pd.DataFrame:
        """The reports as training data: the corrected row's feature columns, then label (the right answer)."""
        rows, columns = [], []
        for item in self._read(_feedback_query(filters)):
            inputs = _row_of(item["inputs"], item["row"])
            if inputs is None:
                continue
            for name in item["features"] or []:
                if name not in columns:
                    columns.append(name)
            rows.append({**inputs, "label": item["label"] if item["label"] is not None else item["value"]})
        return pd.DataFrame(rows, columns=[*columns, "label"])


def _feedback_query(filters: Filters) -> Any:
    where = _where(feedback, filters, with_source=False)
    if filters.version:
        where.append(predictions.c.version == filters.version)
    if filters.source:
        where.append(predictions.c.source == filters.source)
    return (
        sa.select(
            feedback,
            predictions.c.version,
            predictions.c.source,
            predictions.c.features,
            predictions.c.inputs,
            predictions.c.outputs,
            predictions.c.output_type,
        )
        .select_from(feedback.join(predictions))
        .where(*where)
        .order_by(feedback.c.created_at.desc(), feedback.c.id.desc())
    )


def _where(table: sa.Table, filters: Filters, with_source: bool) -> list[Any]:
    where = []
    if filters.user:
        where.append(table.c.user == filters.user)
    if with_source and filters.version:
        where.append(table.c.version == filters.version)
    if with_source and filters.source:
        where.append(table.c.source == filters.source)
    if filters.since is not None:
        since = filters.since if filters.since.tzinfo else filters.since.replace(tzinfo=UTC)
        where.append(table.c.created_at >= since.astimezone(UTC))
    return where


def _row_of(rows: Any, index: int) -> dict[str, Any] | None:
    return rows[index] if isinstance(rows, list) and 0 <= index < len(rows) else None


def _feedback_item(item: dict[str, Any]) -> dict[str, Any]:
    return _public(
        {
            "id": item["id"],
            "prediction_id": item["prediction_id"],
            "row": item["row"],
            "created_at": item["created_at"],
            "user": item["user"],
            "version": item["version"],
            "source": item["source"],
            "label": item["label"],
            "value": item["value"],
            "comment": item["comment"],
            "inputs": _row_of(item["inputs"], item["row"]),
            "predicted": _row_of(item["outputs"], item["row"]),
        }
    )


def _public(item: dict[str, Any]) -> dict[str, Any]:
    """A row as the tabs and the API show it: times in ISO 8601 UTC."""
    created = item.get("created_at")
    if isinstance(created, datetime):
        created = created if created.tzinfo else created.replace(tzinfo=UTC)
        item = {**item, "created_at": created.astimezone(UTC).isoformat(timespec="milliseconds")}
    return item


def _stored_time(when: datetime, sqlite: bool) -> str:
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else when.isoformat()


def _row(pending: _Pending) -> dict[str, Any]:
    """The database row for a queued prediction: inputs and outputs (when kept) and the summary."""
    fields = dict(pending.fields)
    if pending.ready:
        return fields
    if pending.answers is not None:
        return {**fields, **_from_answers(pending)}
    full = pending.table
    errors = full["error"].astype(bool).to_numpy() if len(full) else []
    fields["errors"] = int(sum(errors))
    fields["summary"] = _summary(full, pending.output)
    fields["inputs"] = fields["outputs"] = None
    if pending.keep:
        names = [n for n in pending.features if n in full.columns]
        fields["inputs"] = _records(full[names])
        shown = [c for c in output_columns(pending.output) if c != "model_version" and c in full.columns]
        fields["outputs"] = _records(full[shown])
    return _bounded(fields)


def _bounded(fields: dict[str, Any]) -> dict[str, Any]:
    """A record whose kept rows are over MAX_KEPT_BYTES keeps its summary only (a 20 MB call of long cells must
    not become a 20 MB history row), and says so in the summary."""
    if fields.get("inputs") is None:
        return fields
    size = len(json.dumps([fields["inputs"], fields["outputs"]], default=str))
    if size <= MAX_KEPT_BYTES:
        return fields
    summary = dict(fields.get("summary") or {})
    summary["rows_not_kept"] = f"{size:,} bytes of rows, over the {MAX_KEPT_BYTES:,} kept per prediction"
    return {**fields, "inputs": None, "outputs": None, "summary": summary}


def _from_answers(pending: _Pending) -> dict[str, Any]:
    """errors, summary, inputs and outputs of a JSON API call, in plain Python (no pandas on this path)."""
    answers = pending.answers or []
    good = [a["prediction"] for a in answers if not a.get("error")]
    if pending.output.type == "regression":
        values = [float(v) for v in good if v is not None]
        summary: dict[str, Any] = {"predicted": len(values)}
        if values:
            summary.update(min=min(values), mean=sum(values) / len(values), max=max(values))
    else:
        counts: dict[str, int] = {}
        for label in good:
            counts[str(label)] = counts.get(str(label), 0) + 1
        summary = {"predicted": len(good), "counts": dict(sorted(counts.items(), key=lambda kv: -kv[1]))}
    kept = pending.keep
    return _bounded(
        {
            "errors": len(answers) - len(good),
            "summary": summary,
            "inputs": [{name: row.get(name) for name in pending.features} for row in pending.rows or []]
            if kept
            else None,
            "outputs": answers if kept else None,
        }
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe records (numpy numbers to Python, NaN to null, texts as given)."""
    return json.loads(frame.to_json(orient="records", force_ascii=False, date_format="iso"))


def _summary(table: pd.DataFrame, output: Any) -> dict[str, Any]:
    good = table[~table["error"].astype(bool)] if len(table) else table
    if output.type == "regression":
        values = pd.to_numeric(good["prediction"], errors="coerce").dropna() if len(good) else pd.Series([])
        if values.empty:
            return {"predicted": 0}
        return {
            "predicted": len(values),
            "min": float(values.min()),
            "mean": float(values.mean()),
            "max": float(values.max()),
        }
    counts = good["prediction"].astype(str).value_counts() if len(good) else pd.Series([], dtype=int)
    return {"predicted": len(good), "counts": {str(k): int(v) for k, v in counts.items()}}


def _finite(value: Any) -> Any:
    """value with every NaN or infinite float replaced by None (null in JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _new_id() -> str:
    """32 hex digits: the time in nanoseconds, then 64 random bits. Ids made one after another sort together, so
    the primary-key index grows at its end instead of being split at random places (cheaper inserts)."""
    return f"{time.time_ns():016x}{secrets.randbits(64):016x}"


def local_user() -> str:
    """Who runs the command line (the OS account), for the CLI's records."""
    try:
        return getpass.getuser()
    except Exception:
        return "anonymous"


_RECORDERS: dict[str, Recorder] = {}
_RECORDERS_LOCK = threading.Lock()


def check(settings: Settings) -> None:
    """Raise ConfigError now when DATABASE_URL cannot be used (nothing is opened or created)."""
    if settings.history:
        historydb.database_url(settings.database_url, settings.cache_dir)


def _spool_folder(settings: Settings, key: str) -> Path:
    """The spool of one database, in the cache folder (a name from the URL's hash: no password on disk)."""
    import hashlib

    return Path(settings.cache_dir) / "history-spool" / hashlib.sha256(key.encode()).hexdigest()[:16]


def recorder(settings: Settings) -> Recorder | None:
    """The process's recorder for settings' database (None when HISTORY=off); one per database URL."""
    if not settings.history:
        return None
    url = historydb.database_url(settings.database_url, settings.cache_dir)
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
