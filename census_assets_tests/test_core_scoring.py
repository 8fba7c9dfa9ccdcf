"""Scoring raw rows: one output row per input row, flags, and errors (pure, no Dagster)."""

import numpy as np
import pandas as pd
import pytest

from census_assets.core.cleaning import clean
from census_assets.core.features import Vocabulary, encode, split_target
from census_assets.core.schema import SchemaError
from census_assets.core.scoring import FLAG, PREDICTION, PROBABILITY, ScoringError, score

pytestmark = pytest.mark.lifecycle


@pytest.fixture(scope="module")
def raw(bundled_raw) -> pd.DataFrame:
    return bundled_raw.head(400)


@pytest.fixture(scope="module")
def vocabulary(raw) -> Vocabulary:
    return Vocabulary.fit(clean(raw))


def fake_model(X: np.ndarray) -> np.ndarray:
    # A deterministic stand-in for Booster.predict: a function of every feature column.
    return 1 / (1 + np.exp(-(X * np.arange(1, X.shape[1] + 1) / X.shape[1]).sum(axis=1) / 50))


def test_matches_pipeline_encoding_row_for_row(raw, vocabulary):
    doubled = pd.concat([raw, raw.head(3)], ignore_index=True)  # duplicates must be scored too
    scored = score(doubled, fake_model, vocabulary).frame
    assert len(scored) == len(doubled)
    assert list(scored.columns[: len(raw.columns)]) == list(raw.columns)
    X, _ = split_target(encode(clean(raw), vocabulary).frame)
    kept = raw.dropna().drop_duplicates().index
    assert np.array_equal(scored[PROBABILITY].to_numpy()[kept], fake_model(X))
    assert scored[PROBABILITY].iloc[-3:].tolist() == scored[PROBABILITY].iloc[:3].tolist()
    assert (scored[PREDICTION] == (scored[PROBABILITY] >= 0.5).astype(int)).all()
    assert (scored[FLAG] == "").all()


def test_label_column_is_optional(raw, vocabulary):
    with_label = score(raw, fake_model, vocabulary).frame[PROBABILITY]
    without = score(raw.drop(columns="marital_status"), fake_model, vocabulary).frame[PROBABILITY]
    assert with_label.equals(without)


def test_missing_value_is_flagged_not_dropped(raw, vocabulary):
    rows = raw.head(4).astype({"age": "Int64"})
    rows.loc[1, "age"] = pd.NA
    rows.loc[2, "functional_weight"] = pd.NA  # unused by the model: still scored
    scored = score(rows, fake_model, vocabulary)
    assert len(scored.frame) == 4 and scored.missing_rows == 1
    assert scored.frame[FLAG].iloc[1] == "not scored: missing age"
    assert pd.isna(scored.frame[PROBABILITY].iloc[1]) and pd.isna(scored.frame[PREDICTION].iloc[1])
    assert scored.frame[PROBABILITY].drop(index=1).notna().all()


def test_rows_all_missing_are_all_flagged(raw, vocabulary):
    rows = raw.head(2).assign(hours_per_week=pd.array([pd.NA, pd.NA], dtype="Int64"))
    scored = score(rows, fake_model, vocabulary)
    assert scored.missing_rows == 2 and scored.frame[PROBABILITY].isna().all()
    assert scored.frame[FLAG].tolist() == ["not scored: missing hours_per_week"] * 2


def test_unseen_category_is_flagged_or_refused(raw, vocabulary):
    rows = raw.head(3).copy()
    rows.loc[0, "occupation"] = " Astronaut"
    scored = score(rows, fake_model, vocabulary)
    assert scored.frame[FLAG].tolist() == ["unseen occupation=Astronaut", "", ""]
    assert scored.unseen == {"occupation": {"Astronaut": 1}}
    assert scored.frame[PROBABILITY].notna().all()
    with pytest.raises(ScoringError, match="Astronaut"):
        score(rows, fake_model, vocabulary, strict=True)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda df: df.drop(columns="occupation"), "missing required column.*occupation"),
        (lambda df: df.assign(age="forty"), "'age' must be integer"),
        (lambda df: df.head(0), "no rows"),
    ],
)
def test_bad_input_is_a_clear_error(raw, vocabulary, mutate, message):
    with pytest.raises(SchemaError, match=message):
        score(mutate(raw.head(5)), fake_model, vocabulary)
