"""How the page words the core's structured values (the core returns data; people read sentences)."""

from __future__ import annotations

from dashboard.validate import RangeWarning


def range_warning(warning: RangeWarning, with_row: bool = True) -> str:
    """'row 7: sepal_length 12.5 is above the usual maximum 8' (without the row for the single form)."""
    where = "below the usual minimum" if warning.bound == "min" else "above the usual maximum"
    text = f"{warning.feature} {warning.value:g} is {where} {warning.limit:g}"
    return f"row {warning.row + 1}: {text}" if with_row else text
