"""How the page words the core's structured values (the core returns data; people read sentences)."""

from __future__ import annotations

import re

from dashboard.validate import RangeWarning


def range_warning(warning: RangeWarning, with_row: bool = True) -> str:
    """'row 7: sepal_length 12.5 is above the usual maximum 8' (without the row for the single form)."""
    where = "below the usual minimum" if warning.bound == "min" else "above the usual maximum"
    text = f"{warning.feature} {warning.value:g} is {where} {warning.limit:g}"
    return f"row {warning.row + 1}: {text}" if with_row else text


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
