"""Held-out metrics, overall and per group (pure, no Dagster)."""

import math

import numpy as np
import pandas as pd
import pytest

from census_assets.core.evaluation import binary_metrics, holdout_report

pytestmark = pytest.mark.lifecycle

Y = [0, 0, 1, 1]
P = [0.1, 0.6, 0.4, 0.9]


def log_loss_by_formula(y, p) -> float:
    """Mean binary cross-entropy, -mean(y log p + (1 - y) log(1 - p)), written out (no sklearn)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_binary_metrics_by_hand():
    metrics = binary_metrics(Y, P)
    assert metrics["accuracy"] == 0.5
    assert metrics["roc_auc"] == 0.75  # 3 of 4 positive/negative pairs ranked right
    # Each row's probability of its true class: 0.9, 0.4, 0.4, 0.9.
    assert metrics["log_loss"] == pytest.approx(-(math.log(0.9) + math.log(0.4)) / 2, rel=1e-12)
    assert metrics["log_loss"] == pytest.approx(log_loss_by_formula(Y, P), rel=1e-12)
    cells = [metrics[k] for k in ("true_negative", "false_positive", "false_negative", "true_positive")]
    assert cells == [1.0, 1.0, 1.0, 1.0]
    assert all(isinstance(value, float) for value in metrics.values())


def test_single_class_group_has_nan_auc_but_other_metrics():
    metrics = binary_metrics([1, 1], [0.7, 0.2])
    assert math.isnan(metrics["roc_auc"])
    assert metrics["accuracy"] == 0.5
    assert metrics["log_loss"] == pytest.approx(-(math.log(0.7) + math.log(0.2)) / 2, rel=1e-12)


def test_report_per_group():
    groups = {"sex": pd.Series(["F", "M", "F", "M"]), "race": pd.Series(["x", "x", "x", "y"])}
    report = holdout_report(Y, P, groups)
    assert report["overall"]["rows"] == 4.0
    assert set(report["groups"]["sex"]) == {"F", "M"}
    # F rows: (y=0, p=0.1) right, (y=1, p=0.4) wrong.
    assert report["groups"]["sex"]["F"]["accuracy"] == 0.5
    assert report["groups"]["race"]["y"]["rows"] == 1.0
    assert report["groups"]["race"]["x"]["accuracy"] == pytest.approx(1 / 3)


def test_group_rows_add_up():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = rng.random(500)
    groups = {"g": pd.Series(rng.choice(["a", "b", "c"], 500))}
    report = holdout_report(y, p, groups)
    assert report["overall"]["log_loss"] == pytest.approx(log_loss_by_formula(y, p), rel=1e-12)
    for value, metrics in report["groups"]["g"].items():
        in_group = groups["g"].to_numpy() == value
        assert metrics["log_loss"] == pytest.approx(log_loss_by_formula(y[in_group], p[in_group]), rel=1e-12)
    assert sum(m["rows"] for m in report["groups"]["g"].values()) == 500
    assert sum(m["true_positive"] for m in report["groups"]["g"].values()) == report["overall"]["true_positive"]
