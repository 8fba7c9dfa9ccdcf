"""Challenger and champion judged on the same rows (no Dagster, no storage).

Both models score the same cleaned rows, each through its own vocabulary; the result keeps the
rows' labels, group values and both models' probabilities, so every further judgment (per group,
calibration, fairness) is made on exactly these rows, beside the paired comparison of accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from census_assets.core.evaluation import PairedComparison, holdout_report, paired_bootstrap
from census_assets.core.features import encode, split_target
from census_assets.core.labels import DECISION_THRESHOLD
from census_assets.core.training import TrainedModel

CHALLENGER = "challenger"
CHAMPION = "champion"


@dataclass(frozen=True)
class SameRowsEvaluation:
    y: np.ndarray  # the true class of each row
    groups: dict[str, np.ndarray]  # group column -> each row's value
    probabilities: dict[str, np.ndarray]  # CHALLENGER (and CHAMPION when there is one) -> probability per row
    reports: dict[str, dict]  # the same keys -> holdout_report: overall and per group metrics
    comparison: PairedComparison | None  # challenger - champion accuracy; None without a champion
    unseen: dict[str, dict[str, int]]  # categories the challenger's vocabulary does not know


def evaluate_on_rows(
    cleaned: pd.DataFrame,
    challenger: TrainedModel,
    champion: TrainedModel | None,
    group_columns: Sequence[str],
    threshold: float = DECISION_THRESHOLD,
) -> SameRowsEvaluation:
    """Both models on `cleaned` (core.cleaning.clean's output, with the label)."""
    groups = {column: cleaned[column].to_numpy() for column in group_columns}
    models = {CHALLENGER: challenger, **({CHAMPION: champion} if champion is not None else {})}
    probabilities, unseen, y = {}, {}, None
    for role, model in models.items():
        batch = encode(cleaned, model.vocabulary)
        X, y = split_target(batch.frame)
        probabilities[role] = np.asarray(model.predict_proba(X), dtype=float)
        if role == CHALLENGER:
            unseen = batch.unseen
    y = np.asarray(y, dtype=int)
    reports = {role: holdout_report(y, p, groups) for role, p in probabilities.items()}
    comparison = None
    if champion is not None:
        right = {role: (p >= threshold).astype(int) == y for role, p in probabilities.items()}
        comparison = paired_bootstrap(right[CHALLENGER], right[CHAMPION])
    return SameRowsEvaluation(y, groups, probabilities, reports, comparison, unseen)
