"""Intervals, the paired bootstrap, accuracy estimated from probabilities, and the promotion rule on
the same rows (pure, no Dagster)."""

import math

import numpy as np
import pytest

from census_assets.core.evaluation import (
    binary_metrics,
    estimated_accuracy,
    paired_bootstrap,
    wilson_interval,
)
from census_assets.core.promotion import decide_from_evaluation, decide_promotion

pytestmark = pytest.mark.loop


def test_wilson_interval_by_hand():
    # 8 of 10, z = 1.96: centre (0.8 + z²/20) / (1 + z²/10), half-width z·sqrt(0.016 + z²/400) / (1 + z²/10).
    low, high = wilson_interval(8, 10)
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=5e-5)  # as published for 8/10
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0  # inside [0, 1]
    assert all(math.isnan(bound) for bound in wilson_interval(0, 0))


def test_wilson_interval_covers_about_95_percent():
    rng = np.random.default_rng(3)
    truth, trials = 0.8, 300
    hits = rng.binomial(trials, truth, size=4000)
    covered = [low <= truth <= high for low, high in (wilson_interval(k, trials) for k in hits)]
    assert 0.93 <= np.mean(covered) <= 0.97


def test_binary_metrics_carry_the_accuracy_interval():
    metrics = binary_metrics([0, 0, 1, 1, 1], [0.1, 0.7, 0.6, 0.9, 0.2])
    assert metrics["accuracy"] == 0.6
    assert (metrics["accuracy_ci_low"], metrics["accuracy_ci_high"]) == wilson_interval(3, 5)


def index_bootstrap(a, b, resamples, seed):
    """The textbook paired bootstrap: resample row indices, both models on the same resampled rows."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(a), size=(resamples, len(a)))
    return a[index].mean(axis=1) - b[index].mean(axis=1)


def test_paired_bootstrap_is_the_row_resampling_bootstrap():
    rng = np.random.default_rng(0)
    challenger = rng.random(800) < 0.85
    champion = np.where(rng.random(800) < 0.7, challenger, rng.random(800) < 0.8)  # correlated, as paired models are
    result = paired_bootstrap(challenger, champion)
    assert result.rows == 800 and result.resamples == 2000
    assert result.difference == pytest.approx(challenger.mean() - champion.mean())
    assert (result.challenger_accuracy, result.champion_accuracy) == (challenger.mean(), champion.mean())
    reference = np.quantile(index_bootstrap(challenger.astype(float), champion.astype(float), 4000, 1), [0.025, 0.975])
    assert result.ci_low == pytest.approx(reference[0], abs=0.006)
    assert result.ci_high == pytest.approx(reference[1], abs=0.006)
    assert paired_bootstrap(challenger, champion) == result  # fixed seed: the same interval every time


def test_paired_bootstrap_of_identical_models_is_exactly_zero():
    same = np.array([True, False, True, True])
    result = paired_bootstrap(same, same)
    assert (result.difference, result.ci_low, result.ci_high) == (0.0, 0.0, 0.0)


def test_paired_bootstrap_refuses_rows_that_are_not_paired():
    with pytest.raises(ValueError, match="same rows"):
        paired_bootstrap([True, False], [True])
    with pytest.raises(ValueError, match="at least one row"):
        paired_bootstrap([], [])


def test_estimated_accuracy_matches_realized_when_calibrated_and_misses_label_shift():
    rng = np.random.default_rng(1)
    probability = rng.beta(0.6, 0.6, 20000)
    labels = (rng.random(20000) < probability).astype(int)  # calibrated: P(y=1 | p) = p
    realized = binary_metrics(labels, probability)
    estimate = estimated_accuracy(np.append(probability, np.nan))  # unscored rows are left out
    assert abs(estimate - realized["accuracy"]) < (realized["accuracy_ci_high"] - realized["accuracy_ci_low"]) / 2
    flipped = np.where(rng.random(20000) < 0.2, 1 - labels, labels)  # the same inputs, other labels
    assert binary_metrics(flipped, probability)["accuracy"] < estimate - 0.05  # the estimate cannot see it
    assert math.isnan(estimated_accuracy([np.nan]))


def comparison(low: float, rows: int = 3000):
    correct = np.ones(rows, dtype=bool)
    result = paired_bootstrap(correct, correct)
    return type(result)(**{**result.to_dict(), "ci_low": low, "difference": low + 0.01})


@pytest.mark.parametrize(
    "accuracy, low, champion, promote",
    [
        (0.85, -0.009, "a" * 16, True),  # within the tolerance
        (0.85, -0.011, "a" * 16, False),  # the interval reaches below -tolerance: maybe worse
        (0.79, 0.02, "a" * 16, False),  # better than the champion but below the threshold
        (0.81, None, None, True),  # no champion: the threshold alone
        (0.79, None, None, False),
    ],
)
def test_promotion_on_the_same_rows(accuracy, low, champion, promote):
    decision = decide_promotion(
        accuracy, comparison(low) if low is not None else None, champion, threshold=0.8, tolerance=0.01
    )
    assert decision.promote is promote
    assert decision.champion_version == champion  # what the conditional swap expects
    assert ("no production model yet" in decision.message) is (champion is None)
    evidence = decision.evidence()
    assert evidence["challenger_accuracy"] == accuracy and evidence["decision"] == decision.message
    if low is not None:
        assert evidence["comparison"]["ci_low"] == low and "same 3000 rows" in decision.message


def test_a_champion_without_a_comparison_is_a_bug():
    with pytest.raises(ValueError, match="comparison missing"):
        decide_promotion(0.9, None, "a" * 16, threshold=0.8, tolerance=0.01)


def test_the_decision_is_made_on_what_holdout_metrics_recorded():
    result = comparison(-0.02)
    recorded = {"overall": {"accuracy": 0.85}, "champion": {"version": "b" * 16}, "comparison": result.to_dict()}
    decision = decide_from_evaluation(recorded, threshold=0.8, tolerance=0.01)
    assert not decision.promote and decision.champion_version == "b" * 16 and decision.comparison == result
    first = decide_from_evaluation({"overall": {"accuracy": 0.85}, "champion": None, "comparison": None}, 0.8, 0.01)
    assert first.promote and first.champion_version is None


def test_roc_auc_and_log_loss_are_scikit_learns():
    from sklearn.metrics import log_loss as sklearn_log_loss
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 3000)
    p = np.round(rng.random(3000), 2)  # many ties
    p[:5] = [0.0, 1.0, 0.0, 1.0, 0.5]  # clipped at the ends
    metrics = binary_metrics(y, p)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, p), rel=1e-12)
    assert metrics["log_loss"] == pytest.approx(sklearn_log_loss(y, p, labels=[0, 1]), rel=1e-12)
