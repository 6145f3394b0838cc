"""Chart data shared by the tabs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def histogram(values: np.ndarray, column: str) -> pd.DataFrame:
    """Rows per bin of values (5 to 30 bins), at the bin's middle as a number (so the chart orders bins by value,
    not as text): a frame for st.bar_chart."""
    counts, edges = np.histogram(values, bins=min(30, max(5, values.size // 10)))
    width = float(edges[1] - edges[0]) or 1.0
    places = max(0, 1 - math.floor(math.log10(width)))  # enough decimals to tell neighbouring bins apart
    middles = np.round((edges[:-1] + edges[1:]) / 2, places)
    return pd.DataFrame({column: middles, "rows": counts})


# Two colours that read apart (Streamlit's default palette starts with two similar blues)
PAIR = ("#9aa5b1", "#3d5afe")  # reference / training in grey, this row / this file in the page's blue
SERIES = "tableau10"  # several outputs in one chart: distinct hues


def bin_labels(edges: tuple[float, ...]) -> list[str]:
    """Labels of the bins between edges (and the open bins below and above), every number written with the same
    decimals: the fewest that write every edge as it is (float32 noise aside), at most 4."""
    places = 0
    while places < 4 and any(abs(round(e, places) - e) > 1e-6 * max(1.0, abs(e)) for e in edges):
        places += 1
    shown = [f"{e:.{places}f}" for e in edges]
    return [f"below {shown[0]}", *(f"{a} – {b}" for a, b in zip(shown[:-1], shown[1:])), f"{shown[-1]} and above"]
