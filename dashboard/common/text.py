"""Someone else's text (a manifest's notes, an e-mail claim, a request path) shown where it could do harm: in a log
line, a message or a terminal. One place decides how."""

from __future__ import annotations

import unicodedata

from dashboard.errors import scrub


def escaped(text: str, ascii_only: bool = False, limit: int | None = None) -> str:
    """Control characters as \\xNN (and, with ascii_only, every non-ASCII one as Python writes it), so the text can
    neither forge a log line nor drive a terminal; shortened to limit characters with an ellipsis."""
    if ascii_only:
        text = text.encode("ascii", "backslashreplace").decode("ascii")
    shown = "".join(c if c >= " " and c != "\x7f" else f"\\x{ord(c):02x}" for c in text)
    return shown if limit is None or len(shown) <= limit else shown[:limit] + "…"


def one_line(text: str) -> str:
    """Text as one terminal-safe line: secrets removed, control and separator characters (newlines, escape
    sequences, format characters) shown as spaces, runs of spaces as one."""
    cleaned = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in scrub(text))
    return " ".join(cleaned.split())
