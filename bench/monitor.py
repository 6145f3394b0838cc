"""The Monitor tab over a large history (issue 28): `python -m bench.monitor [--quick] [--rows N]`.

Seeds N recorded predictions (1,000,000; --quick: 100,000) of the demo iris version, spread over a week, into SQLite
and into PostgreSQL through the writer's own insert (records.row_of + records.insert: the history rows and their
hourly counts, batches of 2,000 in one transaction each); a prediction is one API call of one row drawn from the
training data's bins (tests/support/monitor.py), its last two days drifting (petal_length one training deviation
higher). Then, on each database, cold (a new recorder, no cached monitor, no cached drift thresholds):

- the monitor of the week (history.monitoring: the SQL aggregates and everything computed on them), 3 times;
- the Monitor tab opening: AppTest runs the page with the tab open on that database (the goal: under 2 s);
- the baseline, in the same run: the per-day volume and mean latency alone, aggregated from the predictions table
  itself (one GROUP BY over N rows: what reading the history without the hourly counts costs before any JSON is
  parsed), and reading the week's inputs into pandas for the drift (the full-table read the counts avoid), timed
  on the first 100,000 rows and scaled.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from tests.support.monitor import draw, standard_deviation
from tests.support.postgres import AVAILABLE, start_postgres

BATCH = 2000


def line(figure: str, value: str, note: str = "") -> None:
    print(f"{figure:<60} {value:>12}  {note}", flush=True)


def seed(url: str, rows: int, served) -> float:
    """rows predictions over the week before now, written as the writer writes them; returns seconds taken."""
    import sqlalchemy as sa

    from dashboard.history import database, records
    from dashboard.history.monitoring import default_range

    engine = database.create(database.database_url(url, None))
    database.migrate(engine)
    reference = served.version.reference["features"]
    names = served.schema.names
    rng = np.random.default_rng(28)
    # inside the Monitor's default range (the week up to the current hour's end) for the next hour: seeding takes
    # minutes, and the range moves on at every full hour
    start = default_range()[0] + timedelta(hours=2)
    step = (datetime.now(UTC) - start) / rows
    labels = list(served.schema.output.labels)
    started = time.perf_counter()
    for first in range(0, rows, BATCH):
        count = min(BATCH, rows - first)
        drifting = first > rows * 5 // 7  # the last two days: petal_length one training deviation higher
        shift = standard_deviation(reference["petal_length"]) if drifting else 0.0
        columns = draw(served.version.reference, count, rng, shift)  # drawn from the training data's bins
        answers_at = rng.integers(0, len(labels), count)
        batch = []
        for i in range(count):
            index = first + i
            row = {name: float(columns[name].iat[i]) for name in names}
            error = "sepal_width: missing value" if index % 97 == 0 else None
            answer = {"prediction": None if error else labels[answers_at[i]], "error": error}
            pending = records.of_answer(served, "bench", [row], [answer], 0.001 + (index % 7) * 0.0007, 100)
            pending.fields["created_at"] = start + step * index
            batch.append(records.row_of(pending))
        with engine.begin() as connection:
            records.insert(connection, batch)
    seconds = time.perf_counter() - started
    with engine.connect() as connection:
        counted = connection.execute(sa.text("SELECT count(*) FROM predictions")).scalar_one()
        hourly = connection.execute(sa.text("SELECT count(*) FROM monitor_counts")).scalar_one()
    engine.dispose()
    line("  predictions in the history / hourly count rows", f"{counted:,}", f"{hourly:,} monitor_counts rows")
    return seconds


def measure(name: str, url: str, rows: int, served) -> dict[str, float]:
    import sqlalchemy as sa

    from dashboard import history
    from dashboard.history import database
    from dashboard.history.monitoring import Scope, default_range
    from dashboard.prediction import drift

    print(f"\n{name}", flush=True)
    seconds = seed(url, rows, served)
    line("  seeding through records.insert", f"{seconds:.1f} s", f"{rows / seconds:,.0f} predictions/s")
    since, until = default_range()
    scope = Scope(served.version.model_name, served.label, since, until, True)
    figures = {}
    times = []
    for _ in range(3):
        drift._null_psi.cache_clear()
        recorder = history.Recorder(database.database_url(url, None))
        recorder.connect().close()  # a serving process's recorder is up already: its schema check is not timed
        started = time.perf_counter()
        found = recorder.monitor(scope, served.schema.output.type, served.version.reference)
        times.append(time.perf_counter() - started)
        recorder.close()
    if found.totals["predictions"] != rows:
        line("  NOTE: the monitor counted", f"{found.totals['predictions']:,}", f"of {rows:,} (the range moved on)")
    figures["monitor"] = min(times)
    line("  monitor of the week, cold (best of 3)", f"{min(times) * 1000:.0f} ms", f"runs {_ms(times)}")
    verdicts = {d["feature"]: d["verdict"] for d in found.drift if d["time"] == "all"}
    line("  drift verdicts over the week", "", ", ".join(f"{k} {v}" for k, v in verdicts.items()))
    daily = [d["verdict"] for d in found.drift if d["time"] != "all" and d["feature"] == "petal_length"]
    line("  petal_length per day", "", " ".join(str(v) for v in daily))
    figures["tab"] = tab_opening(url)
    line("  Monitor tab opens (AppTest page run, tab open, cold)", f"{figures['tab']:.2f} s", "goal: < 2 s")
    engine = database.create(database.database_url(url, None))
    day = (
        sa.func.substr(sa.text("created_at"), 1, 10)
        if engine.dialect.name == "sqlite"
        else sa.func.date_trunc("day", sa.text("created_at"))
    )
    query = sa.select(day.label("day"), sa.text("source"), sa.func.count(), sa.func.avg(sa.text("duration_ms")))
    query = query.select_from(sa.text("predictions")).group_by(sa.text("1"), sa.text("source"))
    started = time.perf_counter()
    with engine.connect() as connection:
        connection.execute(query).fetchall()
    figures["baseline"] = time.perf_counter() - started
    line(
        "  baseline: volume + mean latency from the predictions table",
        f"{figures['baseline'] * 1000:.0f} ms",
        f"one GROUP BY over {rows:,} rows",
    )
    import pandas as pd

    sample = min(rows, 100_000)
    started = time.perf_counter()
    with engine.connect() as connection:
        inputs = connection.execute(sa.text(f"SELECT inputs FROM predictions LIMIT {sample}")).scalars().all()
    frame = pd.DataFrame([row for kept in inputs for row in (kept if isinstance(kept, list) else json.loads(kept))])
    spent = (time.perf_counter() - started) * rows / sample
    figures["baseline_read"] = spent
    line(
        "  baseline: the inputs read into pandas for drift",
        f"{spent:.1f} s",
        f"{len(frame):,} rows in {sample / rows:.0%} of the history, scaled",
    )
    engine.dispose()
    return figures


def tab_opening(url: str) -> float:
    """Seconds of the page run that opens the Monitor tab (AppTest, the page's own code), after a first run."""
    from streamlit.testing.v1 import AppTest

    from dashboard.prediction import drift
    from tests.support.apptest import APP

    os.environ["DATABASE_URL"] = url
    at = AppTest.from_file(APP, default_timeout=120).run()
    first = time.perf_counter()
    at.run()  # a rerun without the tab: the rest of the page's cost
    page_only = time.perf_counter() - first
    drift._null_psi.cache_clear()
    at.session_state["tab"] = "Monitor"
    started = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - started
    assert not at.exception, at.exception
    shown = {m.label: m.value for m in at.main.metric}
    line("  the tab's headline", shown.get("Predictions", "?"), f"rerun without the tab: {page_only:.2f} s")
    return seconds


def _ms(times: list[float]) -> str:
    return ", ".join(f"{t * 1000:.0f}" for t in times) + " ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 predictions instead of 1,000,000")
    parser.add_argument("--rows", type=int, default=None)
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    os.environ["HOME"] = tempfile.mkdtemp()
    os.environ["MODEL_CACHE_DIR"] = str(Path(os.environ["HOME"]) / "cache")
    from dashboard import service

    settings = service.settings()
    served = service.load_version(settings, service.catalog(settings).default)
    folder = Path(tempfile.mkdtemp())
    print(f"Monitor over {rows:,} recorded predictions (a week, the last two days drifting)")
    measure("SQLite", f"sqlite:///{folder / 'history.sqlite3'}", rows, served)
    if AVAILABLE:
        postgres = start_postgres()
        try:
            measure("PostgreSQL", postgres.url, rows, served)
        finally:
            postgres.remove()
    else:
        print("PostgreSQL: not installed here (/usr/lib/postgresql/15/bin); skipped")


if __name__ == "__main__":
    main()
