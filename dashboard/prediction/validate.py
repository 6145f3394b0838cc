"""A table against a schema, row by row: model inputs for the good rows, the reason for every bad one.

Vectorised per column: no per-row Python loop on the numeric path; messages are built only for bad rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard.contract import Batch, Bound
from dashboard.errors import MissingColumnsError
from dashboard.prediction.cells import (
    FLOAT32_MAX,
    UNREADABLE,
    UNREADABLE_MESSAGE,
    checked_numbers,
    number_cells,
    quote,
    text_cells,
)
from dashboard.prediction.images import FILE_COLUMN, image_cells, stacked
from dashboard.prediction.reading.table import InputTable
from dashboard.prediction.schema import Feature, Schema

MAX_SHOWN_WARNINGS = 20


@dataclass(frozen=True)
class RangeWarning:
    """A value outside the schema's usual range (predicted anyway): which row, feature, value and bound."""

    row: int  # 0-based index of the data row
    feature: str
    value: float
    bound: Bound
    limit: float


class RowCounts:
    """Counts from a `good` mask (one bool per row): shared by a validated table and a prediction result."""

    good: np.ndarray

    @property
    def rows(self) -> int:
        """Rows in the table."""
        return int(self.good.size)

    @property
    def ready(self) -> int:
        """Rows that are (or will be) predicted."""
        return int(self.good.sum())


@dataclass(frozen=True)
class Validated(RowCounts):
    """A table checked against a schema: model inputs for the good rows, an error text per row."""

    inputs: Batch  # 2-D float array, or dict name -> 1-D array (named inputs)
    good: np.ndarray  # bool per row
    errors: np.ndarray  # str per row, "" where good
    warnings: tuple[RangeWarning, ...]  # the first max_warnings (all when None)
    warning_count: int
    extra_columns: tuple[str, ...]


def validate(
    data: InputTable | pd.DataFrame,
    schema: Schema,
    named_inputs: bool = False,
    string_inputs: frozenset[str] = frozenset(),
    max_warnings: int | None = MAX_SHOWN_WARNINGS,
    empty_text_ok: bool = False,
) -> Validated:
    """Check every row against the schema; a missing column refuses the table, bad cells flag their row only.

    A InputTable brings what was found while reading: rows already known to be wrong (their reason comes first in
    `error`) and whether decimal commas are possible (the separator is not a comma). `empty_text_ok` accepts an
    empty text value (the reference input of an explanation: a text feature's reference is the empty string).
    """
    table = data if isinstance(data, InputTable) else InputTable(data)
    frame, row_errors = table.frame, table.row_errors
    columns = [str(c) for c in frame.columns]
    _refuse_missing_columns(schema, columns)
    rows = len(frame)
    problems: list[tuple[np.ndarray, np.ndarray | str]] = []  # (bad mask, one message or one per row)
    warn_masks: list[tuple[np.ndarray, str, Bound, float]] = []
    values: dict[str, np.ndarray] = {}
    pictures: dict[str, list[np.ndarray | None]] = {}  # image features: pixels per row (None where unreadable)
    for feature in schema.features:
        column = frame[feature.name]
        if feature.type == "number":
            numbers, bad, messages = number_cells(column, feature.name, table.decimal_comma)
            problems.append((bad, messages))
            values[feature.name] = numbers
            for bound, limit, outside in (("min", feature.min, np.less), ("max", feature.max, np.greater)):
                if limit is not None:
                    mask = ~bad & outside(numbers, limit)
                    if mask.any():
                        warn_masks.append((mask, feature.name, bound, limit))
        elif feature.type == "category":
            text, codes, bad, messages = _categories(column, feature, rows)
            problems.append((bad, messages))
            values[feature.name] = text if feature.name in string_inputs else codes.astype(np.float64)
        elif feature.type == "image":
            pictures[feature.name], bad, messages = image_cells(column, feature)
            problems.append((bad, messages))
        else:
            text = text_cells(column)
            missing = np.zeros(rows, dtype=bool) if empty_text_ok else text == ""
            problems.append((missing, f"{feature.name}: missing value"))
            problems.append((text == UNREADABLE, UNREADABLE_MESSAGE.format(name=feature.name)))
            values[feature.name] = text
    if row_errors:
        bad = np.zeros(rows, dtype=bool)
        messages = np.full(rows, "", dtype=object)
        for index, message in row_errors.items():
            bad[index], messages[index] = True, message
        problems.insert(0, (bad, messages))
    good, errors = _joined_errors(problems, rows)
    warnings, warning_count = _range_warnings(warn_masks, good, values, max_warnings)
    images = {f.name: stacked(pictures[f.name], good, f) for f in schema.images}
    if named_inputs:
        inputs = {name: array[good] for name, array in values.items()} | images
    elif images:
        inputs = next(iter(images.values()))
    else:
        inputs = np.column_stack([values[name][good] for name in schema.names]) if rows else np.empty((0, 0))
        inputs = inputs.astype(np.float32, copy=False)
    known = set(schema.names) | ({FILE_COLUMN} if images else set())
    extra = tuple(c for c in columns if c not in known)
    return Validated(
        inputs=inputs,
        good=good,
        errors=errors,
        warnings=tuple(warnings),
        warning_count=warning_count,
        extra_columns=extra,
    )


