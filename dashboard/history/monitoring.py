"""Monitoring from the history: hourly counts kept as predictions are written, and the Monitor tab's figures read
from them with SQL aggregates.

Writing: each record gets a digest (records.row_of calls `digest`): its call and latency bucket, rows and refused
rows, its answers per class (or per value bucket for a regression), and per input feature how many recorded values
fell in each of the reference's bins (or choices) and outside the training range. The writer adds the digests of a
batch to `monitor_counts` in the transaction that inserts its predictions (`add`), one upsert per (hour, model,
version, door, metric, feature, key). Reading (`monitor`): one GROUP BY over those rows for the range (a week of a
million predictions is a few thousand rows), and one over the reports joined to their predictions; per day the
drift of the recorded inputs against the reference with the Batch tab's calibrated verdicts (prediction.drift).
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import sqlalchemy as sa

from dashboard.history.queries import Read
from dashboard.history.tables import feedback, monitor_counts, predictions
from dashboard.prediction import drift as reference_drift

Metric = Literal["calls", "rows", "errors", "latency", "output", "bin", "outside"]
Bucket = Literal["hour", "day"]
# latency buckets (milliseconds, upper bounds): 1 ms steps up to 10 ms, then coarser
LATENCY_MS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, math.inf)
GAMMA = 1.1  # a regression's values are counted in buckets (GAMMA**(k-1), GAMMA**k]: quantiles within ±5%
TINY = 1e-12  # |value| below this counts as 0
TOP_CORRECTED = 10
SMALL = 32  # inputs of at most this many values are counted without numpy
Digest = list[list[Any]]  # [metric, feature, key, count, total]


# ----- writing -----


def digest(
    duration_ms: float,
    rows: int,
    errors: int,
    output_type: str,
    answers: Sequence[Any],
) -> Digest:
    """One record's contribution to the hourly counts but its inputs' bins (input_bins): its call, latency bucket,
    rows, refused rows, and its predicted rows' answers (labels, or values for a regression)."""
    found: Digest = [
        ["calls", "", "", 1, float(duration_ms)],
        ["rows", "", "", int(rows), 0.0],
        ["errors", "", "", int(errors), 0.0],
        ["latency", "", latency_key(duration_ms), 1, 0.0],
    ]
    counts: dict[str, int] = defaultdict(int)
    for answer in answers:
        counts[value_key(answer) if output_type == "regression" else str(answer)] += 1
    return found + [["output", "", key, n, 0.0] for key, n in counts.items()]


def latency_key(duration_ms: float) -> str:
    bound = LATENCY_MS[bisect.bisect_left(LATENCY_MS, float(duration_ms))]
    return "inf" if math.isinf(bound) else f"{bound:g}"


