"""Per-group rates, intervals, between-group differences and the group gate, each checked against
an independent computation (scipy, scikit-learn, a published example, a bootstrap)."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn.metrics import confusion_matrix

from census_assets.core.fairness import (
    disparities,
    disparity_warnings,
    group_gate,
    group_metrics,
    paired_difference_interval,
    wilson_interval,
)

pytestmark = pytest.mark.audit


@pytest.mark.parametrize(("successes", "trials"), [(0, 7), (3, 7), (7, 7), (81, 263), (9_950, 10_000)])
def test_wilson_interval_is_scipys(successes, trials):
    low, high = wilson_interval(successes, trials)
    expected = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    assert float(low) == pytest.approx(expected.low, abs=1e-12)
    assert float(high) == pytest.approx(expected.high, abs=1e-12)


def test_wilson_interval_of_no_trials_is_nan():
    low, high = wilson_interval(np.array([0, 2]), np.array([0, 4]))
    assert np.isnan(low[0]) and np.isnan(high[0]) and 0 < low[1] < 0.5 < high[1] < 1


def test_paired_interval_is_the_published_newcombe_example():
    # Fagerland, Lydersen & Laake, "Statistical analysis of contingency tables", chapter 8: complete
    # response before and after consolidation therapy (Cavo et al. 2012), the paired table
    # [[59, 6], [16, 80]]: Newcombe square-and-add estimate -0.0621, 95% CI -0.1186 to -0.0046.
    difference, low, high = paired_difference_interval(59, 6, 16, 80)
    assert (round(float(difference), 4), round(float(low), 4), round(float(high), 4)) == (-0.0621, -0.1186, -0.0046)


def test_paired_interval_agrees_with_a_paired_bootstrap():
    rng = np.random.default_rng(7)
    champion_right = rng.random(2_000) < 0.85
    # The challenger mostly agrees with the champion: correlated outcomes, as two models have.
    challenger_right = np.where(rng.random(2_000) < 0.9, champion_right, rng.random(2_000) < 0.80)
    counts = [int(np.sum(challenger_right & champion_right)), int(np.sum(challenger_right & ~champion_right)),
              int(np.sum(~challenger_right & champion_right)), int(np.sum(~challenger_right & ~champion_right))]
    difference, low, high = paired_difference_interval(*counts)
    assert float(difference) == pytest.approx(challenger_right.mean() - champion_right.mean())
    resamples = rng.integers(0, 2_000, size=(4_000, 2_000))
    boot = challenger_right[resamples].mean(axis=1) - champion_right[resamples].mean(axis=1)
    assert float(low) == pytest.approx(np.quantile(boot, 0.025), abs=0.004)
    assert float(high) == pytest.approx(np.quantile(boot, 0.975), abs=0.004)


@pytest.fixture(scope="module")
def evaluation() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 3_000
    frame = pd.DataFrame({
        "sex": rng.choice(["Female", "Male"], size=n, p=[0.35, 0.65]),
        "race": rng.choice(["White", "Black", "Other"], size=n, p=[0.8, 0.15, 0.05]),
        "y": (rng.random(n) < 0.3).astype(int),
    })
    noise = rng.normal(0, 0.25, n) + np.where(frame["sex"] == "Female", 0.1, 0.0)
    frame["probability"] = np.clip(0.25 + 0.5 * frame["y"] + noise, 0, 1)
    return frame


def test_group_metrics_are_the_confusion_matrices_of_each_group(evaluation):
    table = group_metrics(evaluation["y"], evaluation["probability"], {c: evaluation[c] for c in ("sex", "race")})
    assert table[["column", "group"]].values.tolist() == [
        ["all", "all"], ["sex", "Female"], ["sex", "Male"], ["race", "Black"], ["race", "Other"], ["race", "White"]
    ]
    predicted = (evaluation["probability"] >= 0.5).astype(int)
    for row in table.itertuples():
        mask = np.ones(len(evaluation), bool) if row.column == "all" else (evaluation[row.column] == row.group)
        tn, fp, fn, tp = confusion_matrix(evaluation["y"][mask], predicted[mask], labels=[0, 1]).ravel()
        assert row.rows == mask.sum() and row.positives == tp + fn and row.negatives == tn + fp
        for rate, hits, trials in (
            ("accuracy", tn + tp, mask.sum()),
            ("true_positive_rate", tp, tp + fn),
            ("false_positive_rate", fp, fp + tn),
            ("selection_rate", tp + fp, mask.sum()),
        ):
            assert getattr(row, rate) == pytest.approx(hits / trials, abs=1e-12)
            interval = binomtest(int(hits), int(trials)).proportion_ci(method="wilson")
            assert getattr(row, f"{rate}_low") == pytest.approx(interval.low, abs=1e-12)
            assert getattr(row, f"{rate}_high") == pytest.approx(interval.high, abs=1e-12)


def test_a_group_without_positives_has_no_true_positive_rate():
    table = group_metrics([0, 0, 1, 0], [0.9, 0.1, 0.8, 0.2], {"g": ["a", "a", "b", "b"]})
    a = table[table["group"] == "a"].iloc[0]
    assert np.isnan(a["true_positive_rate"]) and np.isnan(a["true_positive_rate_low"])
    assert a["false_positive_rate"] == 0.5 and a["selection_rate"] == 0.5


def test_disparities_are_the_spreads_between_groups(evaluation):
    table = group_metrics(evaluation["y"], evaluation["probability"], {c: evaluation[c] for c in ("sex", "race")})
    result = disparities(table)
    assert list(result) == ["sex", "race"]
    frame = evaluation.assign(predicted=(evaluation["probability"] >= 0.5).astype(int))
    for column in ("sex", "race"):
        selection = frame.groupby(column)["predicted"].mean()
        tpr = frame[frame["y"] == 1].groupby(column)["predicted"].mean()
        fpr = frame[frame["y"] == 0].groupby(column)["predicted"].mean()
        assert result[column]["demographic_parity_difference"] == pytest.approx(selection.max() - selection.min())
        assert result[column]["demographic_parity_between"] == [selection.idxmin(), selection.idxmax()]
        assert result[column]["equalized_odds_difference"] == pytest.approx(
            max(tpr.max() - tpr.min(), fpr.max() - fpr.min())
        )
    # Women are scored higher here (the noise is shifted for them): the spread is between the sexes.
    assert result["sex"]["demographic_parity_between"] == ["Male", "Female"]


def test_disparity_warnings_name_the_difference_over_its_limit(evaluation):
    table = group_metrics(evaluation["y"], evaluation["probability"], {"sex": evaluation["sex"]})
    between = disparities(table)
    parity = between["sex"]["demographic_parity_difference"]
    limit = parity - 0.001
    lines = disparity_warnings(between, max_demographic_parity=limit, max_equalized_odds=1.0)
    assert lines == [f"sex: demographic-parity difference {parity:.4f} > {limit:.4f} (between Male and Female)"]
    assert disparity_warnings(between, max_demographic_parity=parity + 0.001, max_equalized_odds=1.0) == []


def _worse_for(evaluation: pd.DataFrame, mask: np.ndarray, share: float, seed: int = 11) -> np.ndarray:
    """The champion's probabilities with `share` of the rows in mask flipped to the wrong side."""
    rng = np.random.default_rng(seed)
    probability = evaluation["probability"].to_numpy().copy()
    flip = mask & (rng.random(len(probability)) < share)
    probability[flip] = np.where(evaluation["y"].to_numpy()[flip] == 1, 0.1, 0.9)
    return probability


