"""Score raw rows with a stored model exactly as training saw them (no Dagster).

One output row per input row, in input order. Training drops NA rows and duplicates; scoring
must not lose rows, so duplicates are scored (each row gets its prediction) and rows with a
missing value are flagged and left unscored. Unseen categories are scored the way `encode`
treats them (no dummy set) and flagged, or refused with `strict=True`; so are numeric values no
person can have (core.validation.PHYSICAL_LIMITS) or outside what the model saw in training
(`training_ranges`, read from the model itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from census_assets.core.cleaning import DROPPED_COLUMNS, normalize
from census_assets.core.features import (
    AGE_BINS,
    CATEGORICAL_COLUMNS,
    NUMERIC_COLUMNS,
    Vocabulary,
    encode,
    split_target,
)
from census_assets.core.labels import DECISION_THRESHOLD, LABEL_COLUMN
from census_assets.core.schema import SOURCE_COLUMNS, STRING, validate_source
from census_assets.core.validation import PHYSICAL_LIMITS, describe_limits, outside

PROBABILITY = "never_married_probability"
PREDICTION = "never_married"
FLAG = "scoring_flag"


class ScoringError(ValueError):
    """The input cannot be scored; the message names the problem."""


@dataclass
class Scored:
    frame: pd.DataFrame
    missing_rows: int
    unseen: dict[str, dict[str, int]]
    # column -> rows flagged: a value no person can have / outside the model's training range
    impossible: dict[str, int] = field(default_factory=dict)
    out_of_range: dict[str, int] = field(default_factory=dict)
    # the training ranges the input was checked against: column -> (min, max)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    # The scorable rows before and after cleaning, one per input row that got a score, kept for
    # drift_rows: drift profiles the rows the scores were computed from rather than cleaning again.
    scorable: pd.DataFrame | None = field(default=None, repr=False)
    cleaned: pd.DataFrame | None = field(default=None, repr=False)

    def drift_rows(self) -> pd.DataFrame | None:
        """The scorable rows as clean() leaves a source table, the profile core.drift.compare
        reads: a row repeating an earlier one (in every source column) counted once, as training
        counts it. None when no row could be scored."""
        if self.cleaned is None:
            return None
        first = ~self.scorable.duplicated().to_numpy()
        return self.cleaned.loc[first].reset_index(drop=True)

    def range_warnings(self) -> list[str]:
        """One line per column with impossible or out-of-range values (for reports and stderr)."""
        lines = []
        for name, count in self.impossible.items():
            limits = describe_limits(*PHYSICAL_LIMITS[name])
            lines.append(f"{count} row(s) with an impossible {name} (possible: {limits})")
        for name, count in self.out_of_range.items():
            low, high = self.ranges[name]
            lines.append(f"{count} row(s) with {name} outside the model's training range {low:g}..{high:g}")
        return lines


def training_ranges(booster) -> dict[str, tuple[float, float]]:
    """Raw column -> (min, max) the model saw in training, from its LightGBM header.

    The model text records each feature's training range (`feature_infos=[min:max] ...`, `none`
    for a feature with one value). age reaches the model as age_bins (AGE_BINS, right-closed), so
    its range is the span of the bins training populated; a value outside (16, 100] has no bin.
    """
    header = {}
    for line in booster.model_to_string().split("\n", 200):
        key, sep, value = line.partition("=")
        if sep and key in ("feature_names", "feature_infos"):
            header[key] = value.split(" ")
        if line.startswith("Tree="):
            break
    infos = dict(zip(header.get("feature_names", []), header.get("feature_infos", [])))
    ranges: dict[str, tuple[float, float]] = {}
    for name, info in infos.items():
        if not (info.startswith("[") and ":" in info):
            continue  # `none`: a single training value, range unknown
        low, high = (float(part) for part in info.strip("[]").split(":", 1))
        if name in NUMERIC_COLUMNS:
            ranges[name] = (low, high)
        elif name == "age_bins" and 1 <= low <= high <= len(AGE_BINS) - 1:
            ranges["age"] = (AGE_BINS[int(low) - 1] + 1, float(AGE_BINS[int(high)]))
    return ranges


def _range_flags(table: pd.DataFrame, ranges: Mapping[str, tuple[float, float]]):
    """Per-row flags and per-column counts for impossible and out-of-training-range values."""
    flags: dict[int, list[str]] = {}
    impossible: dict[str, int] = {}
    out_of_range: dict[str, int] = {}
    for name, limits in PHYSICAL_LIMITS.items():
        column = table[name]
        bad = outside(column, *limits)
        unusual = outside(column, *ranges[name]) & ~bad if name in ranges else np.zeros(len(table), dtype=bool)
        for mask, label, counts in ((bad, "impossible", impossible), (unusual, "outside training range", out_of_range)):
            if mask.any():
                counts[name] = int(mask.sum())
                for row, value in zip(np.flatnonzero(mask), column.to_numpy()[mask]):
                    flags.setdefault(int(row), []).append(f"{label} {name}={value}")
    return flags, impossible, out_of_range


def score(
    raw: pd.DataFrame,
    predict,
    vocabulary: Vocabulary,
    strict: bool = False,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> Scored:
    """`predict` maps the float32 feature matrix to probabilities (e.g. Booster.predict).

    `ranges` (training_ranges(booster)): numeric values outside them are scored and flagged, as
    are values outside PHYSICAL_LIMITS; with `strict=True` either refuses the input, as unseen
    categories do.
    """
    source = raw if LABEL_COLUMN in raw.columns else raw.assign(**{LABEL_COLUMN: ""})
    table = validate_source(source)
    ranges = dict(ranges or {})
    range_flags, impossible, out_of_range = _range_flags(table, ranges)
    # Only a missing model input makes a row unscorable; the label and the columns clean() drops
    # are filled so that its dropna keeps the row.
    unused = [LABEL_COLUMN, *DROPPED_COLUMNS]
    inputs = table.drop(columns=unused)
    absent = inputs.isna()
    complete = ~absent.any(axis=1).to_numpy()
    table = table.fillna({name: ("" if SOURCE_COLUMNS[name] == STRING else 0) for name in unused})
    probability = np.full(len(table), np.nan)
    flags = np.full(len(table), "", dtype=object)
    for index in np.flatnonzero(~complete):
        flags[index] = "not scored: missing " + ",".join(inputs.columns[absent.iloc[index]])
    scored = Scored(raw, int((~complete).sum()), {}, impossible, out_of_range, ranges)
    if strict and (impossible or out_of_range):
        problems = "; ".join(scored.range_warnings())
        raise ScoringError(f"{problems}; without --strict such rows are scored and flagged")
    if complete.any():
        # clean()'s stripping and '?' -> 'Unknown', exactly the training code, without its
        # dropping of repeated rows: every scorable row gets its score.
        scored.scorable = table[complete]
        cleaned = scored.cleaned = normalize(scored.scorable)
        batch = encode(cleaned, vocabulary)
        scored.unseen = batch.unseen
        if strict and batch.unseen:
            raise ScoringError(
                f"{batch.unseen_rows} value(s) the model's vocabulary does not know: {batch.unseen}; "
                "without --strict they are scored as no known category and flagged"
            )
        X, _ = split_target(batch.frame)
        probability[complete] = predict(X)
        scorable_rows = np.flatnonzero(complete)
        for name in CATEGORICAL_COLUMNS:
            known = cleaned[name].isin(vocabulary.categories[name]).to_numpy()
            rows, values = scorable_rows[~known], cleaned[name].to_numpy()[~known]
            for row, value in zip(rows, values):
                flags[row] = (flags[row] + ";" if flags[row] else "") + f"unseen {name}={value}"
    for row, extra in range_flags.items():
        flags[row] = ";".join([flags[row], *extra] if flags[row] else extra)

    out = raw.reset_index(drop=True).copy()
    out[PROBABILITY] = probability
    out[PREDICTION] = pd.array(
        np.where(np.isnan(probability), pd.NA, probability >= DECISION_THRESHOLD), dtype="Int8"
    )
    out[FLAG] = flags
    scored.frame = out
    return scored
