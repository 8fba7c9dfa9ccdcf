"""Per-group performance with 95% intervals, between-group differences, and the group gate that
refuses a challenger worse than the champion for one group (no Dagster, no storage).

Intervals are analytic, so they need no seed and cost a few array operations:
- a rate (accuracy, true-positive rate, false-positive rate, selection rate) gets the Wilson
  score interval, which stays inside [0, 1] and keeps its coverage for small groups and rates
  near 0 or 1, where the normal approximation fails;
- a paired difference of accuracies (challenger − champion on the same rows) gets Newcombe's
  square-and-add interval for paired proportions (Newcombe 1998, method 10): the two Wilson
  intervals combined with the correlation of the paired outcomes. Both models are right or wrong
  together on most rows, and the interval narrows with that correlation as a paired bootstrap's
  would, without resampling or a seed.
Every count comes from one np.bincount over group codes, so a table of a dozen groups on the
held-out rows costs milliseconds; fairlearn's MetricFrame (not a dependency of this project)
would bring a library to compute the same confusion-matrix ratios.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from census_assets.core import evaluation
from census_assets.core.evaluation import Z_95
from census_assets.core.labels import DECISION_THRESHOLD

MIN_GROUP_ROWS = 50
GROUP_TOLERANCE = 0.02
RATES = ("accuracy", "true_positive_rate", "false_positive_rate", "selection_rate")


_wilson_elementwise = np.vectorize(evaluation.wilson_interval, otypes=[float, float])


def wilson_interval(successes, trials, z: float = Z_95) -> tuple[np.ndarray, np.ndarray]:
    """core.evaluation's Wilson score interval, elementwise over arrays (NaN where trials is 0)."""
    low, high = _wilson_elementwise(successes, trials, z)
    return np.asarray(low, dtype=float), np.asarray(high, dtype=float)


