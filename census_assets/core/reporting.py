"""What a fitted model shows a person: its feature importance as a table and as a PNG chart.

Importing this module loads neither LightGBM nor a drawing library: the table only calls the
booster's methods, and each chart imports what draws it when it draws.
"""

from __future__ import annotations

import functools
import io
import math
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


def chart_png(height: float, draw: Callable) -> bytes:
    """A 7-inch-wide matplotlib chart as PNG bytes: draw(figure, axes) fills it. No Software/date
    chunks, so the same data gives the same bytes.

    The figure is drawn on matplotlib's Agg canvas directly: pyplot (its figure manager, backend
    selection and import, which cost more than drawing a chart) is never loaded, no display is
    needed, and nothing is left open to close.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, height), dpi=90)
    FigureCanvasAgg(figure)
    draw(figure, figure.subplots())
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


# The importance chart is drawn with Pillow, not matplotlib: it is made on every training run, right
# after the final fit, and importing matplotlib costs more than that fit on the bundled table, for a
# chart of bars and text that Pillow draws directly.
CHART_WIDTH = 630  # pixels: 7 inches at 90 dpi, as chart_png's charts
BAR_PITCH = 25  # pixels per feature
BAR_COLOR = (79, 67, 221)
INK = (38, 38, 38)
GRID = (200, 200, 200)


@functools.cache
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _axis_step(largest: float) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving at most 6 ticks up to `largest`."""
    magnitude = 10.0 ** math.floor(math.log10(largest / 5))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if largest / (m * magnitude) <= 5)


def importance_chart_png(importance: pd.DataFrame, title: str = "lgbm_model: feature importance") -> bytes:
    """A horizontal bar chart of `feature_importance` output (most important on top), as PNG bytes;
    the same table gives the same bytes."""
    from PIL import Image, ImageDraw

    shares = importance["gain_share"].to_numpy(dtype=float) * 100
    labels = [str(name) for name in importance["feature"]]
    text, small, heading = _font(11), _font(10), _font(13)
    largest = max(float(shares.max(initial=0.0)), 1.0)
    step = _axis_step(largest)
    axis_end = step * math.ceil(largest / step)

    left = 12 + max((text.getlength(label) for label in labels), default=0.0) + 8
    right, top = CHART_WIDTH - 20, 34
    bottom = top + BAR_PITCH * max(len(labels), 1)
    image = Image.new("RGB", (CHART_WIDTH, int(bottom) + 46), "white")
    draw = ImageDraw.Draw(image)
    draw.text((CHART_WIDTH / 2, 10), title, fill=INK, font=heading, anchor="mt")

    def x(share: float) -> float:
        return left + (right - left) * share / axis_end

    for tick in [step * i for i in range(int(round(axis_end / step)) + 1)]:
        draw.line([(x(tick), top), (x(tick), bottom)], fill=GRID)
        draw.line([(x(tick), bottom), (x(tick), bottom + 4)], fill=INK)
        draw.text((x(tick), bottom + 6), f"{tick:g}", fill=INK, font=small, anchor="mt")
    for row, (label, share) in enumerate(zip(labels, shares)):
        middle = top + BAR_PITCH * (row + 0.5)
        draw.rectangle([left, middle - 0.4 * BAR_PITCH, x(share), middle + 0.4 * BAR_PITCH], fill=BAR_COLOR)
        draw.text((left - 6, middle), label, fill=INK, font=text, anchor="rm")
    draw.rectangle([left, top, right, bottom], outline=INK)
    draw.text(((left + right) / 2, bottom + 24), "share of total gain (%)", fill=INK, font=text, anchor="mt")

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
