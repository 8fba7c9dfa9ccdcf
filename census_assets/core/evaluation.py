"""Metrics of a binary classifier on labelled rows, overall and per group, with 95% intervals; the
paired comparison of two models on the same rows; accuracy estimated from probabilities alone
(no Dagster).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from census_assets.core.labels import DECISION_THRESHOLD

GROUP_COLUMNS = ("sex", "race")
CONFIDENCE = 0.95
Z_95 = 1.959963984540054  # the standard normal quantile at 97.5%
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 17  # fixed: the same rows give the same interval, run after run
ESTIMATION_ASSUMPTION = (
    "confidence-based estimate: the mean over scored rows of the probability of the predicted class; it "
    "assumes the model is calibrated on the batch's population, so it sees input (covariate) shift but not "
    "label or concept shift, where the same inputs come with other labels"
)


def wilson_interval(successes: float, trials: float, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); NaN for no trials. Unlike the
    normal approximation it stays inside [0, 1] and is sound near 0 and 1 and for small samples."""
    if trials <= 0:
        return float("nan"), float("nan")
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * np.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def roc_auc(y: np.ndarray, probability: np.ndarray) -> float:
    """The area under the ROC curve as the Mann-Whitney statistic: the share of (positive, negative)
    pairs ranked right, ties counting half (what scikit-learn's roc_auc_score computes, in one
    ranking). NaN with one class only."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if not positives or not negatives:
        return float("nan")
    ranks = pd.Series(probability).rank(method="average").to_numpy()
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def log_loss(y: np.ndarray, probability: np.ndarray) -> float:
    """Mean binary cross-entropy, probabilities clipped to [eps, 1 - eps] as scikit-learn clips them."""
    eps = np.finfo(float).eps
    clipped = np.clip(probability, eps, 1 - eps)
    return float(-np.mean(np.where(y == 1, np.log(clipped), np.log1p(-clipped))))


def binary_metrics(
    y_true: Sequence[int], probability: Sequence[float], threshold: float = DECISION_THRESHOLD
) -> dict[str, float]:
    """accuracy with its 95% Wilson interval, ROC AUC, log loss and the confusion matrix cells, all
    as plain floats. Plain numpy: a labelled batch's groups are measured in milliseconds.

    ROC AUC is NaN when only one class is present (a small group can have that).
    """
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probability, dtype=float)
    predicted = (p >= threshold).astype(int)
    tp = float(((predicted == 1) & (y == 1)).sum())
    tn = float(((predicted == 0) & (y == 0)).sum())
    fp = float(((predicted == 1) & (y == 0)).sum())
    fn = float(len(y) - tp - tn - fp)
    low, high = wilson_interval(tp + tn, float(len(y)))
    return {
        "rows": float(len(y)),
        "accuracy": (tp + tn) / len(y),
        "accuracy_ci_low": low,
        "accuracy_ci_high": high,
        "roc_auc": roc_auc(y, p),
        "log_loss": log_loss(y, p),
        "positive_rate": float(y.mean()),
        "predicted_positive_rate": float(predicted.mean()),
        "true_negative": tn,
        "false_positive": fp,
        "false_negative": fn,
        "true_positive": tp,
    }


def holdout_report(
    y_true: Sequence[int],
    probability: Sequence[float],
    groups: Mapping[str, pd.Series],
) -> dict:
    """{"overall": metrics, "groups": {column: {value: metrics}}}."""
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probability, dtype=float)
    report = {"overall": binary_metrics(y, p), "groups": {}}
    for column, values in groups.items():
        values = np.asarray(values)
        report["groups"][column] = {
            str(value): binary_metrics(y[values == value], p[values == value])
            for value in sorted(pd.unique(values))
        }
    return report


def estimated_accuracy(probability: Sequence[float], threshold: float = DECISION_THRESHOLD) -> float:
    """The accuracy a model expects of itself on rows it scored, before any label arrives: the mean
    probability of the class it predicts (ESTIMATION_ASSUMPTION). NaN when no row was scored."""
    p = np.asarray(probability, dtype=float)
    p = p[~np.isnan(p)]
    if not len(p):
        return float("nan")
    return float(np.where(p >= threshold, p, 1 - p).mean())


@dataclass(frozen=True)
class PairedComparison:
    """Challenger minus champion accuracy on the same rows, with its two-sided paired-bootstrap
    interval (percentiles of the resampled differences)."""

    rows: int
    challenger_accuracy: float
    champion_accuracy: float
    difference: float
    ci_low: float
    ci_high: float
    resamples: int
    seed: int

    def to_dict(self) -> dict:
        return asdict(self)

    def figures(self) -> dict[str, float]:
        """The champion's accuracy and the difference with its interval, as holdout_metrics and the
        promotion check show them."""
        return {
            "champion_accuracy": self.champion_accuracy,
            "accuracy_difference": self.difference,
            "accuracy_difference_ci_low": self.ci_low,
            "accuracy_difference_ci_high": self.ci_high,
        }


def paired_bootstrap(
    challenger_correct: Sequence[bool],
    champion_correct: Sequence[bool],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> PairedComparison:
    """The paired bootstrap of challenger - champion accuracy: rows resampled with replacement,
    both models judged on each resample's rows.

    A row contributes +1 (only the challenger right), -1 (only the champion right) or 0 to the
    difference, so a resample's difference is fixed by how many of each it drew, and those counts
    follow a multinomial distribution with the observed shares. Drawing the counts directly is the
    same bootstrap as drawing row indices, in O(resamples) instead of O(rows x resamples) memory.
    """
    challenger = np.asarray(challenger_correct, dtype=bool)
    champion = np.asarray(champion_correct, dtype=bool)
    if challenger.shape != champion.shape or challenger.ndim != 1:
        raise ValueError("paired_bootstrap needs one correctness flag per row for each model, on the same rows")
    rows = len(challenger)
    if rows == 0:
        raise ValueError("paired_bootstrap needs at least one row")
    only_challenger = int((challenger & ~champion).sum())
    only_champion = int((champion & ~challenger).sum())
    shares = np.array([only_challenger, only_champion, rows - only_challenger - only_champion]) / rows
    counts = np.random.default_rng(seed).multinomial(rows, shares, size=resamples)
    differences = (counts[:, 0] - counts[:, 1]) / rows
    tail = (1 - confidence) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    return PairedComparison(
        rows=rows,
        challenger_accuracy=float(challenger.mean()),
        champion_accuracy=float(champion.mean()),
        difference=(only_challenger - only_champion) / rows,
        ci_low=float(low),
        ci_high=float(high),
        resamples=resamples,
        seed=seed,
    )