def test_gate_refuses_a_challenger_worse_for_one_group_only(evaluation):
    female = (evaluation["sex"] == "Female").to_numpy()
    challenger = _worse_for(evaluation, female, share=0.12)
    gate = group_gate(evaluation["y"], challenger, evaluation["probability"], {"sex": evaluation["sex"]})
    assert not gate.passed and gate.failed == ["sex=Female"]
    assert "sex=Female" in gate.message and "sex=Male" not in gate.message
    rows = gate.table.set_index("group")
    assert rows.loc["Male", "difference"] == 0 and rows.loc["Male", "verdict"] == "ok"
    # Every figure of the failing group recomputed from the rows.
    y, champion = evaluation["y"].to_numpy()[female], (evaluation["probability"].to_numpy()[female] >= 0.5)
    challenger_right, champion_right = (challenger[female] >= 0.5) == y, champion == y
    assert rows.loc["Female", "rows"] == female.sum()
    assert rows.loc["Female", "champion_accuracy"] == pytest.approx(champion_right.mean())
    assert rows.loc["Female", "challenger_accuracy"] == pytest.approx(challenger_right.mean())
    assert rows.loc["Female", "difference"] == pytest.approx(challenger_right.mean() - champion_right.mean())
    _, low, high = paired_difference_interval(
        np.sum(challenger_right & champion_right), np.sum(challenger_right & ~champion_right),
        np.sum(~challenger_right & champion_right), np.sum(~challenger_right & ~champion_right),
    )
    assert (rows.loc["Female", "low"], rows.loc["Female", "high"]) == pytest.approx((float(low), float(high)))
    assert rows.loc["Female", "high"] < -0.02
    recorded = gate.to_dict()
    assert recorded["passed"] is False and recorded["failed"] == ["sex=Female"] and recorded["message"] == gate.message
    assert recorded["groups"] == gate.table.to_dict(orient="records") and recorded["group_tolerance"] == 0.02


def test_gate_passes_an_equal_challenger_and_a_small_drop(evaluation):
    groups = {c: evaluation[c] for c in ("sex", "race")}
    equal = group_gate(evaluation["y"], evaluation["probability"], evaluation["probability"], groups)
    assert equal.passed and equal.failed == [] and (equal.table["difference"] == 0).all()
    assert ((equal.table["low"] <= 0) & (equal.table["high"] >= 0)).all()
    # A drop the tolerance allows (about 1 point for women) does not fail the gate.
    female = (evaluation["sex"] == "Female").to_numpy()
    slight = group_gate(evaluation["y"], _worse_for(evaluation, female, 0.01), evaluation["probability"], groups)
    assert slight.passed, slight.message


def test_gate_lists_small_groups_as_too_small_and_never_fails_on_them(evaluation):
    groups = {"race": evaluation["race"]}
    other = (evaluation["race"] == "Other").to_numpy()
    challenger = _worse_for(evaluation, other, share=1.0)  # wrong on every Other row
    rows = int(other.sum())
    judged = group_gate(evaluation["y"], challenger, evaluation["probability"], groups, min_group_rows=rows)
    assert judged.failed == ["race=Other"]
    small = group_gate(evaluation["y"], challenger, evaluation["probability"], groups, min_group_rows=rows + 1)
    assert small.passed and small.too_small == ["race=Other"]
    assert f"too small to judge (< {rows + 1} rows): race=Other" in small.message
