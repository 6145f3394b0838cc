"""The history's writing: a bounded queue, one writer thread per process that turns what waits into rows and
inserts them in batches, and the spool on disk for what cannot wait in memory (the queue past its bounds, a stop
while the database is down)."""

from __future__ import annotations

import atexit
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from dashboard.common import metrics
from dashboard.common.logs import log
from dashboard.history import database, monitoring
from dashboard.history.database import HistoryError
from dashboard.history.records import Pending, insert, row_of, rows_of
from dashboard.history.spool import Spool
from dashboard.history.tables import feedback, predictions

WRITE_BATCH = 500  # records inserted per transaction
LINGER = 0.25  # seconds the writer lets records gather: fewer, larger transactions (and GIL hand-offs)
UNREACHABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)


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
class Writer:
    """The writing half of the process's history: a bounded queue, one writer thread, the spool behind them."""

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
    _pending: deque[Pending] = field(default_factory=deque)
    _busy: int = 0
    _waiting_bytes: int = 0
    _inflight: list[Pending] = field(default_factory=list)
    _pruned_at: float = 0.0
    _spool_due: bool = True  # spooled records may wait on disk (at start, and after each spooling)
    _wake: threading.Condition = field(default_factory=threading.Condition)
    _ready: threading.Event = field(default_factory=threading.Event)
    _closing: bool = False
    _hurry: int = 0  # callers waiting in flush()

    def __post_init__(self) -> None:
        self.engine = database.create(self.url)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer (it first brings the schema up to date); done by the first record or read, or by the
        server once its port is bound, so nothing of this slows the process's start."""
        with self._wake:
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(target=self._run, name="history writer", daemon=True)
                self._thread.start()
                atexit.register(self._at_exit)

    def queue(self, pending: Pending) -> str:
        """Queue a record and return its id at once (to disk when the queue is full)."""
        if self._thread is None:
            self.start()
        with self._wake:
            full = len(self._pending) >= self.bound or self._waiting_bytes + pending.size > self.bound_bytes
            if not full:
                self._pending.append(pending)
                self._waiting_bytes += pending.size
                self._depth()
                if len(self._pending) == 1:
                    self._wake.notify_all()
                return pending.fields["id"]
        self._to_spool([pending], "the queue is full")  # past the memory bounds: to disk, never lost silently
        return pending.fields["id"]

    def _to_spool(self, waiting: list[Pending], why: str) -> None:
        """Records that cannot wait in memory, onto the spool; what does not fit there is dropped and counted."""
        rows = []
        for pending in waiting:
            try:
                rows.append(row_of(pending))
            except Exception as exc:  # a record that cannot become a row is lost: say so
                self._drop(1)
                log.warning("history: a prediction could not be recorded: %s", database.explain(exc, self.url))
        kept = self.spool.add(rows) if self.spool is not None and rows else 0
        self._spool_due = self._spool_due or kept > 0
        lost = len(rows) - kept
        first_spooled = kept and not self.spooled
        self.spooled += kept
        before = self.dropped
        self._drop(lost)
        thousands = before // 1000 != self.dropped // 1000
        if first_spooled or (lost and (before == 0 or thousands)) or why.startswith("stopping"):  # once per cause
            log.warning(
                "history: %s (%s): %d record(s) kept on disk in %s, %d dropped (%d dropped so far); raise "
                "HISTORY_QUEUE, HISTORY_QUEUE_MB or HISTORY_SPOOL_MB, or bring the database back",
                why,
                database.shown(self.url),
                kept,
                self.spool if self.spool is not None else "no spool",
                lost,
                self.dropped,
            )

    def _drop(self, count: int) -> None:
        self.dropped += count
        metrics.HISTORY_DROPPED.inc(count)

    def _depth(self) -> None:
        """The queue's depth on /metrics (held: _wake)."""
        metrics.HISTORY_QUEUE.set(len(self._pending) + self._busy)

    def status(self) -> Status:
        with self._wake:
            waiting = len(self._pending) + self._busy
        return Status(database.shown(self.url), self.local, self._problem, waiting, self.dropped, self.written)

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
                metrics.HISTORY_WRITTEN.inc(written)
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
            monitoring.prune(connection, cutoff)
        if gone:
            days = self.retention_days
            log.info("history: %d prediction(s) older than %d days deleted (HISTORY_RETENTION_DAYS)", gone, days)

    def _run(self) -> None:
        delay = 0.5
        while True:
            if not self._ready.is_set():
                try:
                    revision = database.migrate(self.engine)
                except Exception as exc:
                    delay = self._pause(exc, "preparing the history database failed", delay)
                    continue
                log.info("history: %s at schema revision %s", database.shown(self.url), revision)
                self._ready.set()
            try:
                self._replay()
                self._prune()
            except UNREACHABLE as exc:
                delay = self._pause(exc, "writing the spooled history failed; it is retried", delay)
                continue
            except Exception as exc:  # pruning or a spool file that cannot be read: say so, go on writing
                log.warning("history: %s", database.explain(exc, self.url))
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
            started = time.perf_counter()
            try:
                done = self._write(batch)
                metrics.HISTORY_WRITE_SECONDS.observe(time.perf_counter() - started)
            except UNREACHABLE as exc:
                with self._wake:
                    if not self._closing:  # closing: close() has spooled them
                        self._pending.extendleft(reversed(batch))
                        self._waiting_bytes += sum(p.size for p in batch)
                    self._busy = 0
                    self._inflight = []
                delay = self._pause(exc, "writing the history failed; the records wait and are retried", delay)
                continue
            except Exception as exc:  # a bug or a refused batch must not stop the writer
                self._drop(len(batch))
                done = 0
                log.warning(
                    "history: %d record(s) could not be written: %s", len(batch), database.explain(exc, self.url)
                )
            if self._problem is not None:
                log.info("history: %s reachable again; waiting records written", database.shown(self.url))
            self._problem, delay = None, 0.5
            metrics.HISTORY_WRITTEN.inc(done)
            with self._wake:
                self.written += done
                self._busy = 0
                self._inflight = []
                self._depth()
                self._wake.notify_all()

    def _pause(self, exc: BaseException, context: str, delay: float) -> float:
        why = database.explain(exc, self.url)
        if self._problem != why:
            log.warning("%s: %s", context, why)
        self._problem = why
        with self._wake:
            self._wake.wait(delay)
            if self._closing:
                delay = 0.0
        return min(delay * 2, 10.0) or 0.05

    def _write(self, batch: list[Pending]) -> int:
        """Insert the batch in one transaction (one by one when the database refuses one); the rows written."""
        rows, failed = rows_of(batch)
        for _, exc in failed:
            self._drop(1)
            log.warning("history: a prediction could not be recorded: %s", database.explain(exc, self.url))
        return self._write_rows(rows)

    def _write_rows(self, rows: list[dict[str, Any]]) -> int:
        """Insert rows in one transaction, one by one when the database refuses one (a record already written, from
        the spool, is skipped; any other refused record is dropped and logged, never taking the others along)."""
        if not rows:
            return 0
        try:
            with self.engine.begin() as connection:
                insert(connection, rows)
            return len(rows)
        except UNREACHABLE:
            raise
        except (sa.exc.DBAPIError, sa.exc.StatementError):  # a record refused: write the others one by one
            written = 0
            for row in rows:
                try:
                    with self.engine.begin() as connection:
                        insert(connection, [row])
                    written += 1
                except UNREACHABLE:
                    raise
                except sa.exc.IntegrityError:  # its id is there already (spooled at a stop, then written)
                    continue
                except (sa.exc.DBAPIError, sa.exc.StatementError) as exc:
                    self._drop(1)
                    log.warning("history: the database refused a record: %s", database.explain(exc, self.url))
            return written

    def connect(self, timeout: float = 5.0):
        self.start()
        if not self._ready.wait(timeout):
            raise HistoryError(f"the history database is not ready: {self._problem or 'still starting'}")
        try:
            return self.engine.connect()
        except UNREACHABLE as exc:
            raise HistoryError(f"the history database cannot be reached: {database.explain(exc, self.url)}") from exc
