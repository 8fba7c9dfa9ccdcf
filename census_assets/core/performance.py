"""Realized performance of a scored batch once its labels arrive (no Dagster, no storage).

The labels (core.label_files) are joined with the scores the batch got first; the labelled rows
keep the batch's inputs, so they can become training data, and their metrics are measured on the
labelled rows that were scored (a row with a missing input has no score).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from census_assets.core.cleaning import strip_strings
from census_assets.core.evaluation import holdout_report
from census_assets.core.label_files import BatchLabels
from census_assets.core.labels import LABEL_COLUMN
from census_assets.core.schema import SOURCE_COLUMNS
from census_assets.core.scoring import PROBABILITY

ROW = "row"  # the labelled row's position in its batch


def labelled_rows(scored: pd.DataFrame, labels: BatchLabels) -> pd.DataFrame:
    """One row per labelled batch row: its position, its inputs in the source schema with the true
    label, and the probability the scores gave it (NaN when it was not scored)."""
    rows = scored.iloc[labels.positions].reset_index(drop=True)
    inputs = {name: rows[name].to_numpy() for name in SOURCE_COLUMNS if name != LABEL_COLUMN}
    return pd.DataFrame(
        {
            ROW: labels.positions,
            **inputs,
            LABEL_COLUMN: labels.statuses,
            PROBABILITY: rows[PROBABILITY].to_numpy(dtype=float),
        },
        columns=[ROW, *SOURCE_COLUMNS, PROBABILITY],
    )


def _group_values(column: pd.Series) -> np.ndarray:
    # Raw files carry spaces around categories (" Male"); the groups are the cleaned values.
    text = pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)
    return (strip_strings(column) if text else column).to_numpy()


def performance_report(rows: pd.DataFrame, labels: BatchLabels, group_columns: Sequence[str]) -> dict | None:
    """holdout_report (accuracy with its 95% interval, ROC AUC, log loss, per group) on the labelled
    rows that have a score; None when none has."""
    scored = rows[PROBABILITY].notna().to_numpy()
    if not scored.any():
        return None
    y = labels.never_married[scored]
    groups = {column: _group_values(rows.loc[scored, column]) for column in group_columns}
    return holdout_report(y, rows.loc[scored, PROBABILITY].to_numpy(), groups)
