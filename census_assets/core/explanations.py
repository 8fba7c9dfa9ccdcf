"""Why a row got its score: LightGBM's own exact tree SHAP values (`pred_contrib`), summed from
the model's features back to the input columns of the source schema (no Dagster, no storage).

A contribution is in log-odds: a row's contributions over all features plus the bias (the
model's expected raw score) equal its raw score, whose sigmoid is the probability. The one-hot
dummies of a categorical column, e.g. every `occupation_*`, add up to that column's contribution,
and `age_bins` is the column `age`; the mapping comes from the model's Vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from census_assets.core.features import CATEGORICAL_COLUMNS, NUMERIC_COLUMNS, Vocabulary
from census_assets.core.reporting import bar_chart_png
from census_assets.core.schema import SOURCE_COLUMNS
from census_assets.core.scoring import PROBABILITY, score

TEAL = (42, 157, 143)

if TYPE_CHECKING:
    import lightgbm as lgb

    from census_assets.core.training import TrainedModel

# Tree SHAP costs as much per row as hundreds of predictions, so the global importance (a mean
# over rows) is estimated on at most this many evaluation rows (importance_rows).
IMPORTANCE_ROWS = 2_000
# The source columns the model reads, in the source schema's order.
INPUT_COLUMNS = tuple(name for name in SOURCE_COLUMNS if name in {*NUMERIC_COLUMNS, *CATEGORICAL_COLUMNS, "age"})


def input_column_of_features(vocabulary: Vocabulary) -> list[str]:
    """The input column each model feature is made from, in feature order."""
    dummies = {dummy: column for column, _, dummy in vocabulary.dummy_columns}
    return [dummies.get(name, "age" if name == "age_bins" else name) for name in vocabulary.feature_names]


@dataclass(frozen=True)
class Contributions:
    """Per row: the contribution of every input column (INPUT_COLUMNS order) and the bias."""

    by_column: np.ndarray
    bias: np.ndarray

    @property
    def raw_score(self) -> np.ndarray:
        return self.by_column.sum(axis=1) + self.bias

    @classmethod
    def none(cls) -> Contributions:
        """No rows (LightGBM is not asked to explain an empty matrix)."""
        return cls(np.empty((0, len(INPUT_COLUMNS))), np.empty(0))


def feature_contributions(booster: lgb.Booster, X: np.ndarray) -> np.ndarray:
    """(rows, features + 1): each feature's SHAP value in log-odds, then the bias."""
    return booster.predict(X, pred_contrib=True)


def column_contributions(per_feature: np.ndarray, vocabulary: Vocabulary) -> Contributions:
    """feature_contributions summed per input column."""
    owners = input_column_of_features(vocabulary)
    if per_feature.shape[1] != len(owners) + 1:
        raise ValueError(
            f"{per_feature.shape[1] - 1} feature contributions for a vocabulary of {len(owners)} features"
        )
    membership = np.zeros((len(owners), len(INPUT_COLUMNS)))
    membership[np.arange(len(owners)), [INPUT_COLUMNS.index(owner) for owner in owners]] = 1.0
    return Contributions(per_feature[:, :-1] @ membership, per_feature[:, -1].copy())


def explain(model: TrainedModel, X: np.ndarray) -> Contributions:
    """The input-column contributions of the encoded rows X (split_target's matrix)."""
    return column_contributions(feature_contributions(model.booster, X), model.vocabulary)


def _shown(values: pd.Series) -> np.ndarray:
    """Input values as text (a Parquet column holds one type): integers without a fraction,
    strings without the padding the census files carry."""
    if pd.api.types.is_numeric_dtype(values):
        text = values.astype("Int64").astype(str)
    else:
        text = values.astype(str).str.strip()
    return text.where(values.notna(), None).to_numpy(dtype=object)


def _check_reasons(k: int) -> None:
    if not 1 <= k <= len(INPUT_COLUMNS):
        raise ValueError(f"the number of reasons must be between 1 and {len(INPUT_COLUMNS)}, got {k}")


def top_reasons(contributions: Contributions, inputs: pd.DataFrame, k: int) -> pd.DataFrame:
    """reason_1..k (the input columns with the largest absolute contributions, largest first; ties
    in INPUT_COLUMNS order), contribution_1..k (signed, log-odds: positive pushes towards
    never-married) and value_1..k (the row's value of that column in `inputs`), one row per
    contribution row."""
    _check_reasons(k)
    order = np.argsort(-np.abs(contributions.by_column), axis=1, kind="stable")[:, :k]
    rows = np.arange(len(order))[:, None]
    names = np.array(INPUT_COLUMNS, dtype=object)[order]
    values = np.stack([_shown(inputs[name]) for name in INPUT_COLUMNS], axis=1)[rows, order]
    signed = contributions.by_column[rows, order]
    columns = {}
    for kind, table in (("reason", names), ("contribution", signed), ("value", values)):
        for i in range(k):
            columns[f"{kind}_{i + 1}"] = table[:, i]
    return pd.DataFrame(columns, index=inputs.index)


def explain_frame(model: TrainedModel, scored_frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """`score(...).frame` with the top k reasons of every scored row appended (empty for rows
    that were not scored).

    The rows are encoded again by score() itself, so the features explained are exactly those
    that were scored; the model's probabilities on them must equal scored_frame's, row for row.
    """
    _check_reasons(k)  # before any work
    encoded: list[tuple[np.ndarray, np.ndarray]] = []

    def predict(X: np.ndarray) -> np.ndarray:
        probability = model.predict_proba(X)
        encoded.append((X, probability))
        return probability

    inputs = scored_frame.reset_index(drop=True)
    score(inputs, predict, model.vocabulary)
    expected = inputs[PROBABILITY].to_numpy(dtype=float)
    scored = np.flatnonzero(~np.isnan(expected))
    X, probability = encoded[0] if encoded else (None, np.empty(0))
    if not np.array_equal(probability, expected[scored]):
        raise ValueError("scored_frame's probabilities are not this model's on its rows")
    contributions = explain(model, X) if len(scored) else Contributions.none()
    reasons = top_reasons(contributions, inputs.iloc[scored], k).reindex(inputs.index)
    text = [name for name in reasons.columns if not name.startswith("contribution_")]
    reasons[text] = reasons[text].astype(object).where(reasons[text].notna(), None)
    return pd.concat([inputs, reasons], axis=1)


def importance_rows(rows: int, limit: int = IMPORTANCE_ROWS) -> np.ndarray:
    """At most `limit` evenly spaced positions among `rows`: the rows whose contributions make
    the global importance (no seed, so the same rows give the same figures)."""
    return np.unique(np.linspace(0, rows - 1, min(rows, limit)).round().astype(int)) if rows else np.empty(0, int)


def global_importance(contributions: Contributions) -> pd.DataFrame:
    """Input columns ranked by mean absolute contribution over the rows, with its share."""
    rows = max(len(contributions.by_column), 1)
    mean_abs = np.abs(contributions.by_column).sum(axis=0) / rows
    table = pd.DataFrame(
        {"column": INPUT_COLUMNS, "mean_abs_contribution": mean_abs, "share": mean_abs / (mean_abs.sum() or 1.0)}
    )
    table = table.sort_values("mean_abs_contribution", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


def importance_chart_png(importance: pd.DataFrame, title: str = "mean absolute contribution") -> bytes:
    """A horizontal bar chart of global_importance (largest on top), as PNG bytes."""
    return bar_chart_png(
        importance["column"], importance["mean_abs_contribution"], title, "mean |contribution| (log-odds)", TEAL
    )
