"""What a fitted model shows a person: its feature importance as a table and as a PNG chart.

Importing this module loads neither LightGBM nor a drawing library: the table only calls the
booster's methods, and each chart imports what draws it when it draws.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


# ---- Pillow charts ---------------------------------------------------------------------------------
# The charts every training run draws (feature importance, contributions, reliability diagrams) use
# Pillow: they need only bars, lines and text, and importing matplotlib costs more than the final
# fit on the bundled table. chart_png (matplotlib) remains for the time-axis charts of batch scoring.

CHART_WIDTH = 630  # pixels: 7 inches at 90 dpi, as chart_png's charts
DPI = 90
SUPERSAMPLE = 2  # drawn at twice the size and scaled down: smooth lines and text
BAR_PITCH = 25  # pixels per bar of a bar chart
BAR_COLOR = (79, 67, 221)
INK = (38, 38, 38)
GRID = (215, 215, 215)
BACKGROUND_BARS = (217, 217, 217)
# matplotlib's default cycle, so lines look as they did
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]  # fmt: skip


@functools.cache
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size * SUPERSAMPLE)


def _ticks(low: float, high: float) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten, at most 6 intervals) from
    `low` to the first tick at or above `high`."""
    span = max(high - low, 1e-12)
    magnitude = 10.0 ** math.floor(math.log10(span / 5))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if span / (m * magnitude) <= 5)
    count = math.ceil(span / step - 1e-9)
    return [low + step * i for i in range(count + 1)]


