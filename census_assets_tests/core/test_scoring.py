"""Scoring raw rows: one output row per input row, flags, and errors (pure, no Dagster)."""

import numpy as np
import pandas as pd
import pytest

from census_assets.core.cleaning import clean
from census_assets.core.features import Vocabulary, encode, split_target
from census_assets.core.schema import SchemaError
from census_assets.core.scoring import FLAG, PREDICTION, PROBABILITY, ScoringError, score, training_ranges

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


# ---- values outside what training saw or physically possible (Integrity, point 6) ---------------


class HeaderOnly:
    """A stand-in for lightgbm.Booster: only the model text's header matters to training_ranges."""

    def __init__(self, names: str, infos: str):
        self.text = f"tree\nversion=v4\nfeature_names={names}\nfeature_infos={infos}\n\nTree=0\nnum_leaves=1\n"

    def model_to_string(self) -> str:
        return self.text


@pytest.mark.integrity
def test_training_ranges_read_from_the_model_header():
    booster = HeaderOnly(
        "capital_gain capital_loss hours_per_week workclass_Private age_bins", "[0:99999] none [1:99] [0:1] [2:4]"
    )
    # capital_loss had one value in training (`none`): no range; age bins 2..4 are ages 30..59.
    assert training_ranges(booster) == {"capital_gain": (0, 99999), "hours_per_week": (1, 99), "age": (30, 59)}


@pytest.mark.integrity
def test_training_ranges_of_a_real_model(raw, vocabulary):
    import lightgbm as lgb

    cleaned = clean(raw)
    X, y = split_target(encode(cleaned, vocabulary).frame)
    names = [name.replace(" ", "_") for name in vocabulary.feature_names]
    booster = lgb.train(
        {"objective": "binary", "num_threads": 1, "verbose": -1}, lgb.Dataset(X, y, feature_name=names), 2
    )
    ranges = training_ranges(booster)
    for name in ("capital_gain", "capital_loss", "hours_per_week"):
        if cleaned[name].nunique() > 1:
            assert ranges[name] == (cleaned[name].min(), cleaned[name].max())
    assert ranges["age"][0] <= cleaned["age"].min() and cleaned["age"].max() <= ranges["age"][1]


@pytest.mark.integrity
def test_impossible_and_out_of_range_values_are_flagged_or_refused(raw, vocabulary):
    rows = raw.head(6).copy()
    rows.loc[0, "age"] = -2
    rows.loc[1, "hours_per_week"] = 200
    rows.loc[2, "capital_loss"] = -1
    rows.loc[3, "capital_gain"] = 500_000  # possible, but above what training saw
    rows.loc[4, "occupation"] = " Astronaut"
    rows.loc[4, "age"] = 99  # within 0..120, but outside the trained ages 17..90
    ranges = {"capital_gain": (0, 99999), "capital_loss": (0, 4356), "hours_per_week": (1, 99), "age": (17, 90)}
    # age -2 has no age bin (NaN), which LightGBM treats as missing; the stand-in model does too.
    scored = score(rows, lambda X: fake_model(np.nan_to_num(X)), vocabulary, ranges=ranges)
    assert scored.frame[FLAG].tolist() == [
        "impossible age=-2",
        "impossible hours_per_week=200",
        "impossible capital_loss=-1",
        "outside training range capital_gain=500000",
        "unseen occupation=Astronaut;outside training range age=99",
        "",
    ]
    assert scored.frame[PROBABILITY].notna().all()  # flagged rows are still scored, like unseen categories
    assert scored.impossible == {"age": 1, "capital_loss": 1, "hours_per_week": 1}
    assert scored.out_of_range == {"age": 1, "capital_gain": 1}
    assert "1 row(s) with capital_gain outside the model's training range 0..99999" in scored.range_warnings()
    with pytest.raises(ScoringError, match=r"1 row\(s\) with an impossible age \(possible: 0\.\.120\)"):
        score(rows, fake_model, vocabulary, ranges=ranges, strict=True)
    # Without training ranges only the physical limits apply.
    assert score(rows.iloc[3:4], fake_model, vocabulary).frame[FLAG].tolist() == [""]
    with pytest.raises(ScoringError, match="capital_gain outside the model's training range"):
        score(rows.iloc[3:4], fake_model, vocabulary, ranges=ranges, strict=True)


@pytest.mark.integrity
def test_out_of_range_row_missing_a_value_keeps_both_flags(raw, vocabulary):
    rows = raw.head(2).astype({"hours_per_week": "Int64"}).copy()
    rows.loc[0, "age"] = 130
    rows.loc[0, "hours_per_week"] = pd.NA
    scored = score(rows, fake_model, vocabulary)
    assert scored.frame[FLAG].tolist() == ["not scored: missing hours_per_week;impossible age=130", ""]
