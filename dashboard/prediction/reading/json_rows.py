"""Rows from a JSON request body, in each format clients already send: {"instances": [...]} (rows as objects or
as lists in schema order; TF Serving's row format), {"inputs": {feature: [values]}} (columns; TF Serving's
columnar format), and MLflow's {"dataframe_split": ...} / {"dataframe_records": [...]}.

The result is one {feature: value} mapping per row; what a row lacks is missing (validation says so for that row
alone). A body whose shape is wrong is one InputError naming the field and what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from dashboard.errors import InputError
from dashboard.prediction.images import from_b64, is_b64

Format = Literal["instances", "inputs", "dataframe_split", "dataframe_records"]
FORMATS: tuple[Format, ...] = ("instances", "inputs", "dataframe_split", "dataframe_records")
_HINT = (
    'send {"instances": [{"feature": value, ...}, ...]} (or rows as lists in schema order), '
    '{"inputs": {"feature": [values...]}}, {"dataframe_split": {"columns": [...], "data": [[...]]}} '
    'or {"dataframe_records": [{...}]}'
)


def rows_from_json(
    body: Any, names: Sequence[str], max_rows: int | None = None
) -> tuple[Format, list[Mapping[str, Any]]]:
    """(which format, one mapping per row) from a parsed JSON body, for a model whose features are `names`.

    With max_rows, a body with more rows is refused (TooManyRows) before any row is built."""
    if not isinstance(body, Mapping):
        raise InputError(f"the body must be a JSON object; {_HINT}")
    given = [key for key in FORMATS if key in body]
    if len(given) != 1:
        found = ", ".join(given) if given else "none of them"
        raise InputError(f"the body must have exactly one of {', '.join(FORMATS)} (found {found}); {_HINT}")
    key = given[0]
    value = body[key]
    if max_rows is not None:
        count = _count(value)
        if count > max_rows:
            raise TooManyRows(count, max_rows)
    if key == "instances":
        rows = _rows(value, names, "instances")
    elif key == "dataframe_records":
        rows = _rows(value, names, "dataframe_records", lists=False)
    elif key == "inputs":
        rows = _columns(value, names) if isinstance(value, Mapping) else _rows(value, names, "inputs")
    else:
        rows = _split(value, names)
    if not rows:
        raise InputError(f'"{key}" holds no rows; send at least one')
    return key, rows


class TooManyRows(InputError):
    """A body with more rows than the request limit (counted before any row is built)."""

    def __init__(self, rows: int, limit: int) -> None:
        super().__init__(f"{rows:,} rows, over the {limit:,} limit (API_MAX_ROWS); send them in several requests")
        self.rows = rows


def _count(value: Any) -> int:
    """Rows in a format's value without building them: a list's length, the longest column, or split's data."""
    if isinstance(value, list):
        return len(value)
    if isinstance(value, Mapping):
        if isinstance(value.get("data"), list):
            return len(value["data"])
        return max((len(v) for v in value.values() if isinstance(v, list)), default=0)
    return 0


def _rows(value: Any, names: Sequence[str], field: str, lists: bool = True) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        raise InputError(f'"{field}" must be a list of rows; {_HINT}')
    rows = []
    for i, row in enumerate(value):
        if isinstance(row, Mapping) and len(names) == 1 and is_b64(row):  # TF Serving: {"b64": ...} as the row
            rows.append({names[0]: row})
        elif isinstance(row, Mapping):
            rows.append(row)
        elif lists and isinstance(row, list):
            if len(row) != len(names):
                raise InputError(
                    f'"{field}"[{i}] has {len(row)} values; expected {len(names)}, in this order: {", ".join(names)}'
                )
            rows.append(dict(zip(names, row, strict=True)))
        elif lists and len(names) == 1 and not isinstance(row, (list, Mapping)):
            rows.append({names[0]: row})
        else:
            what = "an object or a list" if lists else "an object"
            raise InputError(f'"{field}"[{i}] must be {what} of feature values, not {type(row).__name__}')
    return rows


def _columns(value: Mapping[str, Any], names: Sequence[str]) -> list[Mapping[str, Any]]:
    lengths = {}
    for name, column in value.items():
        if not isinstance(column, list):
            raise InputError(f'"inputs"["{name}"] must be a list of values, one per row')
        lengths[name] = len(column)
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name}: {n}" for name, n in lengths.items())
        raise InputError(f'the columns of "inputs" must have the same length (found {shown})')
    count = next(iter(lengths.values()), 0)
    return [{name: column[i] for name, column in value.items()} for i in range(count)]


def _split(value: Any, names: Sequence[str]) -> list[Mapping[str, Any]]:
    if not isinstance(value, Mapping) or not isinstance(value.get("data"), list):
        raise InputError('"dataframe_split" must be an object with "columns" and "data" (a list of rows)')
    columns = value.get("columns", list(names))
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InputError('"dataframe_split"["columns"] must be a list of column names')
    twice = sorted({c for c in columns if columns.count(c) > 1}) if len(set(columns)) < len(columns) else []
    if twice:
        raise InputError(
            f'"dataframe_split"["columns"] names {", ".join(repr(c) for c in twice[:5])} more than once; '
            "name each column once"
        )
    rows = []
    for i, row in enumerate(value["data"]):
        if not isinstance(row, list) or len(row) != len(columns):
            raise InputError(f'"dataframe_split"["data"][{i}] must be a list of {len(columns)} values, one per column')
        rows.append(dict(zip(columns, row, strict=True)))
    return rows


def with_images(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[Mapping[str, Any]]:
    """The rows with each {"b64": ...} value of the image features `names` decoded to a file (TF Serving's
    convention for binary values); bad base64 becomes that row's error at validation."""
    return [
        {**row, **{name: from_b64(row[name]) for name in names if is_b64(row.get(name))}}
        if any(is_b64(row.get(name)) for name in names)
        else row
        for row in rows
    ]


def frame_of(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> pd.DataFrame:
    """Rows as the table validation takes: a column of plain numbers as float64, any other column as Python
    objects. Never pandas' string dtype, which cannot hold a lone surrogate (a JSON "\\ud800"): such a cell would
    fail the whole table there, where validation makes it that row's error."""
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        if all(type(v) in (int, float) for v in values):
            try:
                columns[name] = np.array(values, dtype=np.float64)
                continue
            except OverflowError:  # an integer past float64: validation words it
                pass
        columns[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(columns, columns=list(names))


def matrix_of(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> np.ndarray | None:
    """Rows as one float64 matrix (rows x names) when every cell is an int or a float (the API's usual request);
    None when any is not (missing, text, a boolean, an integer past float64), for frame_of and the careful path."""
    try:
        cells = [[row[name] for name in names] for row in rows]
    except (KeyError, TypeError):
        return None
    if not all(type(v) is float or type(v) is int for line in cells for v in line):
        return None
    try:
        return np.array(cells, dtype=np.float64).reshape(len(rows), len(names))
    except OverflowError:  # an integer past float64: validation words it
        return None