def paired_difference_interval(both, first_only, second_only, neither, z: float = Z_95):
    """(difference, low, high) of first − second accuracy on the same rows, elementwise.

    The counts are the paired outcomes: rows both models got right, only the first, only the
    second, neither. Newcombe's method 10 (see the module docstring); NaN where there are no rows.
    """
    a, b, c, d = (np.asarray(x, dtype=float) for x in (both, first_only, second_only, neither))
    n = a + b + c + d
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = (a + b) / n, (a + c) / n
        l1, u1 = wilson_interval(a + b, n, z)
        l2, u2 = wilson_interval(a + c, n, z)
        margins = (a + b) * (c + d) * (a + c) * (b + d)
        # The correlation of the paired outcomes, a positive one reduced by n/2 as Newcombe's method
        # 10 prescribes (a continuity correction that keeps the interval from being too narrow);
        # 0 where a margin is empty.
        excess = a * d - b * c
        excess = np.where(excess > n / 2, excess - n / 2, np.minimum(excess, 0.0))
        phi = np.where(margins > 0, excess / np.sqrt(np.where(margins > 0, margins, 1.0)), 0.0)
        below = np.sqrt(np.maximum((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
        above = np.sqrt(np.maximum((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    difference = p1 - p2
    return difference, difference - below, difference + above


def _codes(values) -> tuple[np.ndarray, list[str]]:
    """Group values as integer codes and their names, sorted by name."""
    names, codes = np.unique(np.asarray(values).astype(str), return_inverse=True)
    return codes.ravel(), [str(name) for name in names]


def _counts(codes: np.ndarray, groups: int, cells: np.ndarray, cell_count: int) -> np.ndarray:
    """(groups, cell_count) row counts of every (group, cell) pair."""
    return np.bincount(codes * cell_count + cells, minlength=groups * cell_count).reshape(groups, cell_count)


def group_metrics(
    y_true: Sequence[int],
    probability: Sequence[float],
    groups: Mapping[str, Sequence],
    threshold: float = DECISION_THRESHOLD,
) -> pd.DataFrame:
    """One row for all rows and one per (group column, value): rows, positives, negatives, and each
    of RATES with `<rate>_low` / `<rate>_high`, its 95% Wilson interval.

    A row is predicted positive when its probability is >= threshold (as core.evaluation). The
    true-positive rate of a group without positives (false-positive rate: without negatives) is NaN.
    """
    y = np.asarray(y_true, dtype=int)
    predicted = (np.asarray(probability, dtype=float) >= threshold).astype(int)
    cells = 2 * y + predicted  # 0 tn, 1 fp, 2 fn, 3 tp
    columns = {"all": np.zeros(len(y), dtype=int)}
    names = {"all": ["all"]}
    for column, values in groups.items():
        columns[column], names[column] = _codes(values)
    records = []
    for column, codes in columns.items():
        tn, fp, fn, tp = _counts(codes, len(names[column]), cells, 4).T
        rows, positives, negatives = tn + fp + fn + tp, fn + tp, tn + fp
        ratios = {
            "accuracy": (tn + tp, rows),
            "true_positive_rate": (tp, positives),
            "false_positive_rate": (fp, negatives),
            "selection_rate": (fp + tp, rows),
        }
        bounds = {rate: wilson_interval(*ratios[rate]) for rate in RATES}
        for i, group in enumerate(names[column]):
            record = {"column": column, "group": group, "rows": int(rows[i]),
                      "positives": int(positives[i]), "negatives": int(negatives[i])}
            for rate in RATES:
                hits, trials = ratios[rate]
                record[rate] = float(hits[i] / trials[i]) if trials[i] else float("nan")
                record[f"{rate}_low"] = float(bounds[rate][0][i])
                record[f"{rate}_high"] = float(bounds[rate][1][i])
            records.append(record)
    return pd.DataFrame.from_records(records)


def _spread(table: pd.DataFrame, rate: str) -> tuple[float, list[str]]:
    """(largest − smallest rate between groups, [the group with the smallest, with the largest])."""
    known = table.dropna(subset=[rate])
    if known.empty:
        return float("nan"), []
    low, high = known.loc[known[rate].idxmin()], known.loc[known[rate].idxmax()]
    return float(high[rate] - low[rate]), [str(low["group"]), str(high["group"])]


def disparities(metrics: pd.DataFrame) -> dict[str, dict]:
    """Per group column of group_metrics' table: the demographic-parity difference (the spread of
    selection rates between its groups) and the equalised-odds difference (the larger of the
    spreads of true- and false-positive rates), as fairlearn defines them, with the groups at the
    ends of each spread."""
    result = {}
    for column, table in metrics[metrics["column"] != "all"].groupby("column", sort=False):
        parity, parity_between = _spread(table, "selection_rate")
        spreads = {rate: _spread(table, rate) for rate in ("true_positive_rate", "false_positive_rate")}
        defined = {rate: spread for rate, spread in spreads.items() if not np.isnan(spread[0])}
        odds_rate = max(defined, key=lambda rate: defined[rate][0]) if defined else ""
        odds, odds_between = defined.get(odds_rate, (float("nan"), []))
        result[str(column)] = {
            "demographic_parity_difference": parity,
            "demographic_parity_between": parity_between,
            "true_positive_rate_difference": spreads["true_positive_rate"][0],
            "false_positive_rate_difference": spreads["false_positive_rate"][0],
            "equalized_odds_difference": odds,
            "equalized_odds_between": odds_between,
            "equalized_odds_rate": odds_rate,
        }
    return result


def disparity_warnings(
    between_groups: Mapping[str, Mapping], max_demographic_parity: float, max_equalized_odds: float
) -> list[str]:
    """One line per between-group difference above its limit (the WARN check's findings)."""
    lines = []
    for column, values in between_groups.items():
        for key, limit, label in (
            ("demographic_parity", max_demographic_parity, "demographic-parity difference"),
            ("equalized_odds", max_equalized_odds, "equalised-odds difference"),
        ):
            value = values[f"{key}_difference"]
            if value > limit:
                low, high = values[f"{key}_between"]
                lines.append(f"{column}: {label} {value:.4f} > {limit:.4f} (between {low} and {high})")
    return lines


@dataclass(frozen=True)
class GroupGate:
    """The group gate's verdict: one row per group with its paired interval and verdict
    ("worse", "ok" or "too small"), and the groups that fail it."""

    table: pd.DataFrame
    min_group_rows: int
    group_tolerance: float
    failed: list[str] = field(default_factory=list)
    too_small: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict:
        """JSON-able: the verdict, the rule's settings, the message and the table's records."""
        return {
            "passed": self.passed,
            "failed": list(self.failed),
            "too_small": list(self.too_small),
            "min_group_rows": self.min_group_rows,
            "group_tolerance": self.group_tolerance,
            "message": self.message,
            "groups": self.table.to_dict(orient="records"),
        }

    @property
    def message(self) -> str:
        if self.failed:
            worse = self.table[self.table["verdict"] == "worse"]
            text = "; ".join(
                f"{row.column}={row.group}: challenger − champion accuracy {row.difference:+.4f}, 95% interval "
                f"[{row.low:+.4f}, {row.high:+.4f}] entirely below −{self.group_tolerance:g}"
                for row in worse.itertuples()
            )
            verdict = f"challenger is worse than the champion for {len(self.failed)} group(s): {text}"
        else:
            judged = int((self.table["verdict"] == "ok").sum())
            verdict = (
                f"no group judged ({judged}) is worse by more than {self.group_tolerance:g} "
                "(upper bound of the 95% interval of challenger − champion accuracy)"
            )
        if self.too_small:
            verdict += (
                f"; too small to judge (< {self.min_group_rows} rows): {', '.join(self.too_small)}"
            )
        return verdict


def group_gate(
    y_true: Sequence[int],
    challenger_probability: Sequence[float],
    champion_probability: Sequence[float],
    groups: Mapping[str, Sequence],
    min_group_rows: int = MIN_GROUP_ROWS,
    group_tolerance: float = GROUP_TOLERANCE,
    threshold: float = DECISION_THRESHOLD,
) -> GroupGate:
    """Both models on the same rows: for each group with at least min_group_rows rows, the gate
    fails iff the upper bound of the 95% interval of (challenger − champion) accuracy is below
    −group_tolerance. Smaller groups are listed as too small to judge and never fail it."""
    y = np.asarray(y_true, dtype=int)
    challenger_right = (np.asarray(challenger_probability, dtype=float) >= threshold).astype(int) == y
    champion_right = (np.asarray(champion_probability, dtype=float) >= threshold).astype(int) == y
    cells = 2 * challenger_right.astype(int) + champion_right.astype(int)  # 0 neither .. 3 both
    records = []
    for column, values in groups.items():
        codes, names = _codes(values)
        neither, champion_only, challenger_only, both = _counts(codes, len(names), cells, 4).T
        difference, low, high = paired_difference_interval(both, challenger_only, champion_only, neither)
        rows = both + champion_only + challenger_only + neither
        for i, group in enumerate(names):
            if rows[i] < min_group_rows:
                verdict = "too small"
            else:
                verdict = "worse" if high[i] < -group_tolerance else "ok"
            records.append({
                "column": column, "group": group, "rows": int(rows[i]),
                "champion_accuracy": float((both[i] + champion_only[i]) / rows[i]),
                "challenger_accuracy": float((both[i] + challenger_only[i]) / rows[i]),
                "difference": float(difference[i]), "low": float(low[i]), "high": float(high[i]),
                "verdict": verdict,
            })
    table = pd.DataFrame.from_records(
        records,
        columns=["column", "group", "rows", "champion_accuracy", "challenger_accuracy",
                 "difference", "low", "high", "verdict"],
    )
    label = table["column"] + "=" + table["group"]
    return GroupGate(
        table,
        min_group_rows,
        group_tolerance,
        failed=label[table["verdict"] == "worse"].tolist(),
        too_small=label[table["verdict"] == "too small"].tolist(),
    )