def value_key(value: Any) -> str:
    """A regression value's bucket: "0", or the sign and k of (GAMMA**(k-1), GAMMA**k]."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "nan"
    if not math.isfinite(number):
        return "nan"
    if abs(number) < TINY:
        return "0"
    k = math.ceil(math.log(abs(number)) / math.log(GAMMA))
    return f"{'-' if number < 0 else '+'}{k}"


def key_value(key: str) -> float:
    """The middle of a value bucket (inverse of value_key); NaN for "nan"."""
    if key == "0":
        return 0.0
    if key == "nan":
        return math.nan
    magnitude = 2 * GAMMA ** int(key[1:]) / (GAMMA + 1)
    return -magnitude if key[0] == "-" else magnitude


def input_bins(inputs: Mapping[str, Sequence[Any]], reference: Mapping[str, Any]) -> Digest:
    """Per reference feature present in inputs: values per reference bin (numbers) or choice (categories), and how
    many fell outside the training range or choices."""
    found: Digest = []
    for name, stats in (reference.get("features") or {}).items():
        values = inputs.get(name)
        if values is None:
            continue
        if stats["type"] == "number":
            if len(values) <= SMALL:  # an API call's few rows: plain Python (numpy's per-call cost dominates)
                numbers = [x for x in map(_number, values) if math.isfinite(x)]
                if not numbers:
                    continue
                bins: dict[int, int] = defaultdict(int)
                for x in numbers:
                    bins[bisect.bisect_right(stats["edges"], x)] += 1
                found += [["bin", name, str(index), n, 0.0] for index, n in bins.items()]
                outside = sum(1 for x in numbers if x < stats["min"] or x > stats["max"])
                found.append(["outside", name, "", outside, 0.0])
                continue
            given = np.asarray(values)
            if given.dtype.kind in "fiu":  # a table's number column: no conversion per value
                numbers = given.astype(float)
            else:
                numbers = np.array([_number(v) for v in values], dtype=float)
            numbers = numbers[np.isfinite(numbers)]
            if not numbers.size:
                continue
            bins = np.searchsorted(np.asarray(stats["edges"], dtype=float), numbers, side="right")
            for index, n in zip(*np.unique(bins, return_counts=True), strict=True):
                found.append(["bin", name, str(int(index)), int(n), 0.0])
            outside = int(np.sum((numbers < stats["min"]) | (numbers > stats["max"])))
        else:
            counts: dict[str, int] = defaultdict(int)
            for value in values:
                if value is not None:
                    counts[str(value)[:255]] += 1
            if not counts:
                continue
            choices = stats["frequencies"]
            found += [["bin", name, key, n, 0.0] for key, n in counts.items() if key in choices]
            outside = sum(n for key, n in counts.items() if key not in choices)
        found.append(["outside", name, "", outside, 0.0])
    return found


def _number(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def hour_of(when: datetime) -> datetime:
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def add(connection: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add the digests of written rows (their "monitor" entries) to the hourly counts, in the caller's transaction:
    one upsert per key, in key order (two writers never wait for each other in a cycle)."""
    sums: dict[tuple, list[float]] = {}
    for row in rows:
        found = row.get("monitor")
        if not found:
            continue
        head = (row["model"] or "", row["version"], hour_of(row["created_at"]), row["source"])
        for metric, feature, key, count, total in found:
            kept = sums.setdefault((*head, metric, feature, key), [0, 0.0])
            kept[0] += count
            kept[1] += total
    if not sums:
        return
    names = ("model", "version", "hour", "source", "metric", "feature", "key")
    values = [{**dict(zip(names, k, strict=True)), "count": v[0], "total": v[1]} for k, v in sorted(sums.items())]
    if connection.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as upsert
    else:
        from sqlalchemy.dialects.postgresql import insert as upsert
    statement = upsert(monitor_counts)
    statement = statement.on_conflict_do_update(
        index_elements=list(names),
        set_={
            "count": monitor_counts.c.count + statement.excluded.count,
            "total": monitor_counts.c.total + statement.excluded.total,
        },
    )
    connection.execute(statement, values)


def prune(connection: sa.Connection, cutoff: datetime) -> None:
    """Delete the hourly counts older than cutoff (HISTORY_RETENTION_DAYS, with the predictions)."""
    connection.execute(monitor_counts.delete().where(monitor_counts.c.hour < hour_of(cutoff)))


# ----- reading -----


@dataclass(frozen=True)
class Scope:
    """Which predictions a monitor covers: one model's version over [since, until)."""

    model: str  # "" for a dashboard's only, unnamed model
    version: str
    since: datetime
    until: datetime
    model_is_default: bool = False  # rows without a model name count as this model's
    bucket: Bucket = "day"


