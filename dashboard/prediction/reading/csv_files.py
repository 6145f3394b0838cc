"""CSV files -> an InputTable: encodings, separators, decimal commas, limits, ragged lines (a line with more fields
than the header is that row's error, the others are read)."""

from __future__ import annotations

import codecs
import csv
import io

import pandas as pd

from dashboard.common.files import CHUNK, format_bytes
from dashboard.errors import InputError
from dashboard.prediction.reading.table import InputTable

TEMPLATE_HINT = "download the template from the Batch tab"  # the page's words for InputError(template=True)
_BINARY_STARTS = (b"PK\x03\x04", b"\x89HDF", b"\x89PNG", b"%PDF", b"\x1f\x8b")
_DECIMAL_COMMA = r"\s*[+-]?\d*,\d+\s*"


def read_csv(data: bytes, max_bytes: int, max_rows: int, max_columns: int = 1000) -> InputTable:
    """Uploaded bytes -> table: UTF-8 (BOM or not) or Latin-1, separator , ; or tab; limits enforced first.

    Numbers are parsed with a decimal point only: a decimal comma ("5,1" in a semicolon file) is read as text and
    resolved per cell by validate, which flags what is ambiguous ("12,500") instead of guessing.
    """
    if len(data) > max_bytes:
        raise InputError(
            f"the file is {format_bytes(len(data))}, over the {format_bytes(max_bytes)} limit; "
            "split it into smaller files (or raise CSV_MAX_BYTES)"
        )
    if not data or data.isspace():
        raise InputError("the file is empty; upload a CSV with a header row and one row per prediction", template=True)
    head = data[:8192]
    if b"\x00" in head or head.startswith(_BINARY_STARTS):
        raise InputError(
            "the file is not a text CSV (it looks binary); export your table as CSV "
            "(comma, semicolon or tab separated) and upload that",
            template=True,
        )
    encoding = _encoding(data)
    end = data.find(b"\n")
    first_line = data if end < 0 else data[:end]
    counts = {sep: first_line.count(sep.encode()) for sep in (",", ";", "\t")}
    sep = max(counts, key=lambda s: (counts[s], s == ","))
    if counts[sep] + 1 > max_columns:
        raise InputError(
            f"the file has {counts[sep] + 1:,} columns, over the {max_columns:,} limit; keep the model's "
            "columns, or raise CSV_MAX_COLUMNS",
            template=True,
        )
    row_errors: dict[int, str] = {}
    try:
        if _first_row_longer(data, encoding, sep):  # pandas would take the first column(s) as the index and
            raise pd.errors.ParserError("extra field on the first data line")  # shift every column silently
        # every cell as written (007 stays 007, 5.10 stays 5.10): features are parsed by validate, others never
        frame = pd.read_csv(
            io.BytesIO(data),
            sep=sep,
            encoding=encoding,
            nrows=max_rows + 1,
            skipinitialspace=True,
            dtype=str,
            keep_default_na=False,
            index_col=False,
        )
    except pd.errors.EmptyDataError as exc:
        raise InputError("the file has no header row; the first line must name the columns", template=True) from exc
    except pd.errors.ParserError:  # a line with more fields than the header: keep every row, flag those lines
        try:
            frame, row_errors = _read_ragged(data, encoding, sep, max_rows)
        except csv.Error as exc:
            raise InputError(f"the file cannot be read as CSV ({exc}); save it as CSV again", template=True) from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"the file cannot be read as CSV ({type(exc).__name__}); save it as UTF-8 CSV") from exc
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    if len(frame) == 0:
        raise InputError("the file has a header but no rows; add one row per prediction below the header")
    if len(frame) > max_rows:
        raise InputError(
            f"the file has more than {max_rows:,} rows, over the limit; "
            "split it into smaller files (or raise CSV_MAX_ROWS)"
        )
    decimal = "," if sep != "," and _writes_decimal_commas(frame) else "."
    return InputTable(frame, row_errors, decimal_comma=sep != ",", separator=sep, decimal=decimal)


def _writes_decimal_commas(frame: pd.DataFrame, sample: int = 1000) -> bool:
    """True when some cell among the first rows is a number written with a decimal comma ("5,1")."""
    head = frame.head(sample)
    for column in head.columns:
        text = head[column].astype("string").fillna("")
        if text.str.fullmatch(_DECIMAL_COMMA).any():
            return True
    return False


def _first_row_longer(data: bytes, encoding: str, sep: str) -> bool:
    """True when the first data line has more fields than the header (read with the CSV module, quotes honoured)."""
    head = data[:65536].decode(encoding, errors="replace")
    reader = csv.reader(io.StringIO(head, newline=""), delimiter=sep, skipinitialspace=True)
    try:
        lines = [line for line in (next(reader, None), next(reader, None)) if line is not None]
    except csv.Error:  # a stray carriage return and the like: pandas reads (or refuses) the file itself
        return False
    return len(lines) == 2 and len(lines[1]) > len(lines[0])


def _read_ragged(data: bytes, encoding: str, sep: str, max_rows: int) -> tuple[pd.DataFrame, dict[int, str]]:
    """The slow path for irregular files: every row kept (extra fields dropped), its row flagged."""
    text = data.decode(encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, skipinitialspace=True)
    header = None
    rows: list[list[str]] = []
    ragged: dict[int, str] = {}
    for line in reader:
        if not line or all(not cell.strip() for cell in line):
            continue
        if header is None:
            header = line
            continue
        if len(rows) > max_rows:
            break
        if len(line) > len(header):
            ragged[len(rows)] = (
                f"line {reader.line_num} has {len(line)} fields but the header has {len(header)}; "
                "a stray separator, or a text value with a separator that needs quotes"
            )
        rows.append((line + [""] * len(header))[: len(header)])
    return pd.DataFrame(rows, columns=header, dtype=object), ragged


def _encoding(data: bytes) -> str:
    """utf-8-sig when every byte decodes as UTF-8 (checked block by block, no copy of the file), else latin-1."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(view), CHUNK):
            decoder.decode(view[start : start + CHUNK])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8-sig"
