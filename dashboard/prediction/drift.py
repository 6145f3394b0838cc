"""Is this data like the training data? Reference statistics of the training set, kept in the manifest entry
(a few KB, no raw rows), and the drift of an uploaded table against them.

Per numeric feature: fixed histogram bin edges (the training deciles) with counts, quantiles, min and max; per
category feature: the frequency of each choice; and the row count. Drift per feature: the population stability
index (PSI) over the reference bins, the share of values outside the training range, and a verdict that accounts
for the row count.

PSI over ten bins is mostly sampling noise in small files: 30 rows drawn from the training data itself give a PSI
above the usual "major" band (0.25) about half the time. So each threshold is the larger of the usual band
(0.1 moderate, 0.25 major) and the PSI that files of this many rows drawn from the training distribution exceed
by chance only 1 time in 100 (moderate) or 1 in 1,000 (major): PSI's null distribution at that row count,
simulated from the reference counts (both the reference and the file are samples, so both are drawn).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from dashboard.errors import SchemaError
from dashboard.prediction.images import statistic_names
from dashboard.prediction.schema import Schema

Verdict = Literal["stable", "moderate", "major"]
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
BINS = 10
MIN_ROWS = 30  # fewer uploaded rows than this get no verdict
EPSILON = 1e-4  # empty bins: a floor on the shares, as PSI implementations do
MODERATE, MAJOR = 0.1, 0.25  # the usual PSI bands: the thresholds for large files
CHANCE_MODERATE, CHANCE_MAJOR = 0.01, 0.001  # how often a file from the training distribution may cross them
NULL_DRAWS = 10_000  # simulated files per (reference counts, row count): a 0.1% quantile from ~10 draws


@dataclass(frozen=True)
class FeatureDrift:
    """One feature of an uploaded table against the training data."""

    feature: str
    psi: float
    outside: float  # share of the table's values outside the training range (numbers) or choices never seen
    verdict: Verdict
    edges: tuple[float, ...]  # numeric: the bins (for the overlaid histogram); categories: ()
    expected: tuple[float, ...]  # training shares per bin or choice
    actual: tuple[float, ...]  # this table's shares
    rows: int = 0  # values compared
    moderate_at: float = MODERATE  # the PSI thresholds at this row count (what the PSI was compared with)
    major_at: float = MAJOR


def verdict(psi: float, moderate_at: float = MODERATE, major_at: float = MAJOR) -> Verdict:
    """stable below moderate_at <= moderate < major_at <= major."""
    return "stable" if psi < moderate_at else "moderate" if psi < major_at else "major"


def thresholds(counts: tuple[int, ...], rows: int) -> tuple[float, float]:
    """(moderate, major) PSI thresholds for a file of `rows` values against reference bins with these counts."""
    null = _null_psi(tuple(int(c) for c in counts), int(rows))
    return (
        max(MODERATE, float(np.quantile(null, 1 - CHANCE_MODERATE))),
        max(MAJOR, float(np.quantile(null, 1 - CHANCE_MAJOR))),
    )


@lru_cache(maxsize=256)
def _null_psi(counts: tuple[int, ...], rows: int) -> np.ndarray:
    """PSI of NULL_DRAWS simulated files of `rows` values against a simulated reference of the same size, both
    drawn from the reference shares (seeded: the same file always gets the same verdict)."""
    total = sum(counts)
    shares = np.asarray(counts, dtype=float) / max(1, total)
    rng = np.random.default_rng(20261202)
    reference = rng.multinomial(max(1, total), shares, size=NULL_DRAWS) / max(1, total)
    sample = rng.multinomial(max(1, rows), shares, size=NULL_DRAWS) / max(1, rows)
    e, a = np.maximum(reference, EPSILON), np.maximum(sample, EPSILON)
    return np.sum((a - e) * np.log(a / e), axis=1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors: sum((a - e) * ln(a / e)), shares floored at EPSILON."""
    e = np.maximum(np.asarray(expected, dtype=float), EPSILON)
    a = np.maximum(np.asarray(actual, dtype=float), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def compute(columns: Mapping[str, np.ndarray], schema: Schema) -> dict[str, Any]:
    """Reference statistics from the training rows (validated values: floats for numbers, text for categories)."""
    features: dict[str, Any] = {}
    rows = 0
    for feature in schema.features:
        values = np.asarray(columns[feature.name])
        rows = len(values)
        if feature.type == "number":
            finite = values[np.isfinite(values.astype(float))].astype(float)
            if finite.size == 0:
                raise SchemaError(f"the reference has no numeric values for {feature.name!r}")
            inner = np.unique(np.quantile(finite, np.linspace(0, 1, BINS + 1)[1:-1]))
            edges = [-np.inf, *inner.tolist(), np.inf]
            counts, _ = np.histogram(finite, bins=edges)
            features[feature.name] = {
                "type": "number",
                "edges": [float(e) for e in inner],  # the outer edges are -inf and +inf
                "counts": [int(c) for c in counts],
                "quantiles": {str(q): float(np.quantile(finite, q)) for q in QUANTILES},
                "min": float(finite.min()),
                "max": float(finite.max()),
            }
        elif feature.type == "category":
            texts = [str(v) for v in values]
            features[feature.name] = {
                "type": "category",
                "frequencies": {str(c): texts.count(str(c)) for c in feature.choices},
            }
    return {"rows": rows, "features": features}


def check(reference: Mapping[str, Any], schema: Schema, where: str) -> None:
    """Refuse a reference whose features are not the schema's, naming those that differ."""
    have = set((reference.get("features") or {}).keys())
    want = {f.name for f in schema.features if f.type not in ("text", "image")}
    want |= {name for f in schema.images for name in statistic_names(f.name)}
    if have != want:
        missing, extra = sorted(want - have), sorted(have - want)
        raise SchemaError(
            f"{where}: the reference's features differ from the schema's"
            + (f"; missing from the reference: {', '.join(missing)}" if missing else "")
            + (f"; not in the schema: {', '.join(extra)}" if extra else "")
        )


def center(reference: Mapping[str, Any] | None, feature: str) -> Any:
    """The training median of a number, or the most frequent choice of a category; None when unknown."""
    stats = (reference or {}).get("features", {}).get(feature)
    if not stats:
        return None
    if stats["type"] == "number":
        return stats["quantiles"]["0.5"]
    frequencies = stats["frequencies"]
    return max(frequencies, key=frequencies.get) if frequencies else None


def outside_range(reference: Mapping[str, Any] | None, feature: str, value: float) -> bool:
    stats = (reference or {}).get("features", {}).get(feature)
    return bool(stats and stats["type"] == "number" and not stats["min"] <= value <= stats["max"])


def drift(columns: Mapping[str, np.ndarray], good: np.ndarray, reference: Mapping[str, Any]) -> list[FeatureDrift]:
    """Each reference feature of the table's good rows against the training data."""
    found = []
    for name, stats in reference.get("features", {}).items():
        values = np.asarray(columns[name])[good]
        if stats["type"] == "number":
            values = values.astype(float)
            edges = [-np.inf, *stats["edges"], np.inf]
            counts, _ = np.histogram(values, bins=edges)
            reference_counts = tuple(stats["counts"])
            outside = float(np.mean((values < stats["min"]) | (values > stats["max"]))) if values.size else 0.0
            shown_edges = tuple(float(e) for e in stats["edges"])
        else:
            choices = list(stats["frequencies"])
            texts = [str(v) for v in values]
            reference_counts = tuple(stats["frequencies"][c] for c in choices)
            counts = np.array([texts.count(c) for c in choices])
            outside = float(np.mean([t not in stats["frequencies"] for t in texts])) if texts else 0.0
            shown_edges = ()
        expected = np.asarray(reference_counts, dtype=float) / max(1, sum(reference_counts))
        actual = np.asarray(counts, dtype=float) / max(1, values.size)
        value = psi(expected, actual)
        moderate_at, major_at = thresholds(reference_counts, values.size)
        found.append(
            FeatureDrift(
                name,
                value,
                outside,
                verdict(value, moderate_at, major_at),
                shown_edges,
                tuple(expected),
                tuple(actual),
                int(values.size),
                moderate_at,
                major_at,
            )
        )
    return found
