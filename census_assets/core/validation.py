"""What the later steps require of the data, checked where it enters (no Dagster).

`raw_census` calls `validate_training_source` on the schema-checked table, so a source that has the
census schema but cannot train a model (every row missing a value, one class of the target, fewer
rows per class than the CV has folds, physically impossible values) is refused before anything is
written, with the reason, instead of failing later in cleaning, the CV or the fit.

`PHYSICAL_LIMITS` also serves scoring, which flags such rows (core.scoring).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from census_assets.core.features import TARGET
from census_assets.core.labels import LABEL_COLUMN, TARGET_VALUE, is_target

# Inclusive bounds of what a person can report; None: unbounded on that side.
PHYSICAL_LIMITS: dict[str, tuple[int | None, int | None]] = {
    "age": (0, 120),
    "capital_gain": (0, None),
    "capital_loss": (0, None),
    "hours_per_week": (0, 168),  # 24 x 7
}
# Distinct rows are counted on a prefix of each class first: enough distinct rows there settles it.
_DISTINCT_PREFIX = 10_000


class SourceValidationError(ValueError):
    """The source has the census schema but cannot train a model; the message names every problem."""


def describe_limits(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low:g}..{high:g}"
    return f">= {low:g}" if low is not None else f"<= {high:g}"


def outside(values: pd.Series, low: float | None, high: float | None) -> np.ndarray:
    """A boolean mask: present values below `low` or above `high` (missing values are not outside)."""
    numbers = pd.to_numeric(values, errors="coerce").astype("Float64")
    mask = pd.Series(False, index=values.index)
    if low is not None:
        mask |= (numbers < low).fillna(False)
    if high is not None:
        mask |= (numbers > high).fillna(False)
    return mask.to_numpy(dtype=bool)


def impossible_values(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """Column -> mask of rows whose value no person can have (PHYSICAL_LIMITS), for columns with any."""
    masks = {name: outside(table[name], *PHYSICAL_LIMITS[name]) for name in PHYSICAL_LIMITS if name in table}
    return {name: mask for name, mask in masks.items() if mask.any()}


def _distinct_rows(rows: pd.DataFrame, enough: int) -> int:
    """The number of distinct rows, or any number >= `enough` once that many are certain.

    Row hashes can only merge distinct rows, never split equal ones, so a hash count at or above
    `enough` proves it; below, the exact count decides.
    """
    head = rows.iloc[:_DISTINCT_PREFIX]
    if pd.util.hash_pandas_object(head, index=False).nunique() >= enough:
        return enough
    if len(rows) > len(head) and pd.util.hash_pandas_object(rows, index=False).nunique() >= enough:
        return enough
    return len(rows.drop_duplicates())


def _missing_summary(table: pd.DataFrame) -> str:
    counts = table.isna().sum()
    counts = counts[counts > 0].sort_values(ascending=False, kind="stable")
    return ", ".join(f"{name} in {count} of {len(table)} rows" for name, count in counts.items())


def training_problems(table: pd.DataFrame, n_splits: int) -> list[str]:
    """Every reason the schema-valid `table` (core.schema.validate_source's output) cannot go
    through cleaning, the stratified n_splits-fold CV and the fit; empty when it can."""
    problems = []
    for name, mask in impossible_values(table).items():
        example = table[name][mask].iloc[0]
        problems.append(
            f"{int(mask.sum())} row(s) with an impossible {name} (possible: "
            f"{describe_limits(*PHYSICAL_LIMITS[name])}), e.g. {example}"
        )
    # What clean() keeps: rows without a missing value, duplicates once (compared before stripping).
    complete = table[table.notna().all(axis=1)]
    if complete.empty:
        problems.append(
            f"no row has every value, so cleaning would drop all {len(table)} rows "
            f"(missing: {_missing_summary(table)})"
        )
        return problems
    positive = is_target(complete[LABEL_COLUMN]).astype(bool)
    counts = {1: _distinct_rows(complete[positive], n_splits), 0: _distinct_rows(complete[~positive], n_splits)}
    target = f"{TARGET} ({LABEL_COLUMN} == {TARGET_VALUE!r})"
    absent = [label for label, count in counts.items() if count == 0]
    if absent:
        problems.append(
            f"only one class of the target {target}: every one of the {len(complete)} row(s) cleaning "
            f"keeps has {TARGET}={1 - absent[0]}; a classifier needs both classes"
        )
    else:
        for label, count in counts.items():
            if count < n_splits:
                problems.append(
                    f"only {count} distinct row(s) with {TARGET}={label} after cleaning (rows with a missing "
                    f"value and duplicates dropped), fewer than the cross-validation's n_splits={n_splits}"
                )
    return problems


def validate_training_source(table: pd.DataFrame, n_splits: int) -> None:
    """Raise SourceValidationError naming every problem training would hit later."""
    problems = training_problems(table, n_splits)
    if problems:
        raise SourceValidationError("census source cannot train a model: " + "; ".join(problems))
