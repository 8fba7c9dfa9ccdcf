"""Feature importance table and chart, on a small booster fitted here (no Dagster), and the line
chart the reliability diagrams are drawn with."""

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from census_assets.core.reporting import Bars, Line, feature_importance, importance_chart_png, line_chart_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, 25)), columns=[f"f{i:02d}" for i in range(25)])
    y = (2 * X["f03"] + X["f07"] + 0.3 * rng.normal(size=600) > 0).astype(int)  # f03 then f07 matter
    params = {"objective": "binary", "num_threads": 1, "seed": 1, "verbose": -1}
    return lgb.train(params, lgb.Dataset(X, y), num_boost_round=20)


def test_importance_is_the_top_features_by_gain(booster):
    table = feature_importance(booster, top=20)
    assert list(table.columns) == ["rank", "feature", "gain", "gain_share", "splits"]
    assert len(table) == 20 and table["rank"].tolist() == list(range(1, 21))
    assert table["feature"].iloc[:2].tolist() == ["f03", "f07"]
    assert table["gain"].is_monotonic_decreasing
    all_gain = booster.feature_importance(importance_type="gain")
    assert table["gain_share"].iloc[0] == pytest.approx(all_gain.max() / all_gain.sum())
    assert table["gain_share"].sum() <= 1.0 + 1e-12


def test_chart_is_a_png_of_the_table_and_repeats_exactly(booster):
    table = feature_importance(booster, top=5)
    png = importance_chart_png(table)
    assert png.startswith(PNG_SIGNATURE)
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")  # IHDR
    assert width > 300 and height > 100
    assert importance_chart_png(table) == png  # no timestamp in the file: same model, same bytes
    taller = importance_chart_png(feature_importance(booster, top=20))
    assert int.from_bytes(taller[20:24], "big") > height  # one bar per feature


def size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")  # IHDR


def test_line_chart_is_a_png_of_its_lines_and_repeats_exactly():
    lines = [
        Line("diagonal", [0, 1], [0, 1], dashed=True, markers=False),
        Line("model", [0.1, 0.5, 0.9], [0.2, 0.4, 0.95]),
    ]
    png = line_chart_png(lines, "title", "x", "y", (0, 1), (0, 1))
    assert png.startswith(PNG_SIGNATURE) and size(png) == (630, 450)  # 7 x 5 inches at 90 dpi
    assert line_chart_png(lines, "title", "x", "y", (0, 1), (0, 1)) == png
    moved = [lines[0], Line("model", [0.1, 0.5, 0.9], [0.2, 0.6, 0.95])]
    assert line_chart_png(moved, "title", "x", "y", (0, 1), (0, 1)) != png
    bars = Bars([0.25, 0.75], [10, 3], 0.5, "rows")
    assert line_chart_png(lines, "title", "x", "y", (0, 1), (0, 1), bars=bars) != png
    assert size(line_chart_png(lines, "title", "x", "y", (0, 1), (0, 1), height=3.0)) == (630, 270)
