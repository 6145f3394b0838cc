"""A results table as a download (Batch tab, CLI, the API's CSV answer, Spark's CSV output): probabilities rounded,
in the dialect of the file it came from, spreadsheet-safe."""

from __future__ import annotations

import pandas as pd

from dashboard.common.csv_export import safe_csv
from dashboard.prediction.reading.table import InputTable

PROBABILITY_PLACES = 6  # downloads: probabilities to a millionth (the API's JSON keeps full precision)


def rounded_probabilities(table: pd.DataFrame) -> pd.DataFrame:
    """The table with probability columns rounded to PROBABILITY_PLACES (what a download shows; the Spark job's
    CSV output too)."""
    rounded = table.copy(deep=False)
    for column in rounded.columns:
        if str(column).startswith("probability") and pd.api.types.is_float_dtype(rounded[column]):
            rounded[column] = rounded[column].round(PROBABILITY_PLACES)
    return rounded


def results_csv(table: pd.DataFrame, source: InputTable | None = None) -> bytes:
    """A results table as a download: in the dialect of the file it came from (separator, decimal comma),
    probabilities rounded to PROBABILITY_PLACES, formula-looking text neutralised."""
    rounded = rounded_probabilities(table)
    if source is None:
        return safe_csv(rounded)
    return safe_csv(rounded, sep=source.separator, decimal=source.decimal)
