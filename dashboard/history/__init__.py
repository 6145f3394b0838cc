"""Prediction history and feedback (SQLAlchemy, Alembic): every form, batch, API and CLI prediction recorded with
its provenance, and "wrong answer" reports tied to the prediction they correct.

Recording never blocks or breaks a prediction: `Recorder.record` only appends to a bounded queue (microseconds);
one writer thread per process turns what waits into rows and inserts them in batches (writer.py, records.py). While
the database is slow or down the records wait (HISTORY_QUEUE of them and HISTORY_QUEUE_MB in memory, then on disk in
the spool, also at a stop; past that they are dropped, counted and logged) and are written when it returns. Reads
(the History and Feedback tabs, the API's lists) go to the database directly (queries.py, reports.py).
"""

from dashboard.history.database import HistoryError
from dashboard.history.queries import PAGE_ROWS, Filters, Listing
from dashboard.history.recording import Recorder, check, recorder
from dashboard.history.records import SOURCES, Source, local_user
from dashboard.history.reports import MAX_REPORTS, UnknownPredictionError
from dashboard.history.writer import Status

__all__ = [
    "MAX_REPORTS",
    "PAGE_ROWS",
    "SOURCES",
    "Filters",
    "HistoryError",
    "Listing",
    "Recorder",
    "Source",
    "Status",
    "UnknownPredictionError",
    "check",
    "local_user",
    "recorder",
]
