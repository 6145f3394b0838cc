"""Spreadsheet-safe CSV out (OWASP CSV injection): formula-looking text cells neutralised, numbers untouched."""

from __future__ import annotations

import re

import pandas as pd

_FORMULA_START = re.compile(r"^[=+\-@\t\r]")


_PLAIN_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"


def neutralised(table: pd.DataFrame) -> pd.DataFrame:
    """The table with formula-looking text cells prefixed by an apostrophe (OWASP CSV injection); numbers
    untouched. Shared by the CSV download and the Spark job's CSV output."""
    safe = table.copy(deep=False)
    for column in safe.columns:
        series = safe[column]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        text = series.astype("string")
        risky = text.str.match(_FORMULA_START).fillna(False) & ~text.str.match(_PLAIN_NUMBER).fillna(False)
        if risky.any():
            safe[column] = text.where(~risky, "'" + text)
    return safe


def safe_csv(table: pd.DataFrame, sep: str = ",", decimal: str = ".") -> bytes:
    """CSV bytes with formula-looking text cells neutralised by a leading apostrophe (OWASP); numbers untouched."""
    safe = neutralised(table)
    header = [("'" + c) if _FORMULA_START.match(str(c)) else c for c in safe.columns]
    # CRLF line ends (RFC 4180) make the writer quote any cell holding a bare CR or LF
    return safe.to_csv(index=False, header=header, lineterminator="\r\n", sep=sep, decimal=decimal).encode("utf-8")
