"""How the page words the core's structured values (the core returns data; people read sentences)."""

from __future__ import annotations

import math
import re

import numpy as np

from dashboard.errors import DashboardError, InputError
from dashboard.prediction.reading.csv_files import TEMPLATE_HINT
from dashboard.prediction.scoring import row_reference
from dashboard.prediction.validate import RangeWarning


def range_warning(warning: RangeWarning, with_row: bool = True) -> str:
    """'row 7: sepal_length 12.5 is above the usual maximum 8' (without the row for the single form)."""
    where = "below the usual minimum" if warning.bound == "min" else "above the usual maximum"
    text = f"{warning.feature} {warning.value:g} is {where} {warning.limit:g}"
    return f"{row_reference(warning.row)}: {text}" if with_row else text


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """'1 row', '2 rows', '1,000 values': the count and its noun agree."""
    return f"{count:,} {noun if count == 1 else plural_form or noun + 's'}"


def decimals(*values: float | None, most: int = 6) -> int:
    """The decimals a person would type for these schema values (float32 noise such as 12.929999828338623 is
    read back as the 12.93 it was written as)."""
    found = 0
    for value in values:
        if value is None or not math.isfinite(value):
            continue
        text = np.format_float_positional(np.float32(value), trim="-")
        found = max(found, len(text.split(".", 1)[1]) if "." in text else 0)
    return min(found, most)


_MARKUP = re.compile(r"([\\\[\]<>$`])")  # escapes, link and image brackets, HTML, LaTeX, code spans
_URL = re.compile(r"(?i)\b(?:https?|ftp)://\S*|\bwww\.\S*")  # what GFM would turn into a link by itself


def md(text: object) -> str:
    """Free text (a manifest's name or notes, a CSV's cells and columns, an error naming them) made safe to show
    inside Markdown: it reads the same, but can make no link, no image the browser fetches, no HTML, no maths.

    Markup characters are backslash-escaped; URLs are shown as code (a code span is never made a link).
    """
    text, parts, last = str(text), [], 0
    for match in _URL.finditer(text):
        parts.append(_MARKUP.sub(r"\\\1", text[last : match.start()]))
        parts.append("`" + match.group(0).replace("`", "%60") + "`")
        last = match.end()
    parts.append(_MARKUP.sub(r"\\\1", text[last:]))
    return "".join(parts)


def with_template_hint(exc: DashboardError) -> str:
    """An error's message, with the page's way to get the expected header when a template would fix it."""
    if isinstance(exc, InputError) and exc.template:
        return f"{exc.message}; {TEMPLATE_HINT}"
    return exc.message