@dataclass(frozen=True)
class Monitor:
    """What the Monitor tab and GET /api/v1/monitor show; every list is a table of plain records (JSON-safe)."""

    scope: Scope
    output_type: str
    totals: dict[str, Any]
    volume: list[dict[str, Any]]  # per bucket and door: predictions, rows, refused rows
    latency: list[dict[str, Any]]  # per bucket: calls, p50/p90/p99 milliseconds
    outputs: list[dict[str, Any]]  # per bucket: class shares, or the regression's quantiles
    drift: list[dict[str, Any]]  # per day and feature (and "all" for the range): psi, thresholds, verdict
    feedback: list[dict[str, Any]]  # per bucket: rows, flagged rows, agreement
    corrected: list[dict[str, Any]]  # the answers corrected most: answer, corrected to, reports
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        s = self.scope
        return {
            "model": s.model or None,
            "version": s.version,
            "since": iso(s.since),
            "until": iso(s.until),
            "bucket": s.bucket,
            "output_type": self.output_type,
            "totals": self.totals,
            "volume": self.volume,
            "latency": self.latency,
            "outputs": self.outputs,
            "drift": self.drift,
            "feedback": self.feedback,
            "corrected": self.corrected,
            "notes": self.notes,
        }


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def monitor(read: Read, dialect: str, scope: Scope, output_type: str, reference: Mapping[str, Any] | None) -> Monitor:
    """The monitor of scope (see the module docstring): two queries, everything else on their few rows."""
    models = [scope.model, ""] if scope.model_is_default and scope.model else [scope.model]
    counted = read(
        sa.select(
            monitor_counts.c.hour,
            monitor_counts.c.source,
            monitor_counts.c.metric,
            monitor_counts.c.feature,
            monitor_counts.c.key,
            sa.func.sum(monitor_counts.c.count).label("count"),
            sa.func.sum(monitor_counts.c.total).label("total"),
        )
        .where(
            monitor_counts.c.model.in_(models),
            monitor_counts.c.version == scope.version,
            monitor_counts.c.hour >= hour_of(scope.since),
            monitor_counts.c.hour < scope.until,
        )
        .group_by(
            monitor_counts.c.hour,
            monitor_counts.c.source,
            monitor_counts.c.metric,
            monitor_counts.c.feature,
            monitor_counts.c.key,
        )
    )
    for row in counted:
        row["hour"] = hour_of(_as_time(row["hour"]))
        row["count"] = int(row["count"] or 0)
        row["total"] = float(row["total"] or 0.0)
    by_metric: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in counted:
        by_metric[row["metric"]].append(row)
    volume = _volume(by_metric, scope.bucket)
    totals = {
        "predictions": sum(r["count"] for r in by_metric["calls"]),
        "rows": sum(r["count"] for r in by_metric["rows"]),
        "refused_rows": sum(r["count"] for r in by_metric["errors"]),
    }
    totals["refused_share"] = round(totals["refused_rows"] / totals["rows"], 4) if totals["rows"] else 0.0
    reports, corrected = _feedback(read, dialect, scope, models, output_type, by_metric["rows"])
    totals["flagged_rows"] = sum(r["flagged"] for r in reports)
    totals["agreement"] = round(1 - totals["flagged_rows"] / totals["rows"], 4) if totals["rows"] else None
    totals["agreement_change"] = agreement_change(reports)
    notes = []
    if not reference:
        notes.append("this version has no published reference: drift is not measured (publish with --reference)")
    return Monitor(
        scope,
        output_type,
        totals,
        volume,
        _latency(by_metric["latency"], scope.bucket),
        _outputs(by_metric["output"], scope.bucket, output_type),
        _drift(by_metric["bin"], by_metric["outside"], reference) if reference else [],
        reports,
        corrected,
        notes,
    )


def _as_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def bucket_of(hour: datetime, bucket: Bucket) -> datetime:
    return hour if bucket == "hour" else hour.replace(hour=0)


def _volume(by_metric: Mapping[str, list[dict[str, Any]]], bucket: Bucket) -> list[dict[str, Any]]:
    table: dict[tuple, dict[str, Any]] = {}
    for metric, column in (("calls", "predictions"), ("rows", "rows"), ("errors", "refused_rows")):
        for row in by_metric.get(metric, ()):
            key = (bucket_of(row["hour"], bucket), row["source"])
            entry = table.setdefault(
                key,
                {
                    "time": iso(key[0]),
                    "door": key[1],
                    "predictions": 0,
                    "rows": 0,
                    "refused_rows": 0,
                    "milliseconds": 0.0,
                },
            )
            entry[column] += row["count"]
            if metric == "calls":
                entry["milliseconds"] += row["total"]
    for entry in table.values():
        entry["mean_ms"] = round(entry.pop("milliseconds") / entry["predictions"], 3) if entry["predictions"] else None
    return [table[k] for k in sorted(table)]


