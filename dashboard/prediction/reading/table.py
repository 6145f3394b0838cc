"""The one shape every reader hands to validation: the table as read, and the rows already found wrong while
reading (a CSV line with more fields than the header, a Spark line Spark could not split, text that is not UTF-8),
which validation adds to those rows' `error`."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class InputTable:
    """An uploaded table and the errors found while reading it, by row index."""

    frame: pd.DataFrame
    row_errors: dict[int, str] = field(default_factory=dict)
    decimal_comma: bool = False  # the separator is not a comma, so "5,1" may mean 5.1 (validate decides per cell)
    separator: str = ","  # the file's own separator: downloads of its results use it too
    decimal: str = "."  # "," when the file writes numbers with a decimal comma: so do downloads of its results

    @property
    def rows(self) -> int:
        """Rows in the table."""
        return len(self.frame)
