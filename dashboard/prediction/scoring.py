"""Validated table -> predictions table (SPEC's "Prediction output"): the fast path, and comparing two versions.

The model is a contract.ServableModel (either runtime); the schema's output and the validated table are passed
in. Writing it as a download is prediction/results.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd

from dashboard.contract import Batch, ComparisonKind, ServableModel
from dashboard.errors import SchemaError
from dashboard.prediction.images import FILE_COLUMN, ImageFile
from dashboard.prediction.schema import Output
from dashboard.prediction.validate import RangeWarning, RowCounts, Validated

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class BatchResult(RowCounts):
    """Which rows were predicted, their outputs and errors as arrays, and the counts; the output table (SPEC's
    columns, inputs first) is built from them the first time someone asks for it. The API answers from the arrays
    (no table per request)."""

    frame: pd.DataFrame  # the inputs as given
    good: np.ndarray  # bool per row: predicted (its error is empty)
    values: np.ndarray  # the model's outputs of the good rows, in order (rows predicted x outputs), float64
    errors: np.ndarray  # str per row, "" where good
    output: Output
    version: str
    warnings: tuple[RangeWarning, ...] = ()
    warning_count: int = 0
    extra_columns: tuple[str, ...] = ()
    # the table as validated (model inputs of its good rows): drift and explanations reuse it, never validate twice
    validated: Validated | None = field(default=None, repr=False, compare=False)

    @cached_property
    def table(self) -> pd.DataFrame:
        """Inputs as given, then prediction, probabilities, model_version and error, row for row."""
        return assemble(self.frame, self.good, self.errors, self.values, self.output, self.version)

    @cached_property
    def positions(self) -> np.ndarray:
        """For each row, its index in `values` (meaningful where good)."""
        return np.cumsum(self.good) - 1

    @property
    def predicted(self) -> int:
        """Rows predicted."""
        return self.ready

    @property
    def failed(self) -> int:
        """Rows with an error."""
        return self.rows - self.ready

    @property
    def first_errors(self) -> list[str]:
        """Up to ten 'row N (line M): why' lines for the validation report: N counts data rows from 1, M is the
        line in the file (the header is line 1)."""
        return [f"{row_reference(i)}: {self.errors[i]}" for i in np.flatnonzero(~self.good)[:10]]


Reason = Literal["missing_value", "not_a_number", "too_large", "not_a_choice", "bad_text", "not_finite_answer", "other"]
_REASONS: tuple[tuple[str, Reason], ...] = (  # what a row's first problem says -> why it was refused
    (": missing value", "missing_value"),
    ("is not one of", "not_a_choice"),
    ("is beyond the largest number", "too_large"),
    ("is not a number", "not_a_number"),
    ("is not a finite number", "not_a_number"),
    ("is ambiguous", "not_a_number"),
    ("is not valid text", "bad_text"),
    ("the model's answer for this row is not a finite number", "not_finite_answer"),
)


def refusals(errors: np.ndarray, good: np.ndarray) -> dict[Reason, int]:
    """How many rows were refused for each reason (a row's first problem counts)."""
    found: dict[Reason, int] = {}
    for index in np.flatnonzero(~good):
        first = str(errors[index]).split("; ", 1)[0]
        reason = next((r for text, r in _REASONS if text in first), "other")
        found[reason] = found.get(reason, 0) + 1
    return found


def row_reference(index: int) -> str:
    """How a row is named to people, the same in the page, the CLI and the API's CSV report: the data row
    (from 1) and its line in the file (the header is line 1; one line per row, as exported CSVs are)."""
    return f"row {index + 1} (line {index + 2})"


def output_columns(output: Output) -> list[str]:
    """The columns added after the inputs, in order."""
    if output.type == "classification":
        probabilities = [f"probability_{label}" for label in output.labels]
    elif output.type == "binary":
        probabilities = ["probability"]
    else:
        probabilities = []
    return ["prediction", *probabilities, "model_version", "error"]


def scores(
    model: ServableModel, inputs: Batch, rows: int, progress: ProgressFn | None = None, chunk_rows: int | None = None
) -> np.ndarray:
    """Model outputs for every validated row, in large chunks through the compiled call."""
    if rows == 0:
        return np.empty((0, 0))
    parts = []
    chunk_rows = chunk_rows or model.chunk_rows
    for start in range(0, rows, chunk_rows):
        stop = min(start + chunk_rows, rows)
        if isinstance(inputs, dict):
            batch = {name: column[start:stop] for name, column in inputs.items()}
        else:
            batch = inputs[start:stop]
        out = np.asarray(model.call(batch), dtype=np.float64)
        parts.append(out.reshape(stop - start, -1))
        if progress is not None:
            progress(stop, rows)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def predict_validated(
    model: ServableModel,
    frame: pd.DataFrame,
    validated: Validated,
    output: Output,
    version: str,
    progress: ProgressFn | None = None,
) -> BatchResult:
    """Predict the good rows of a validated table (the output table is assembled when asked for)."""
    values = scores(model, validated.inputs, validated.ready, progress)
    good, errors, values = finite_only(validated.good, validated.errors, values)
    return BatchResult(
        frame=frame,
        good=good,
        values=values,
        errors=errors,
        output=output,
        version=version,
        warnings=validated.warnings,
        warning_count=validated.warning_count,
        extra_columns=validated.extra_columns,
        validated=validated,
    )


NOT_FINITE = (
    "the model's answer for this row is not a finite number (an input too large for its float32 arithmetic?); "
    "check the row's values"
)


def finite_only(good: np.ndarray, errors: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A row whose outputs are NaN or infinite is that row's error, never a label with empty probabilities."""
    if not values.size:
        return good, errors, values
    finite = np.isfinite(values).all(axis=1)
    if finite.all():
        return good, errors, values
    good, errors = good.copy(), errors.copy()
    lost = np.flatnonzero(good)[~finite]
    good[lost] = False
    errors[lost] = NOT_FINITE
    return good, errors, values[finite]


def assemble(
    frame: pd.DataFrame, good: np.ndarray, errors: np.ndarray, values: np.ndarray, output: Output, version: str
) -> pd.DataFrame:
    """Inputs as given, then prediction, probabilities, model_version and error, row for row."""
    rows = len(frame)
    added: dict[str, Any] = {}
    if output.type == "classification":
        labels = np.asarray(output.labels, dtype=object)
        prediction = np.full(rows, None, dtype=object)
        if values.size:
            prediction[good] = labels[np.argmax(values, axis=1)]
        added["prediction"] = prediction
        for k, label in enumerate(output.labels):
            column = np.full(rows, np.nan)
            if values.size:
                column[good] = values[:, k]
            added[f"probability_{label}"] = column
    elif output.type == "binary":
        probability = np.full(rows, np.nan)
        prediction = np.full(rows, None, dtype=object)
        if values.size:
            p = values[:, 0]
            probability[good] = p
            prediction[good] = np.where(p >= output.threshold, output.labels[1], output.labels[0])
        added["prediction"] = prediction
        added["probability"] = probability
    else:
        prediction = np.full(rows, np.nan)
        if values.size:
            prediction[good] = values[:, 0]
        added["prediction"] = prediction
    added["model_version"] = np.full(rows, version, dtype=object)
    added["error"] = errors
    inputs = shown_inputs(frame.reset_index(drop=True))
    clashes = {c: f"input_{c}" for c in inputs.columns if c in added}
    if clashes:
        inputs = inputs.rename(columns=clashes)
    result = pd.concat([inputs, pd.DataFrame(added)], axis=1)
    return result


def shown_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """The inputs as a results table shows them: an image as its file's name (never its bytes), and an image column
    that only repeats the `file` column left out."""
    images = [
        name
        for name in frame.columns
        if frame[name].dtype == object and len(frame) and isinstance(frame[name].iloc[0], ImageFile)
    ]
    if not images:
        return frame
    shown = frame.copy()
    for name in images:
        names = [str(cell) for cell in frame[name]]
        if FILE_COLUMN in frame.columns and name != FILE_COLUMN and names == [str(c) for c in frame[FILE_COLUMN]]:
            shown = shown.drop(columns=[name])
        else:
            shown[name] = pd.Series(names, dtype=object, index=frame.index)
    return shown


@dataclass(frozen=True)
class Comparison:
    """Two versions' predictions on the same rows: how often they agree, how far apart they are."""

    kind: ComparisonKind
    compared: int  # rows both versions predicted
    agreement: float | None  # share of rows with the same label (labels only)
    differences: np.ndarray  # per compared row: b - a (values) or largest probability change (labels)
    rows: pd.DataFrame  # the rows that differ most, most different first


def compare(
    a: BatchResult, b: BatchResult, output_a: Output, output_b: Output, label_a: str, label_b: str, top: int = 20
) -> Comparison:
    """Compare two result tables of the same input rows."""
    labels_a, labels_b = output_a.type != "regression", output_b.type != "regression"
    if labels_a != labels_b:
        raise SchemaError(
            f"version {label_a} gives a {output_a.type} and {label_b} a {output_b.type}; "
            "only versions of the same kind of output can be compared"
        )
    both = a.good & b.good
    first, second = a.table.loc[both], b.table.loc[both]
    inputs = [c for c in a.table.columns if c not in set(output_columns(output_a))]
    shown = first[inputs].copy()
    if labels_a:
        pred_a = first["prediction"].astype(str).to_numpy()
        pred_b = second["prediction"].astype(str).to_numpy()
        same = pred_a == pred_b
        shared = [k for k in output_a.labels if k in output_b.labels]
        columns = (
            [f"probability_{k}" for k in shared]
            if output_a.type == "classification" and output_b.type == "classification"
            else ["probability"]
            if output_a.type == "binary" and output_b.type == "binary"
            else []
        )
        if columns:
            change = np.abs(first[columns].to_numpy(float) - second[columns].to_numpy(float)).max(axis=1)
        else:
            change = (~same).astype(float)
        shown[f"prediction_{label_a}"] = pred_a
        shown[f"prediction_{label_b}"] = pred_b
        shown["probability_change"] = change
        order = np.lexsort((-change, same))
        return Comparison(
            kind="labels",
            compared=int(both.sum()),
            agreement=float(same.mean()) if same.size else None,
            differences=change,
            rows=shown.iloc[order[:top]],
        )
    values_a = first["prediction"].to_numpy(float)
    values_b = second["prediction"].to_numpy(float)
    difference = values_b - values_a
    shown[f"prediction_{label_a}"] = values_a
    shown[f"prediction_{label_b}"] = values_b
    shown["difference"] = difference
    order = np.argsort(-np.abs(difference), kind="stable")
    return Comparison(
        kind="values", compared=int(both.sum()), agreement=None, differences=difference, rows=shown.iloc[order[:top]]
    )
