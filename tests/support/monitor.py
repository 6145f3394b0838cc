"""A drifting week of recorded predictions, for the Monitor tests: real predictions of the demo iris version written
through the recorder's queue and writer (history rows and hourly counts), only their times set in the past.

Days 0-3 draw every feature from the published reference (a value per reference bin, as often as the training data
had it): they read stable. Days 4-6 shift petal_length by one training standard deviation: major from then on. A
share of day 5 and 6's rows is reported wrong (answered setosa, corrected to virginica)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from dashboard import service
from dashboard.history import Recorder, records

DAYS = 7
DRIFT_FROM = 4  # the first drifting day
SHIFTED = "petal_length"
API_CALLS, API_ROWS = 30, 5  # per day: JSON API calls of 5 rows
FORMS = 10  # per day: form predictions of one row
BATCH_ROWS = 60  # per day: one batch file


@dataclass
class Week:
    """What was seeded: per day (0 = oldest) and door, predictions and rows; the range; the reported rows."""

    start: datetime  # when day 0 starts (midnight UTC for per-day checks)
    counts: dict[tuple[int, str], tuple[int, int]] = field(default_factory=dict)  # (day, door) -> (calls, rows)
    refused: dict[int, int] = field(default_factory=dict)  # day -> rows refused
    flagged: dict[int, int] = field(default_factory=dict)  # day -> rows reported wrong

    @property
    def until(self) -> datetime:
        return self.start + timedelta(days=DAYS)

    def day(self, index: int) -> str:
        return (self.start + timedelta(days=index)).strftime("%Y-%m-%dT00:00:00Z")


def draw(reference: dict, rows: int, rng: np.random.Generator, shift: float = 0.0) -> pd.DataFrame:
    """rows drawn from the reference's bins (inner edges, and min/max for the open bins); SHIFTED moved by shift."""
    columns = {}
    for name, stats in reference["features"].items():
        edges = [stats["min"], *stats["edges"], stats["max"]]
        counts = np.asarray(stats["counts"], dtype=float)
        bins = rng.choice(len(counts), size=rows, p=counts / counts.sum())
        low, high = np.asarray(edges[:-1])[bins], np.asarray(edges[1:])[bins]
        values = low + (high - low) * rng.uniform(0.05, 0.95, size=rows)
        columns[name] = values + (shift if name == SHIFTED else 0.0)
    return pd.DataFrame(columns)


def standard_deviation(stats: dict) -> float:
    return (stats["quantiles"]["0.75"] - stats["quantiles"]["0.25"]) / 1.349


def seed_week(recorder: Recorder, start: datetime, seed: int = 7) -> Week:
    """The drifting week from midnight `start` (UTC), written and flushed; returns what was seeded."""
    settings = service.settings({"HOME": "/nonexistent"})
    served = service.load_version(settings, service.catalog(settings).default)
    reference = served.version.reference
    shift = standard_deviation(reference["features"][SHIFTED])
    rng = np.random.default_rng(seed)
    week = Week(start)
    flag_ids: list[tuple[str, int, int]] = []
    for day in range(DAYS):
        moved = shift if day >= DRIFT_FROM else 0.0

        def at(minute: int, day=day) -> datetime:
            return start + timedelta(days=day, hours=1 + minute // 60, minutes=minute % 60)

        def queue(pending, when: datetime) -> str:
            pending.fields["created_at"] = when
            return recorder.queue(pending)

        for call in range(API_CALLS):
            frame = draw(reference, API_ROWS, rng, moved)
            if call == 0:  # one refused row a day: a missing value
                frame.loc[0, "sepal_width"] = None
            result = service.predict_frame(served, frame, None, None)
            table = result.table
            answers = [
                {"prediction": p if not e else None, "error": e or None}
                for p, e in zip(table["prediction"], table["error"], strict=True)
            ]
            rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
            pending = records.of_answer(served, "token ci", rows, answers, 0.002 + 0.001 * (call % 5), 100)
            pid = queue(pending, at(call * 40))
            if day >= 5 and call % 3 == 0:
                good = [i for i, a in enumerate(answers) if not a["error"]]
                flag_ids += [(pid, i, day) for i in good[:2]]
        for form in range(FORMS):
            frame = draw(reference, 1, rng, moved)
            table = service.predict_frame(served, frame).table
            queue(records.of_table(served, "form", "ana@example.com", table, 0.003, 1), at(form * 90 + 7))
        frame = draw(reference, BATCH_ROWS, rng, moved)
        table = service.predict_frame(served, frame).table
        queue(records.of_table(served, "batch", "ana@example.com", table, 0.05, 0, "week.csv"), at(600))
        week.counts[(day, "api")] = (API_CALLS, API_CALLS * API_ROWS)
        week.counts[(day, "form")] = (FORMS, FORMS)
        week.counts[(day, "batch")] = (1, BATCH_ROWS)
        week.refused[day] = 1
    assert recorder.flush(60), "the seeded week was not written within 60 s"
    for pid, row, day in flag_ids:
        recorder.add_feedback(pid, "ana@example.com", label="virginica", row=row)
        week.flagged[day] = week.flagged.get(day, 0) + 1
    return week


def week_start(days_ago: int) -> datetime:
    """Midnight UTC `days_ago` days before today."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def rolling_start() -> datetime:
    """The start of a week that is the Monitor's default range (the 7 days up to the current hour's end): every
    seeded time falls in it, the last ones about three hours ago, and the last day is the alerts' day."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return hour - timedelta(days=DAYS) + timedelta(hours=1)


def seeded_file(folder: Path) -> tuple[Path, Week]:
    """An SQLite history holding the rolling drifting week (the file closed and checkpointed: copy it freely)."""
    from dashboard.history import database

    path = folder / "history.sqlite3"
    recorder = Recorder(database.database_url(f"sqlite:///{path}", None))
    try:
        week = seed_week(recorder, rolling_start())
    finally:
        recorder.close()
    engine = database.create(database.database_url(f"sqlite:///{path}", None))
    with engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path, week


def copy_history(seeded: Path, folder: Path) -> Path:
    """A private copy of a seeded history file (a server or a page writes to its own)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / seeded.name
    shutil.copyfile(seeded, target)
    return target
