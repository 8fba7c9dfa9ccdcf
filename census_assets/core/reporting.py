"""What a fitted model shows a person: its feature importance as a table and as a PNG chart.

Importing this module loads neither LightGBM nor matplotlib: the table only calls the booster's
methods, and the chart imports matplotlib when it draws.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import lightgbm as lgb

TOP_FEATURES = 20


def feature_importance(booster: lgb.Booster, top: int = TOP_FEATURES) -> pd.DataFrame:
    """The `top` features by total gain, with their share of all gain and their split count.

    Gain (the loss reduction a feature's splits bring) ranks features better than split counts,
    which favour features offering many thresholds. Ties keep the feature order (stable sort).
    """
    gain = booster.feature_importance(importance_type="gain").astype(float)
    table = pd.DataFrame(
        {
            "feature": booster.feature_name(),
            "gain": gain,
            "gain_share": gain / (gain.sum() or 1.0),
            "splits": booster.feature_importance(importance_type="split").astype(int),
        }
    )
    table = table.sort_values("gain", ascending=False, kind="stable").head(top)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table.reset_index(drop=True)


def prepare_charts() -> threading.Thread:
    """Import matplotlib in a background thread, so its half-second import overlaps work that
    releases the GIL (a LightGBM fit); join it before drawing."""

    def load() -> None:
        import matplotlib

        matplotlib.use("Agg", force=True)  # no display on servers and CI; must precede pyplot
        import matplotlib.pyplot  # noqa: F401

    thread = threading.Thread(target=load, name="import matplotlib", daemon=True)
    thread.start()
    return thread


def chart_png(height: float, draw: Callable) -> bytes:
    """A 7-inch-wide chart as PNG bytes: draw(figure, axes) fills it. No Software/date chunks, so
    the same data gives the same bytes."""
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display on servers and CI; must precede pyplot
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.0, height), dpi=90)
    try:
        draw(figure, axes)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
    finally:
        plt.close(figure)
    return buffer.getvalue()


def importance_chart_png(importance: pd.DataFrame, title: str = "lgbm_model: feature importance") -> bytes:
    """A horizontal bar chart of `feature_importance` output (most important on top), as PNG bytes."""

    def draw(figure, axes) -> None:
        rows = np.arange(len(importance))
        axes.barh(rows, importance["gain_share"].to_numpy() * 100, color="#4f43dd")
        axes.set_yticks(rows, labels=importance["feature"].tolist(), fontsize=8)
        axes.invert_yaxis()
        axes.set_xlabel("share of total gain (%)")
        axes.set_title(title, fontsize=10)

    return chart_png(1.2 + 0.28 * len(importance), draw)
