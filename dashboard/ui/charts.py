"""Chart data shared by the tabs."""

from __future__ import annotations

import numpy as np
import pandas as pd


def histogram(values: np.ndarray, column: str) -> pd.DataFrame:
    """Rows per bin of values (5 to 30 bins), labelled by the bin's middle: a frame for st.bar_chart."""
    counts, edges = np.histogram(values, bins=min(30, max(5, values.size // 10)))
    middles = [f"{(a + b) / 2:.3g}" for a, b in zip(edges[:-1], edges[1:])]
    return pd.DataFrame({column: middles, "rows": counts})