def _latency(rows: list[dict[str, Any]], bucket: Bucket) -> list[dict[str, Any]]:
    """Per bucket of time: p50, p90, p99 of the calls' milliseconds, interpolated within the latency buckets."""
    counts: dict[datetime, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        counts[bucket_of(row["hour"], bucket)][row["key"]] += row["count"]
    found = []
    for when in sorted(counts):
        histogram = [counts[when].get("inf" if math.isinf(b) else f"{b:g}", 0) for b in LATENCY_MS]
        entry: dict[str, Any] = {"time": iso(when), "calls": sum(histogram)}
        for q in (0.5, 0.9, 0.99):
            entry[f"p{round(q * 100)}_ms"] = histogram_quantile(q, histogram)
        found.append(entry)
    return found


def histogram_quantile(q: float, counts: Sequence[int]) -> float | None:
    """The q-quantile of a latency histogram (counts per LATENCY_MS bucket), linear within a bucket as Prometheus's
    histogram_quantile does; a quantile in the open last bucket is its lower bound."""
    total = sum(counts)
    if not total:
        return None
    rank, seen = q * total, 0
    for index, n in enumerate(counts):
        if seen + n >= rank and n:
            lower = LATENCY_MS[index - 1] if index else 0.0
            upper = LATENCY_MS[index]
            if math.isinf(upper):
                return float(lower)
            return round(lower + (upper - lower) * (rank - seen) / n, 3)
        seen += n
    return float(LATENCY_MS[-2])


def _outputs(rows: list[dict[str, Any]], bucket: Bucket, output_type: str) -> list[dict[str, Any]]:
    counts: dict[datetime, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        counts[bucket_of(row["hour"], bucket)][row["key"]] += row["count"]
    found = []
    for when in sorted(counts):
        seen = counts[when]
        total = sum(seen.values())
        if output_type != "regression":
            for label in sorted(seen, key=lambda k: -seen[k]):
                found.append({"time": iso(when), "label": label, "count": seen[label], "share": seen[label] / total})
            continue
        entry: dict[str, Any] = {"time": iso(when), "count": total}
        values = sorted((key_value(k), n) for k, n in seen.items() if k != "nan")
        for q in (0.05, 0.25, 0.5, 0.75, 0.95):
            entry[f"p{round(q * 100)}"] = _weighted_quantile(values, q)
        found.append(entry)
    return found


def _weighted_quantile(values: list[tuple[float, int]], q: float) -> float | None:
    total = sum(n for _, n in values)
    if not total:
        return None
    seen = 0
    for value, n in values:
        seen += n
        if seen >= q * total:
            return round(value, 6)
    return round(values[-1][0], 6)


def coarse_rows(rows: int) -> int:
    """rows rounded down to a step of a ×√2 grid (30, 42, 60, 84, ...): the calibrated thresholds are simulated once
    per grid step, not per count (fewer rows give slightly higher thresholds: never a false alarm)."""
    if rows < reference_drift.MIN_ROWS:
        return rows
    step = math.floor(2 * math.log2(rows / reference_drift.MIN_ROWS) + 1e-9)
    return max(reference_drift.MIN_ROWS, math.floor(reference_drift.MIN_ROWS * 2 ** (step / 2) + 1e-9))


def _drift(
    bins: list[dict[str, Any]], outside: list[dict[str, Any]], reference: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Per day and feature, and per feature over the whole range (time "all"): the PSI of the recorded values
    against the reference, its calibrated thresholds and verdict (prediction.drift; none under MIN_ROWS values)."""
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    out: dict[tuple[str, str], int] = defaultdict(int)
    for row in bins:
        for when in (iso(bucket_of(row["hour"], "day")), "all"):
            counts[(when, row["feature"])][row["key"]] += row["count"]
    for row in outside:
        for when in (iso(bucket_of(row["hour"], "day")), "all"):
            out[(when, row["feature"])] += row["count"]
    found = []
    features = reference.get("features") or {}
    for (when, name), seen in sorted(counts.items(), key=lambda kv: (kv[0][0] == "all", kv[0])):
        stats = features.get(name)
        if stats is None:
            continue
        if stats["type"] == "number":
            keys = [str(i) for i in range(len(stats["counts"]))]
            expected_counts = tuple(int(c) for c in stats["counts"])
        else:
            keys = list(stats["frequencies"])
            expected_counts = tuple(int(stats["frequencies"][k]) for k in keys)
        inside = sum(seen.get(k, 0) for k in keys)
        rows = inside + out.get((when, name), 0) if stats["type"] == "category" else inside
        expected = np.asarray(expected_counts, dtype=float) / max(1, sum(expected_counts))
        actual = np.asarray([seen.get(k, 0) for k in keys], dtype=float) / max(1, rows)
        value = reference_drift.psi(expected, actual)
        entry: dict[str, Any] = {
            "time": when,
            "feature": name,
            "rows": rows,
            "psi": round(value, 4),
            "outside_share": round(out.get((when, name), 0) / rows, 4) if rows else 0.0,
            "moderate_at": None,
            "major_at": None,
            "verdict": None,
        }
        if rows >= reference_drift.MIN_ROWS:
            moderate_at, major_at = reference_drift.thresholds(expected_counts, coarse_rows(rows))
            entry.update(
                moderate_at=round(moderate_at, 4),
                major_at=round(major_at, 4),
                verdict=reference_drift.verdict(value, moderate_at, major_at),
            )
        found.append(entry)
    return found


def _bucket_sql(column: Any, dialect: str, bucket: Bucket) -> Any:
    """column truncated to its hour or day, as text (sorted and compared as is)."""
    if dialect == "sqlite":  # stored as "YYYY-MM-DD HH:MM:SS.ffffff" in UTC
        return sa.func.substr(column, 1, 13 if bucket == "hour" else 10)
    return sa.func.to_char(sa.func.date_trunc(bucket, sa.func.timezone("UTC", column)), "YYYY-MM-DD HH24")


def _feedback(
    read: Read,
    dialect: str,
    scope: Scope,
    models: list[str],
    output_type: str,
    rows: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per bucket of prediction time: rows predicted, rows reported wrong, agreement (1 - flagged / rows); and the
    answers corrected most (classifiers: which answer was corrected to which label)."""
    # The reports are few and the predictions many: the join starts from the reports of the range (a report is made
    # after its prediction) and finds each prediction by its id. The predictions' own columns are wrapped in
    # coalesce() so that no planner starts from their indexes instead (SQLite did: a scan of a million predictions
    # for no report, 1.1 s); the unnamed model ("") is a NULL name.
    created = sa.func.coalesce(predictions.c.created_at, predictions.c.created_at)
    where = [
        feedback.c.created_at >= scope.since,
        sa.func.coalesce(predictions.c.model, "").in_(models),
        sa.func.coalesce(predictions.c.version, predictions.c.version) == scope.version,
        created >= scope.since,
        created < scope.until,
    ]
    when = _bucket_sql(predictions.c.created_at, dialect, scope.bucket).label("bucket")
    flagged = read(
        sa.select(
            when,
            sa.func.count(sa.distinct(feedback.c.prediction_id + ":" + sa.cast(feedback.c.row, sa.String))).label(
                "flagged"
            ),
        )
        .select_from(feedback.join(predictions))
        .where(*where)
        .group_by(when)
    )
    made: dict[datetime, int] = defaultdict(int)
    for row in rows:
        made[bucket_of(row["hour"], scope.bucket)] += row["count"]
    reported = {_bucket_time(r["bucket"], scope.bucket): int(r["flagged"]) for r in flagged}
    series = []
    for moment in sorted(set(made) | set(reported)):
        predicted, wrong = made.get(moment, 0), reported.get(moment, 0)
        series.append(
            {
                "time": iso(moment),
                "rows": predicted,
                "flagged": wrong,
                "agreement": round(1 - wrong / predicted, 4) if predicted else None,
            }
        )
    corrected: list[dict[str, Any]] = []
    if output_type != "regression":
        top = read(
            sa.select(feedback.c.answer, feedback.c.label, sa.func.count().label("reports"))
            .select_from(feedback.join(predictions))
            .where(*where, feedback.c.label.is_not(None))
            .group_by(feedback.c.answer, feedback.c.label)
            .order_by(sa.func.count().desc(), feedback.c.label)
            .limit(TOP_CORRECTED)
        )
        corrected = [{"answer": r["answer"], "corrected_to": r["label"], "reports": int(r["reports"])} for r in top]
    return series, corrected


def agreement_change(series: list[dict[str, Any]]) -> float | None:
    """The trend of agreement: its value over the later half of the periods minus the earlier half's (None with
    fewer than two periods of predictions)."""
    made = [entry for entry in series if entry["rows"]]
    if len(made) < 2:
        return None
    half = len(made) // 2

    def agreement(entries: list[dict[str, Any]]) -> float:
        return 1 - sum(e["flagged"] for e in entries) / sum(e["rows"] for e in entries)

    return round(agreement(made[half:]) - agreement(made[:half]), 4)


def _bucket_time(text: str, bucket: Bucket) -> datetime:
    text = str(text)
    if bucket == "hour" or len(text) > 10:
        moment = datetime.strptime(text[:13], "%Y-%m-%d %H")
        return moment.replace(tzinfo=UTC) if bucket == "hour" else moment.replace(hour=0, tzinfo=UTC)
    return datetime.strptime(text[:10], "%Y-%m-%d").replace(tzinfo=UTC)


def default_range(now: datetime | None = None, days: int = 7) -> tuple[datetime, datetime]:
    """The last `days` whole days up to the end of the current hour."""
    until = hour_of(now or datetime.now(UTC)) + timedelta(hours=1)
    return until - timedelta(days=days), until
