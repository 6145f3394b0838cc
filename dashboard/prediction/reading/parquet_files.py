"""Parquet files -> an InputTable: the same rows a Spark job reads from them."""

from __future__ import annotations

from pathlib import Path

from dashboard.errors import InputError, scrub


def read_parquet(source: Path, data: bytes):
    """A Parquet file as a table (the same rows a Spark job would read from it)."""
    import io

    import pandas as pd

    from dashboard.prediction.reading.table import InputTable

    try:
        return InputTable(pd.read_parquet(io.BytesIO(data)))
    except Exception as exc:
        raise InputError(f"cannot read {source} as Parquet: {scrub(str(exc))[:200]}") from exc
