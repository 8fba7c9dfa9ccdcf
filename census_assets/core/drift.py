"""Population stability index per feature and the share of unseen categories (no Dagster).

A ReferenceProfile is fitted on the cleaned training table and stored with the model, so a new
batch is always compared with the data the production model actually learnt from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from census_assets.core.features import NUMERIC_COLUMNS, Vocabulary

# Proportions of 0 would make PSI infinite; this floor is the usual convention.
PSI_FLOOR = 1e-4
DEFAULT_BINS = 10
# The model sees age through age_bins; drift looks at the raw age, a finer signal.
DRIFT_NUMERIC_COLUMNS = ("age", *NUMERIC_COLUMNS)


def psi(expected: Sequence[float], actual: Sequence[float], floor: float = PSI_FLOOR) -> float:
    """sum((a - e) * ln(a / e)) over bins, proportions floored at `floor`."""
    e = np.clip(np.asarray(expected, dtype=float), floor, None)
    a = np.clip(np.asarray(actual, dtype=float), floor, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _numeric_shares(values: pd.Series, edges: Sequence[float]) -> list[float]:
    # Bins (-inf, e0], (e0, e1], ..., (ek, inf): every value, however far out, lands in a bin.
    counts = np.bincount(
        np.searchsorted(np.asarray(edges, dtype=float), values.to_numpy(dtype=float), side="left"),
        minlength=len(edges) + 1,
    )
    return (counts / max(len(values), 1)).tolist()


def _category_shares(values: pd.Series, categories: Sequence[str]) -> list[float]:
    # Last bin: categories the vocabulary does not know.
    counts = values.value_counts()
    known = [int(counts.get(category, 0)) for category in categories]
    total = max(len(values), 1)
    return [count / total for count in known] + [(len(values) - sum(known)) / total]


@dataclass(frozen=True)
class ReferenceProfile:
    """Bin edges and training shares per feature; JSON-serialisable via to_dict/from_dict."""

    numeric_edges: dict[str, list[float]]
    numeric_shares: dict[str, list[float]]
    categories: dict[str, list[str]]
    category_shares: dict[str, list[float]]
    rows: int

    @classmethod
    def fit(
        cls,
        clean_df: pd.DataFrame,
        numeric_columns: Sequence[str],
        categories: Mapping[str, Sequence[str]],
        bins: int = DEFAULT_BINS,
    ) -> ReferenceProfile:
        """Numeric edges at the training deciles (deduplicated: capital_gain is mostly 0)."""
        quantiles = np.linspace(0, 1, bins + 1)[1:-1]
        edges = {
            name: sorted({float(q) for q in clean_df[name].astype(float).quantile(quantiles)})
            for name in numeric_columns
        }
        return cls(
            numeric_edges=edges,
            numeric_shares={n: _numeric_shares(clean_df[n], e) for n, e in edges.items()},
            categories={name: list(values) for name, values in categories.items()},
            category_shares={
                name: _category_shares(clean_df[name], values) for name, values in categories.items()
            },
            rows=len(clean_df),
        )

    def to_dict(self) -> dict:
        return {
            "numeric_edges": self.numeric_edges,
            "numeric_shares": self.numeric_shares,
            "categories": self.categories,
            "category_shares": self.category_shares,
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> ReferenceProfile:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})


def fit_reference(clean_df: pd.DataFrame, vocabulary: Vocabulary) -> ReferenceProfile:
    """The census profile: numeric model inputs on deciles, categoricals on the model's vocabulary."""
    return ReferenceProfile.fit(clean_df, DRIFT_NUMERIC_COLUMNS, vocabulary.categories)


@dataclass(frozen=True)
class DriftReport:
    psi: dict[str, float]
    unseen_share: dict[str, float]
    rows: int

    @property
    def max_psi(self) -> float:
        return max(self.psi.values(), default=0.0)

    @property
    def worst_feature(self) -> str | None:
        return max(self.psi, key=self.psi.__getitem__) if self.psi else None

    @property
    def max_unseen_share(self) -> float:
        return max(self.unseen_share.values(), default=0.0)

    def features_above(self, limit: float) -> list[str]:
        return sorted(name for name, value in self.psi.items() if value > limit)

    def to_dict(self) -> dict:
        return {"psi": self.psi, "unseen_share": self.unseen_share, "rows": self.rows}


def compare(profile: ReferenceProfile, clean_df: pd.DataFrame) -> DriftReport:
    """PSI of `clean_df` against the training profile, per feature, and unseen-category shares."""
    values: dict[str, float] = {}
    unseen: dict[str, float] = {}
    for name, edges in profile.numeric_edges.items():
        values[name] = psi(profile.numeric_shares[name], _numeric_shares(clean_df[name], edges))
    for name, categories in profile.categories.items():
        shares = _category_shares(clean_df[name], categories)
        values[name] = psi(profile.category_shares[name], shares)
        unseen[name] = shares[-1]
    return DriftReport(
        psi={k: round(v, 6) for k, v in values.items()},
        unseen_share={k: round(v, 6) for k, v in unseen.items()},
        rows=len(clean_df),
    )


@dataclass(frozen=True)
class DriftVerdict:
    level: str  # "ok" | "warn" | "fail"
    message: str


def judge(report: DriftReport, warn_above: float, fail_above: float) -> DriftVerdict:
    """One place decides what counts as drift: PSI > fail_above fails, > warn_above warns."""
    if not warn_above <= fail_above:
        raise ValueError(f"need warn_above <= fail_above, got {warn_above} and {fail_above}")
    failing = report.features_above(fail_above)
    warning = report.features_above(warn_above)
    detail = ", ".join(f"{name}={report.psi[name]:.3f}" for name in (failing or warning))
    if failing:
        return DriftVerdict("fail", f"PSI above {fail_above} for {detail}")
    if warning:
        return DriftVerdict("warn", f"PSI above {warn_above} for {detail}")
    return DriftVerdict("ok", f"max PSI {report.max_psi:.3f} ({report.worst_feature}) <= {warn_above}")
