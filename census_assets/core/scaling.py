"""Bigger census tables for the benchmark: the table replicated N times with a small jitter.

Copy 0 is the table unchanged. Copies 1..N-1 get a multiplicative jitter of at most +-1% on every
integer column, rounded and clipped to the column's observed range (zeros stay zero, ages stay in
the age bins), so the data keep their shape. One wide column (functional_weight, dropped by
cleaning) instead gets a distinct small offset per copy, so no two copies of a row are equal and
drop_duplicates keeps them: the cleaned table grows with N, as a real bigger table would.
"""

import numpy as np
import pandas as pd

UNIQUE_COLUMN = "functional_weight"


def replicate(
    df: pd.DataFrame,
    copies: int,
    seed: int = 0,
    relative_jitter: float = 0.01,
    unique_column: str = UNIQUE_COLUMN,
) -> pd.DataFrame:
    """`copies` x the rows of df (copy 0 unchanged), deterministic for a given seed."""
    if copies < 1:
        raise ValueError(f"copies must be at least 1, got {copies}")
    rows = len(df)
    out = df.iloc[np.tile(np.arange(rows), copies)].reset_index(drop=True)
    if copies == 1:
        return out
    rng = np.random.default_rng(seed)
    jittered = slice(rows, None)  # every copy but the first
    for name in df.columns:
        column = df[name]
        if name == unique_column or not pd.api.types.is_integer_dtype(column):
            continue
        base = out[name].to_numpy()[jittered].astype(np.float64)
        values = np.rint(base * (1.0 + rng.uniform(-relative_jitter, relative_jitter, base.size)))
        out.loc[jittered, name] = np.clip(values, column.min(), column.max()).astype(column.dtype)
    if unique_column in df.columns:
        # N-1 distinct non-zero offsets per row, drawn from +-(N // 2): copies never collide.
        half = copies // 2
        offsets = np.concatenate([np.arange(-half, 0), np.arange(1, half + 1)])
        picks = np.argsort(rng.random((rows, offsets.size)), axis=1)[:, : copies - 1]
        shifted = df[unique_column].to_numpy()[:, None] + offsets[picks]
        out.loc[jittered, unique_column] = shifted.T.ravel().astype(df[unique_column].dtype)
    return out
