"""Spark's Arrow batches -> an InputTable, read as the CLI reads a CSV file: a line whose field count is wrong is
that row's error, text that came as bytes is checked as UTF-8 per cell, number columns are parsed by Arrow."""

from __future__ import annotations

import pandas as pd

from dashboard.prediction.images import FILE_COLUMN, ImageFile
from dashboard.prediction.reading.table import InputTable
from dashboard.prediction.schema import Schema

CORRUPT = "_dashboard_corrupt_record"  # Spark puts a CSV line whose field count is wrong here


RAGGED = (
    "this line's field count differs from the header's; a stray separator, or a text value with a separator that "
    "needs quotes"
)


def decoded(column: pd.Series, name: str, row_errors: dict[int, str]) -> pd.Series:
    """A text column that came as bytes, as text: a cell that is not UTF-8 is shown with U+FFFD and its row is an
    error, the other rows go on (the whole column at once when it is all valid, the usual case)."""
    import pyarrow as pa

    values = pa.array(column, type=pa.binary(), from_pandas=True)
    try:
        return pd.Series(values.cast(pa.string()).to_pandas(), index=column.index, dtype=object)
    except pa.ArrowInvalid:
        pass
    cells = []
    for i, raw in enumerate(column.tolist()):
        if raw is None:
            cells.append(None)
            continue
        try:
            cells.append(bytes(raw).decode("utf-8"))
        except UnicodeDecodeError:
            cells.append(bytes(raw).decode("utf-8", errors="replace"))
            why = f"{name}: the text is not valid UTF-8; save the data as UTF-8"
            row_errors[i] = f"{row_errors[i]}; {why}" if i in row_errors else why
    return pd.Series(cells, index=column.index, dtype=object)


def as_read(batch: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The batch as the CLI's CSV reader would hand it over: a number column whose every cell is a number becomes
    floats (Arrow parses it in C++; validating text costs ~6x more per cell), any other column stays text for the
    validation to word each bad cell. Missing cells are None or NaN, as pandas reads them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    frame = batch.copy(deep=False)
    for feature in schema.features:
        column = frame.get(feature.name)
        if feature.type != "number" or column is None or pd.api.types.is_numeric_dtype(column):
            continue
        try:
            numbers = pc.cast(pa.array(column, type=pa.string(), from_pandas=True), pa.float64())
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            frame[feature.name] = column.astype(object).where(column.notna(), None)
            continue
        frame[feature.name] = numbers.to_numpy(zero_copy_only=False)
    return frame


def read_batch(
    batch: pd.DataFrame, schema: Schema, raw_text: tuple[str, ...] = (), images: str | None = None
) -> tuple[pd.DataFrame, InputTable]:
    """One Arrow batch -> (the batch as given, with text columns decoded; the table for validation, with the rows
    already found wrong while reading). images: the column of file bytes (Spark's binaryFile `content`) that is
    the model's one image input, beside the `file` column naming each."""
    batch = batch.reset_index(drop=True)
    if images is not None:
        pairs = zip(batch[FILE_COLUMN], batch[images], strict=True)
        files = [ImageFile(str(name), bytes(data)) for name, data in pairs]
        batch = batch.drop(columns=[images])
        batch[schema.images[0].name] = pd.Series(files, dtype=object)
    row_errors: dict[int, str] = {}
    if CORRUPT in batch.columns:
        flagged = batch[CORRUPT].notna().to_numpy()
        row_errors = {int(i): RAGGED for i in flagged.nonzero()[0]}
        batch = batch.drop(columns=[CORRUPT])
    if raw_text:
        batch = batch.copy()
        for name in raw_text:
            batch[name] = decoded(batch[name], name, row_errors)
    return batch, InputTable(as_read(batch, schema), row_errors)