def _refuse_missing_columns(schema: Schema, columns: list[str]) -> None:
    """A table without one of the schema's columns is refused whole (no row could be predicted)."""
    missing = [name for name in schema.names if name not in columns]
    if missing:
        noun = "column" if len(missing) == 1 else "columns"
        shown = ", ".join(repr(m) for m in missing)
        raise MissingColumnsError(
            f"{noun} {shown} {'is' if len(missing) == 1 else 'are'} missing; expected columns: "
            f"{', '.join(schema.names)}",
            template=True,
        )


def _categories(
    column: pd.Series, feature: Feature, rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(text, choice codes, bad mask, message per row) of a category column."""
    text = text_cells(column)
    choices = [str(c) for c in feature.choices]
    codes = pd.Index(choices, dtype=object).get_indexer(text)
    bad = codes < 0
    messages = np.full(rows, "", dtype=object)
    for index in np.flatnonzero(bad):
        messages[index] = (
            UNREADABLE_MESSAGE.format(name=feature.name)
            if text[index] == UNREADABLE
            else f"{feature.name}: missing value"
            if text[index] == ""
            else f"{feature.name}: {quote(text[index])} is not one of {', '.join(choices)}"
        )
    return text, codes, bad, messages


def _joined_errors(problems: list[tuple[np.ndarray, np.ndarray | str]], rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(good mask, the error text per row: every problem of the row, in the order found, joined by '; ')."""
    bad_any = np.zeros(rows, dtype=bool)
    for bad, _ in problems:
        bad_any |= bad
    errors = np.full(rows, "", dtype=object)
    for index in np.flatnonzero(bad_any):
        errors[index] = "; ".join(
            messages if isinstance(messages, str) else messages[index] for bad, messages in problems if bad[index]
        )
    return ~bad_any, errors


def _range_warnings(
    warn_masks: list[tuple[np.ndarray, str, Bound, float]],
    good: np.ndarray,
    values: dict[str, np.ndarray],
    max_warnings: int | None,
) -> tuple[list[RangeWarning], int]:
    """(the first max_warnings range warnings of good rows, how many there are in all)."""
    warnings: list[RangeWarning] = []
    count = 0
    for mask, name, bound, limit in warn_masks:
        mask = mask & good
        count += int(mask.sum())
        room = None if max_warnings is None else max(0, max_warnings - len(warnings))
        for index in np.flatnonzero(mask)[:room]:
            warnings.append(RangeWarning(int(index), name, float(values[name][index]), bound, limit))
    return warnings, count


def validate_matrix(numbers: np.ndarray, schema: Schema, max_warnings: int | None = MAX_SHOWN_WARNINGS) -> Validated:
    """validate() for the API's usual request: every feature a number, every cell already a float (rows x features,
    in schema order), the model taking one 2-D input. The same checks, messages and warnings, without a DataFrame."""
    problems: list[tuple[np.ndarray, np.ndarray | str]] = []
    warn_masks: list[tuple[np.ndarray, str, Bound, float]] = []
    values: dict[str, np.ndarray] = {}
    for k, feature in enumerate(schema.features):
        column = numbers[:, k]
        bad = ~np.isfinite(column) | (np.abs(column) > FLOAT32_MAX)
        if bad.any():
            problems.append(checked_numbers(column, feature.name))
        values[feature.name] = column
        for bound, limit, outside in (("min", feature.min, np.less), ("max", feature.max, np.greater)):
            if limit is not None:
                mask = ~bad & outside(column, limit)
                if mask.any():
                    warn_masks.append((mask, feature.name, bound, limit))
    good, errors = _joined_errors(problems, len(numbers))
    warnings, warning_count = _range_warnings(warn_masks, good, values, max_warnings)
    inputs = numbers[good].astype(np.float32)
    return Validated(
        inputs=inputs, good=good, errors=errors, warnings=tuple(warnings), warning_count=warning_count, extra_columns=()
    )
