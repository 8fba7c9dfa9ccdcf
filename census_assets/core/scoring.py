"""Score raw rows with a stored model exactly as training saw them (no Dagster).

One output row per input row, in input order. Training drops NA rows and duplicates; scoring
must not lose rows, so duplicates are scored (each row gets its prediction) and rows with a
missing value are flagged and left unscored. Unseen categories are scored the way `encode`
treats them (no dummy set) and flagged, or refused with `strict=True`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from census_assets.core.cleaning import DROPPED_COLUMNS, clean
from census_assets.core.features import (
    CATEGORICAL_COLUMNS,
    Vocabulary,
    encode,
    split_target,
)
from census_assets.core.schema import SOURCE_COLUMNS, STRING, validate_source

PROBABILITY = "never_married_probability"
PREDICTION = "never_married"
FLAG = "scoring_flag"
DECISION_THRESHOLD = 0.5
# The label is what we predict: scoring input need not carry it.
LABEL_COLUMN = "marital_status"
_ROW = "__row__"


class ScoringError(ValueError):
    """The input cannot be scored; the message names the problem."""


@dataclass
class Scored:
    frame: pd.DataFrame
    missing_rows: int
    unseen: dict[str, dict[str, int]]


def score(raw: pd.DataFrame, predict, vocabulary: Vocabulary, strict: bool = False) -> Scored:
    """`predict` maps the float32 feature matrix to probabilities (e.g. Booster.predict)."""
    source = raw if LABEL_COLUMN in raw.columns else raw.assign(**{LABEL_COLUMN: ""})
    table = validate_source(source)
    # Only a missing model input makes a row unscorable; the label and the columns clean() drops
    # are filled so that its dropna keeps the row.
    unused = [LABEL_COLUMN, *DROPPED_COLUMNS]
    inputs = table.drop(columns=unused)
    complete = inputs.notna().all(axis=1).to_numpy()
    table = table.fillna({name: ("" if SOURCE_COLUMNS[name] == STRING else 0) for name in unused})
    probability = np.full(len(table), np.nan)
    flags = np.full(len(table), "", dtype=object)
    absent = inputs.isna()
    for index in np.flatnonzero(~complete):
        flags[index] = "not scored: missing " + ",".join(inputs.columns[absent.iloc[index]])
    unseen: dict[str, dict[str, int]] = {}
    if complete.any():
        # A row key makes every row distinct, so clean()'s drop_duplicates keeps them all while
        # its stripping and '?' -> 'Unknown' stay exactly the training code.
        cleaned = clean(table[complete].assign(**{_ROW: np.flatnonzero(complete)}))
        batch = encode(cleaned, vocabulary)
        unseen = batch.unseen
        if unseen and strict:
            raise ScoringError(
                f"{batch.unseen_rows} value(s) the model's vocabulary does not know: {unseen}; "
                "without --strict they are scored as no known category and flagged"
            )
        X, _ = split_target(batch.frame)
        probability[cleaned[_ROW].to_numpy()] = predict(X)
        for name in CATEGORICAL_COLUMNS:
            known = cleaned[name].isin(vocabulary.categories[name]).to_numpy()
            rows, values = cleaned[_ROW].to_numpy()[~known], cleaned[name].to_numpy()[~known]
            for row, value in zip(rows, values):
                flags[row] = (flags[row] + ";" if flags[row] else "") + f"unseen {name}={value}"

    out = raw.reset_index(drop=True).copy()
    out[PROBABILITY] = probability
    out[PREDICTION] = pd.array(
        np.where(np.isnan(probability), pd.NA, probability >= DECISION_THRESHOLD), dtype="Int8"
    )
    out[FLAG] = flags
    return Scored(out, int((~complete).sum()), unseen)
