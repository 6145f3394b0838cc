"""One cell read as the type its feature takes: number cells (decimal commas, plain-number fast path, float32's
range) and text cells (stripped, missing as empty, a lone surrogate as UNREADABLE); each bad cell's message."""

from __future__ import annotations

import numpy as np
import pandas as pd

_GROUPED = r"[+-]?\d{1,3},\d{3}"  # 12,500: a decimal comma or a thousands separator?


FLOAT32_MAX = float(np.finfo(np.float32).max)  # models compute in float32: 1e39 would be inf there


def number_cells(column: pd.Series, name: str, decimal_comma: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | str]:
    """float64 values, a bad-row mask, and the message per bad row.

    With decimal_comma, "5,1" is 5.1, but "12,500" (three digits after one comma) is flagged as ambiguous: it could
    be 12.5 or 12500. Without it, a comma is never a decimal point (it is a thousands separator, or a typo).
    """
    if pd.api.types.is_bool_dtype(column):
        column = column.astype("string")
    if pd.api.types.is_numeric_dtype(column):
        numbers = column.to_numpy(dtype=np.float64, na_value=np.nan)
        bad, messages = checked_numbers(numbers, name)
        return numbers, bad, messages
    plain = plain_numbers(column)
    if plain is not None:  # every cell a plain number (the usual CSV column): parsed in one Arrow cast
        return plain, np.zeros(len(plain), dtype=bool), np.full(len(plain), "", dtype=object)
    text = text_cells(column)
    parsed = np.array(pd.to_numeric(pd.Series(text, dtype=object), errors="coerce"), dtype=np.float64)
    series = pd.Series(text, dtype=object)
    commas = np.isnan(parsed) & series.str.contains(",", regex=False).to_numpy(dtype=bool)
    ambiguous = np.zeros(len(text), dtype=bool)
    if decimal_comma and commas.any():
        ambiguous = commas & series.str.fullmatch(_GROUPED).to_numpy(dtype=bool)
        retry = commas & ~ambiguous
        fixed = pd.Series(text[retry], dtype=object).str.replace(",", ".", regex=False)
        parsed[retry] = pd.to_numeric(fixed, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        parsed[ambiguous] = np.nan
    beyond = np.isfinite(parsed) & (np.abs(parsed) > FLOAT32_MAX)  # finite here, infinite in the model's float32
    bad = ~np.isfinite(parsed) | beyond
    messages = np.full(len(text), "", dtype=object)
    for index in np.flatnonzero(bad):
        raw = text[index]
        if raw == UNREADABLE:
            messages[index] = UNREADABLE_MESSAGE.format(name=name)
        elif beyond[index]:
            messages[index] = f"{name}: {quote(raw)} is beyond the largest number the model computes with (±3.4e38)"
        elif raw == "" or raw.lower() in ("nan", "na", "n/a", "null", "none"):
            messages[index] = f"{name}: missing value"
        elif ambiguous[index]:
            point, grouped = (f"{float(raw.replace(',', sep)):g}" for sep in (".", ""))
            messages[index] = (
                f"{name}: {quote(raw)} is ambiguous ({point} with a decimal comma, or {grouped} with a thousands "
                f"separator); write {point} or {grouped}"
            )
        elif np.isinf(parsed[index]):
            messages[index] = f"{name}: {quote(raw)} is not a finite number"
        elif commas[index] and not decimal_comma:
            messages[index] = f"{name}: {quote(raw)} is not a number; write numbers without thousands separators"
        else:
            messages[index] = f"{name}: {quote(raw)} is not a number"
    return parsed, bad, messages


def checked_numbers(numbers: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(bad-row mask, message per row) of float64 values: missing (NaN), infinite, or beyond float32's range."""
    beyond = np.isfinite(numbers) & (np.abs(numbers) > FLOAT32_MAX)
    bad = ~np.isfinite(numbers) | beyond
    messages = np.full(len(numbers), "", dtype=object)
    for index in np.flatnonzero(bad):
        value = numbers[index]
        messages[index] = (
            f"{name}: missing value"
            if np.isnan(value)
            else f"{name}: {value:g} is beyond the largest number the model computes with (±3.4e38)"
            if beyond[index]
            else f"{name}: {'inf' if value > 0 else '-inf'} is not a finite number"
        )
    return bad, messages


def plain_numbers(column: pd.Series) -> np.ndarray | None:
    """float64 values of a text column read from a file when every cell is a plain, finite number within float32
    (Arrow's cast: ~6x faster than parsing cell by cell); None when any cell needs the careful path (an empty cell,
    a decimal comma, text, nan, inf), which words each bad cell."""
    if column.dtype == object or not pd.api.types.is_string_dtype(column):
        return None
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        values = pc.cast(pc.utf8_trim_whitespace(pa.array(column.array)), pa.float64())
        numbers = values.to_numpy(zero_copy_only=False)
    except Exception:  # a cell Arrow does not read as a number (or no Arrow): the careful path decides
        return None
    if len(numbers) != len(column) or not np.isfinite(numbers).all() or (np.abs(numbers) > FLOAT32_MAX).any():
        return None
    return numbers


def quote(raw: str, limit: int = 40) -> str:
    """A cell's text quoted for a message, shortened when long (a 5 MB cell must not make a 5 MB message)."""
    if len(raw) <= limit:
        return repr(raw)
    return repr(raw[:limit] + "…") + f" ({len(raw):,} characters)"


def text_cells(column: pd.Series) -> np.ndarray:
    """Cells as stripped strings ('' for missing), as an object array. A cell that is not valid Unicode (a lone
    surrogate from a JSON escape such as \\ud800) becomes UNREADABLE, which every feature type refuses."""
    if column.dtype == object:  # values from JSON (or a ragged CSV): checked cell by cell
        return np.array([cell_text(v) for v in column.to_numpy(dtype=object)], dtype=object)
    series = column.astype("string").fillna("").str.strip()  # read from bytes: always valid text
    return series.to_numpy(dtype=object)


UNREADABLE = "\x00unreadable"  # never a number, a choice or sent to a model: validation words it per row


UNREADABLE_MESSAGE = "{name}: the value is not valid text (it holds a lone surrogate such as \\ud800); send UTF-8 text"


def cell_text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value).strip()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return UNREADABLE
    return text
