"""Brier score, expected calibration error and the reliability diagram, against a hand
computation on a small example and against scikit-learn."""

import json

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from census_assets.core import calibration as calibration_module
from census_assets.core.calibration import (
    brier_score,
    calibration,
    calibration_report,
    calibration_warning,
    diagram_curves,
    reliability_bins,
    reliability_diagram_png,
)

pytestmark = pytest.mark.audit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Eight rows worked by hand (see the test): five non-empty bins.
Y = [0, 1, 0, 1, 1, 0, 1, 0]
P = [0.05, 0.15, 0.15, 0.62, 0.68, 0.65, 0.95, 0.85]


def test_small_example_by_hand():
    result = calibration(Y, P)
    # Squared errors: .05² .85² .15² .38² .32² .65² .05² .85²
    assert result["brier"] == pytest.approx(
        (0.0025 + 0.7225 + 0.0225 + 0.1444 + 0.1024 + 0.4225 + 0.0025 + 0.7225) / 8
    )
    filled = {i: b for i, b in enumerate(result["bins"]) if b["rows"]}
    assert sorted(filled) == [0, 1, 6, 8, 9]
    assert [filled[i]["rows"] for i in (0, 1, 6, 8, 9)] == [1, 2, 3, 1, 1]
    assert filled[6]["mean_probability"] == pytest.approx(0.65)
    assert filled[6]["observed_rate"] == pytest.approx(2 / 3)
    # |gap| x rows: bin 0 .05 x1, bin 1 .35 x2, bin 6 (2/3 - .65) x3, bin 8 .85 x1, bin 9 .05 x1
    assert result["ece"] == pytest.approx((0.05 + 0.70 + 0.05 + 0.85 + 0.05) / 8)
    assert result["rows"] == 8 and len(result["bins"]) == 10
    assert result["bins"][3] == {"low": 0.30000000000000004, "high": 0.4, "rows": 0,
                                 "mean_probability": None, "observed_rate": None}


def test_bins_are_right_closed_as_scikit_learns():
    bins = reliability_bins([0, 1, 1, 0], [0.0, 0.1, 0.2, 1.0])
    assert [b["rows"] for b in bins] == [2, 1, 0, 0, 0, 0, 0, 0, 0, 1]


def test_against_scikit_learn_on_random_rows():
    rng = np.random.default_rng(5)
    p = rng.beta(2, 3, size=5_000)
    y = (rng.random(5_000) < p**1.3).astype(int)  # a miscalibrated model
    result = calibration(y, p)
    assert result["brier"] == pytest.approx(brier_score_loss(y, p))
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="uniform")
    filled = [b for b in result["bins"] if b["rows"]]
    assert [b["observed_rate"] for b in filled] == pytest.approx(observed.tolist())
    assert [b["mean_probability"] for b in filled] == pytest.approx(predicted.tolist())
    rows = np.array([b["rows"] for b in filled])
    assert result["ece"] == pytest.approx(float(np.sum(rows * np.abs(observed - predicted)) / rows.sum()))
    assert result["ece"] > 0.05


def test_report_per_group_is_the_calibration_of_each_groups_rows():
    groups = {"sex": ["F", "M", "F", "M", "M", "F", "F", "M"]}
    report = calibration_report(Y, P, groups)
    assert report["overall"] == calibration(Y, P)
    female = [i for i, g in enumerate(groups["sex"]) if g == "F"]
    assert report["groups"]["sex"]["F"] == calibration([Y[i] for i in female], [P[i] for i in female])
    assert list(report["groups"]["sex"]) == ["F", "M"]
    assert brier_score(Y, P) == report["overall"]["brier"]


def test_warning_says_what_the_probabilities_can_be_used_for():
    report = calibration_report(Y, P, {})
    text = calibration_warning(report, limit=0.05)
    assert text.startswith("expected calibration error 0.2125 > 0.0500")
    assert "not a frequency" in text and "(0.8, 0.9]: mean score 0.850, observed rate 0.000 (overconfident)" in text
    assert calibration_warning(report, limit=0.25) is None


def test_reliability_diagram_is_a_png_that_repeats_exactly():
    report = calibration_report(Y, P, {"sex": ["F", "M", "F", "M", "M", "F", "F", "M"]})
    png = reliability_diagram_png(diagram_curves(report, "sex"), title="holdout_metrics: reliability")
    assert png.startswith(PNG_SIGNATURE)
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")  # IHDR
    assert width > 300 and height > 300
    assert reliability_diagram_png(diagram_curves(report, "sex"), title="holdout_metrics: reliability") == png
    assert reliability_diagram_png(diagram_curves(report), title="holdout_metrics: reliability") != png
    assert list(diagram_curves(report, "sex")) == ["all rows", "sex=F", "sex=M"]


def test_the_same_diagram_is_drawn_once_per_process(monkeypatch):
    # holdout_metrics draws the model's diagrams, production_model asks for them again from the
    # JSON holdout_metrics stored: the same values, so the same bytes without drawing.
    drawn = []
    monkeypatch.setattr(calibration_module, "_DRAWN", {})
    monkeypatch.setattr(calibration_module, "line_chart_png", lambda *args, **kwargs: drawn.append(args) or b"png")
    report = calibration_report(Y, P, {"sex": ["F", "M", "F", "M", "M", "F", "F", "M"]})
    stored = json.loads(json.dumps(report, sort_keys=True))  # as the IO manager stores it
    assert reliability_diagram_png(diagram_curves(report, "sex"), title="model v1: reliability by sex") == b"png"
    assert reliability_diagram_png(diagram_curves(stored, "sex"), title="model v1: reliability by sex") == b"png"
    assert len(drawn) == 1
    reliability_diagram_png(diagram_curves(stored, "sex"), title="model v2: reliability by sex")
    changed = json.loads(json.dumps(report))
    changed["overall"]["bins"][0]["observed_rate"] = 0.5
    reliability_diagram_png(diagram_curves(changed, "sex"), title="model v1: reliability by sex")
    assert len(drawn) == 3  # another title, another value: drawn
    reliability_diagram_png(dict(reversed(diagram_curves(report, "sex").items())), title="model v1: reliability by sex")
    assert len(drawn) == 4  # the lines in another order
    for version in range(20):  # only the latest are kept
        reliability_diagram_png(diagram_curves(report), title=f"model {version}")
    assert len(calibration_module._DRAWN) == calibration_module._DRAWN_KEPT
