"""Understanding a prediction: why (feature attributions), what if (one feature swept), on any runtime.

Attributions are Shapley values of the explained output against one reference input (the schema's defaults, or
the training medians when a reference is published): each feature's share of `prediction - reference
prediction`. They need only the model's forward call (no gradients: LiteRT has none, and category inputs are
not differentiable):

- exact, from every coalition of features in one batched call (2**n rows per explained row), when that is at most
  `exact_limit` rows;
- otherwise sampled over permutations, each run forwards and backwards (antithetic). Every permutation's
  contributions telescope to exactly `prediction - reference`, so the sum is exact either way; the standard error
  of each value over the permutations is returned with it.

For a linear model every coalition gives each feature w * (x - reference), so the values equal w * (x - reference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from dashboard.contract import Batch, ServableModel
from dashboard.prediction.schema import Schema
from dashboard.prediction.scoring import scores

EXACT_LIMIT_ROW = 4096  # one row (the form): exact up to 12 features
EXACT_LIMIT_BATCH = 64  # every row of a file: exact up to 6 features, sampled beyond
PERMUTATIONS = 8  # sampled: 4 permutations, each forwards and backwards
SWEEP_POINTS = 60


@dataclass(frozen=True)
class Attributions:
    """Per explained row: the output explained, its reference value and each feature's contribution."""

    target: list[str]  # per row: the class explained ("virginica"), "probability" or the output's name
    values: np.ndarray  # rows x features, signed contributions
    errors: np.ndarray  # rows x features, standard error (0 where exact)
    prediction: np.ndarray  # per row: the explained output
    reference: np.ndarray  # per row: the same output for the reference input
    exact: bool


def explained_column(scores: np.ndarray, schema: Schema) -> np.ndarray:
    """Which output column each row explains: the predicted class (classification), else the single output."""
    if schema.output.type == "classification":
        return np.argmax(scores, axis=1)
    return np.zeros(len(scores), dtype=int)


def attribute(
    model: ServableModel,
    schema: Schema,
    inputs: Batch,
    reference: Batch,
    exact_limit: int = EXACT_LIMIT_ROW,
    seed: int = 0,
) -> Attributions:
    """Shapley values for each row of `inputs` (model inputs, validated) against the one-row `reference`."""
    names = schema.names
    n = len(names)
    rows = _rows(inputs)
    x, r = columns_of(inputs, names), columns_of(reference, names)
    scores = _call(model, inputs)
    column = explained_column(scores, schema)
    if 2**n <= exact_limit:
        coalitions = [c for size in range(n + 1) for c in combinations(range(n), size)]
        values = np.zeros((rows, n))
        outputs = _evaluate(model, x, r, names, rows, [set(c) for c in coalitions], column)
        index = {c: i for i, c in enumerate(coalitions)}
        for i in range(n):
            for coalition, position in index.items():
                if i in coalition:
                    continue
                size = len(coalition)
                weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
                with_i = tuple(sorted((*coalition, i)))
                values[:, i] += weight * (outputs[:, index[with_i]] - outputs[:, position])
        errors = np.zeros_like(values)
        exact = True
    else:
        rng = np.random.default_rng(seed)
        orders = []
        for _ in range(PERMUTATIONS // 2):
            order = list(rng.permutation(n))
            orders += [order, order[::-1]]
        samples = np.zeros((len(orders), rows, n))
        for k, order in enumerate(orders):
            steps = [set(order[:j]) for j in range(n + 1)]
            outputs = _evaluate(model, x, r, names, rows, steps, column)
            for j, feature in enumerate(order):
                samples[k, :, feature] = outputs[:, j + 1] - outputs[:, j]
        values = samples.mean(axis=0)
        errors = samples.std(axis=0, ddof=1) / math.sqrt(len(orders))
        exact = False
    prediction = scores[np.arange(rows), column]
    base = _call(model, reference)
    base_values = base[0, column]
    return Attributions(
        target=[_target(schema, c) for c in column],
        values=values,
        errors=errors,
        prediction=prediction,
        reference=base_values,
        exact=exact,
    )


def sweep(model: ServableModel, schema: Schema, row: Batch, feature: str, points: np.ndarray) -> np.ndarray:
    """Model outputs (points x outputs) with `feature` set to each of `points` and the rest held at `row`."""
    names = schema.names
    x = columns_of(row, names)
    columns = {name: np.repeat(x[name][:1], len(points)) for name in names}
    columns[feature] = np.asarray(points, dtype=x[feature].dtype)
    return _call(model, _batch(columns, names, model.named_inputs))


def sweep_points(schema: Schema, feature: str, low: float | None = None, high: float | None = None) -> np.ndarray:
    """SWEEP_POINTS values across the feature's range (schema min..max, or the given reference percentiles)."""
    spec = next(f for f in schema.features if f.name == feature)
    low = spec.min if low is None else low
    high = spec.max if high is None else high
    if low is None or high is None or not high > low:
        centre = float(spec.initial)
        span = abs(centre) or 1.0
        low, high = centre - span, centre + span
    return np.linspace(low, high, SWEEP_POINTS)


def _evaluate(
    model: ServableModel, x: dict, r: dict, names: list[str], rows: int, coalitions: list[set], column: np.ndarray
) -> np.ndarray:
    """Explained output for every row under every coalition (features in the coalition from x, others from r)."""
    count = len(coalitions)
    columns = {}
    for i, name in enumerate(names):
        taken = np.array([i in c for c in coalitions])
        own = np.repeat(x[name], count)  # row-major: row 0's coalitions first
        ref = np.full(rows * count, r[name][0], dtype=own.dtype)
        columns[name] = np.where(np.tile(taken, rows), own, ref)
    out = _call(model, _batch(columns, names, model.named_inputs))
    out = out.reshape(rows, count, -1)
    return out[np.arange(rows), :, column] if out.shape[2] > 1 else out[:, :, 0]


def _call(model: ServableModel, batch: Batch) -> np.ndarray:
    """The model's outputs for a batch, in the model's own chunks (predict.scores: the one chunked call)."""
    return scores(model, batch, _rows(batch))


def _rows(batch: Batch) -> int:
    return len(next(iter(batch.values()))) if isinstance(batch, dict) else len(batch)


def columns_of(batch: Batch, names: list[str]) -> dict[str, np.ndarray]:
    if isinstance(batch, dict):
        return {name: np.asarray(batch[name]) for name in names}
    return {name: np.asarray(batch)[:, i] for i, name in enumerate(names)}


def _batch(columns: dict[str, np.ndarray], names: list[str], named: bool) -> Batch:
    """Columns as the model takes them: one array per named input, or one float32 matrix in schema order."""
    if named:
        return columns
    return np.column_stack([columns[name] for name in names]).astype(np.float32)


def _target(schema: Schema, column: int) -> str:
    output = schema.output
    if output.type == "classification":
        return output.labels[column]
    if output.type == "binary":
        return f"probability of {output.labels[1]}"
    return output.name
