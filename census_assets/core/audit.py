"""Everything holdout_metrics shows about the two models beyond the paired accuracy comparison, on
the same evaluation rows: each model's evaluation section (per-group rates with intervals,
between-group differences, calibration), the group gate of challenger against champion, and the
challenger's global importance by mean absolute contribution (no Dagster, no storage)."""

from __future__ import annotations

import pandas as pd

from census_assets.core.comparison import CHALLENGER, CHAMPION, SameRowsEvaluation
from census_assets.core.explanations import explain, global_importance, importance_rows
from census_assets.core.fairness import GROUP_TOLERANCE, MIN_GROUP_ROWS, group_gate
from census_assets.core.features import encode, split_target
from census_assets.core.model_card import evaluation_section
from census_assets.core.training import TrainedModel


def audit_same_rows(
    same_rows: SameRowsEvaluation,
    cleaned: pd.DataFrame,
    challenger: TrainedModel,
    rows_from: str,
    min_group_rows: int = MIN_GROUP_ROWS,
    group_tolerance: float = GROUP_TOLERANCE,
) -> dict:
    """A JSON-able dict: "challenger" and "champion" (None without one) evaluation sections,
    "group_gate" (fairness.GroupGate.to_dict(), None without a champion), "importance"
    (global_importance records) and "importance_rows" (how many rows it was estimated on).

    `cleaned` holds the rows same_rows was made from, in the same order.
    """
    if len(cleaned) != len(same_rows.y):
        raise ValueError(f"{len(cleaned)} cleaned rows for an evaluation of {len(same_rows.y)} rows")
    y, groups, probabilities = same_rows.y, same_rows.groups, same_rows.probabilities
    sections = {role: evaluation_section(y, p, groups, rows_from) for role, p in probabilities.items()}
    gate = None
    if CHAMPION in probabilities:
        gate = group_gate(
            y, probabilities[CHALLENGER], probabilities[CHAMPION], groups, min_group_rows, group_tolerance
        ).to_dict()
    sample = importance_rows(len(cleaned))
    X, _ = split_target(encode(cleaned.iloc[sample], challenger.vocabulary).frame)
    importance = global_importance(explain(challenger, X))
    return {
        "challenger": sections[CHALLENGER],
        "champion": sections.get(CHAMPION),
        "group_gate": gate,
        "importance": importance.to_dict(orient="records"),
        "importance_rows": len(sample),
    }