class _Canvas:
    """A chart being drawn: the plot box in pixels (of the final image), data -> pixel maps, axes."""

    def __init__(self, height: int, left: float, title: str, top: float = 34, bottom_margin: float = 46):
        from PIL import Image, ImageDraw

        self.width, self.height = CHART_WIDTH, height
        self.left, self.top, self.right, self.bottom = left, top, CHART_WIDTH - 20, height - bottom_margin
        self.image = Image.new("RGB", (self.width * SUPERSAMPLE, height * SUPERSAMPLE), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.text((self.width / 2, 10), title, 13, "mt")
        self.x_range = self.y_range = (0.0, 1.0)

    def text(self, at: tuple[float, float], text: str, size: int, anchor: str) -> None:
        self.draw.text((at[0] * SUPERSAMPLE, at[1] * SUPERSAMPLE), text, fill=INK, font=_font(size), anchor=anchor)

    def line(self, points: list[tuple[float, float]], color, width: float = 1) -> None:
        scaled = [(x * SUPERSAMPLE, y * SUPERSAMPLE) for x, y in points]
        self.draw.line(scaled, fill=color, width=round(width * SUPERSAMPLE), joint="curve")

    def box(self, corners: tuple[float, float, float, float], fill=None, outline=None) -> None:
        self.draw.rectangle([c * SUPERSAMPLE for c in corners], fill=fill, outline=outline, width=SUPERSAMPLE)

    def x(self, value: float) -> float:
        low, high = self.x_range
        return self.left + (self.right - self.left) * (value - low) / (high - low)

    def y(self, value: float) -> float:
        low, high = self.y_range
        return self.bottom - (self.bottom - self.top) * (value - low) / (high - low)

    def x_axis(self, ticks: list[float], label: str) -> None:
        self.x_range = (ticks[0], ticks[-1])
        for tick in ticks:
            self.line([(self.x(tick), self.top), (self.x(tick), self.bottom)], GRID)
            self.line([(self.x(tick), self.bottom), (self.x(tick), self.bottom + 4)], INK)
            self.text((self.x(tick), self.bottom + 6), f"{tick:g}", 10, "mt")
        self.text(((self.left + self.right) / 2, self.bottom + 24), label, 11, "mt")

    def y_axis(self, ticks: list[float], label: str) -> None:
        self.y_range = (ticks[0], ticks[-1])
        for tick in ticks:
            self.line([(self.left, self.y(tick)), (self.right, self.y(tick))], GRID)
            self.line([(self.left - 4, self.y(tick)), (self.left, self.y(tick))], INK)
            self.text((self.left - 6, self.y(tick)), f"{tick:g}", 10, "rm")
        self.vertical_text(label, 8)

    def vertical_text(self, label: str, at_x: float) -> None:
        """`label` turned a quarter left, its left edge at `at_x`, centred on the plot's height."""
        from PIL import Image, ImageDraw

        font = _font(11)
        width = round(font.getlength(label)) + 4
        strip = Image.new("RGB", (width, 16 * SUPERSAMPLE), "white")
        ImageDraw.Draw(strip).text((width / 2, 8 * SUPERSAMPLE), label, fill=INK, font=font, anchor="mm")
        rotated = strip.rotate(90, expand=True)
        middle = (self.top + self.bottom) / 2 * SUPERSAMPLE
        self.image.paste(rotated, (round(at_x * SUPERSAMPLE), round(middle - rotated.height / 2)))

    def png(self) -> bytes:
        from PIL import Image

        self.box((self.left, self.top, self.right, self.bottom), outline=INK)
        # Each pixel the mean of the SUPERSAMPLE x SUPERSAMPLE pixels drawn for it: smooth edges
        # without a resampling filter's cost.
        image = self.image.reduce(SUPERSAMPLE)
        buffer = io.BytesIO()
        # A palette of 64 colours keeps the smoothed edges and makes the file a quarter of the size,
        # which matters: charts travel base64-encoded inside Dagster's event metadata. The fast
        # octree finds it in a small part of the default median cut's time.
        image.quantize(64, method=Image.Quantize.FASTOCTREE).save(buffer, format="PNG")
        return buffer.getvalue()


def bar_chart_png(labels, values, title: str, xlabel: str, color=BAR_COLOR) -> bytes:
    """Horizontal bars, the first on top, one labelled row each, from 0: PNG bytes; the same values
    give the same bytes."""
    labels, values = [str(label) for label in labels], [float(value) for value in values]
    width = max((_font(11).getlength(label) / SUPERSAMPLE for label in labels), default=0.0)
    canvas = _Canvas(34 + BAR_PITCH * max(len(labels), 1) + 46, left=20 + width, title=title)
    canvas.x_axis(_ticks(0.0, max(values, default=0.0) or 1.0), xlabel)
    for row, (label, value) in enumerate(zip(labels, values)):
        middle = canvas.top + BAR_PITCH * (row + 0.5)
        canvas.box((canvas.left, middle - 0.4 * BAR_PITCH, canvas.x(value), middle + 0.4 * BAR_PITCH), fill=color)
        canvas.text((canvas.left - 6, middle), label, 11, "rm")
    return canvas.png()


def importance_chart_png(importance: pd.DataFrame, title: str = "lgbm_model: feature importance") -> bytes:
    """A horizontal bar chart of `feature_importance` output (most important on top), as PNG bytes."""
    shares = importance["gain_share"].to_numpy(dtype=float) * 100
    return bar_chart_png(importance["feature"], shares, title, "share of total gain (%)")


@dataclass(frozen=True)
class Line:
    label: str
    x: Sequence[float]
    y: Sequence[float]
    dashed: bool = False
    markers: bool = True
    color: tuple[int, int, int] | None = None  # None: the next colour of PALETTE


@dataclass(frozen=True)
class Bars:
    """Background bars on their own scale (the bottom quarter of the plot), labelled on the right."""

    centres: Sequence[float]
    heights: Sequence[float]
    width: float
    label: str


def line_chart_png(
    lines: Sequence[Line],
    title: str,
    xlabel: str,
    ylabel: str,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    height: float = 5.0,
    bars: Bars | None = None,
) -> bytes:
    """Lines (with markers unless told otherwise) on numeric axes, a legend in the upper left and
    optional background bars: PNG bytes; the same values give the same bytes."""
    canvas = _Canvas(round(height * DPI), left=62, title=title)
    if bars is not None:
        canvas.right -= 56
    canvas.x_axis(_ticks(*x_range), xlabel)
    canvas.y_axis(_ticks(*y_range), ylabel)
    if bars is not None:
        # The bars' own scale, up to four times the tallest bar: they fill the bottom quarter.
        scale = _ticks(0.0, 4 * max(max(bars.heights, default=0.0), 1.0))

        def bar_y(rows: float) -> float:
            return canvas.bottom - (canvas.bottom - canvas.top) * rows / scale[-1]

        for centre, rows in zip(bars.centres, bars.heights):
            low, high = canvas.x(centre - bars.width / 2), canvas.x(centre + bars.width / 2)
            canvas.box((low, bar_y(rows), high, canvas.bottom), fill=BACKGROUND_BARS, outline="white")
        for tick in scale:
            canvas.line([(canvas.right, bar_y(tick)), (canvas.right + 4, bar_y(tick))], INK)
            canvas.text((canvas.right + 6, bar_y(tick)), f"{tick:g}", 10, "lm")
        canvas.vertical_text(bars.label, canvas.right + 38)
    colours = iter(PALETTE * (len(lines) // len(PALETTE) + 1))
    legend = []
    for line in lines:
        colour = line.color or next(colours)
        points = [(canvas.x(x), canvas.y(y)) for x, y in zip(line.x, line.y)]
        for start, end in zip(points, points[1:]):
            for piece in _dashes(start, end) if line.dashed else [(start, end)]:
                canvas.line(list(piece), colour, width=1 if line.dashed else 1.5)
        if line.markers:
            for x, y in points:
                canvas.draw.ellipse([(x - 2.5) * SUPERSAMPLE, (y - 2.5) * SUPERSAMPLE,
                                     (x + 2.5) * SUPERSAMPLE, (y + 2.5) * SUPERSAMPLE], fill=colour)  # fmt: skip
        legend.append((line, colour))
    _legend(canvas, legend)
    return canvas.png()


def _dashes(start: tuple[float, float], end: tuple[float, float], dash: float = 6.0, gap: float = 4.0):
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0)
    position = 0.0
    while position < length:
        stop = min(position + dash, length)
        yield ((x0 + (x1 - x0) * position / length, y0 + (y1 - y0) * position / length),
               (x0 + (x1 - x0) * stop / length, y0 + (y1 - y0) * stop / length))  # fmt: skip
        position = stop + gap


def _legend(canvas: _Canvas, entries: list[tuple[Line, tuple[int, int, int]]]) -> None:
    if not entries:
        return
    font_size, row = 9, 14
    width = max(_font(font_size).getlength(line.label) / SUPERSAMPLE for line, _ in entries) + 34
    left, top = canvas.left + 8, canvas.top + 8
    canvas.box((left, top, left + width, top + 6 + row * len(entries)), fill="white", outline=GRID)
    for index, (line, colour) in enumerate(entries):
        middle = top + 3 + row * (index + 0.5)
        sample = [(left + 6, middle), (left + 24, middle)]
        for piece in _dashes(*sample, dash=4.0, gap=3.0) if line.dashed else [tuple(sample)]:
            canvas.line(list(piece), colour, width=1.5)
        canvas.text((left + 29, middle), line.label, font_size, "lm")
