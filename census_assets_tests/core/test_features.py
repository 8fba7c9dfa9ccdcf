"""encode(): reference feature semantics on a fixed vocabulary, unseen categories counted."""

import numpy as np
import pandas as pd
import pytest

from census_assets.core.features import (
    REDUNDANT_DUMMY,
    TARGET,
    VOCABULARY_ATTR,
    Vocabulary,
    age_bins,
    encode,
    split_target,
)


def reference_features(clean_df: pd.DataFrame) -> pd.DataFrame:
    """The Airflow pipeline's feature step, kept here as the oracle."""
    df = clean_df.copy()
    for name in ["workclass", "education", "occupation", "race", "sex", "income_bracket", "native_country"]:
        df = pd.get_dummies(df, prefix=name, columns=[name])
    df["age_bins"] = pd.cut(x=df["age"], bins=[16, 29, 39, 49, 59, 100], labels=[1, 2, 3, 4, 5])
    df["never_married"] = df["marital_status"].apply(lambda x: 1 if x == "Never-married" else 0)
    return df.drop(columns=["income_bracket_<=50K", "marital_status", "age"])


@pytest.fixture(scope="module")
def vocabulary(bundled_clean):
    return Vocabulary.fit(bundled_clean)


def test_bundled_features_equal_the_reference(bundled_clean, vocabulary):
    ours = encode(bundled_clean, vocabulary).frame
    oracle = reference_features(bundled_clean)
    assert ours.shape == (32537, 95)
    assert list(ours.columns) == list(oracle.columns)
    assert np.array_equal(
        ours.to_numpy(dtype=np.float64), oracle.to_numpy().astype(np.float64), equal_nan=True
    )
    assert len(vocabulary.feature_names) == 94 and REDUNDANT_DUMMY not in ours.columns


def test_dummies_are_compact_and_vocabulary_travels_with_the_frame(bundled_clean, vocabulary):
    frame = encode(bundled_clean, vocabulary).frame
    assert frame["sex_Male"].dtype == np.uint8 and frame[TARGET].dtype == np.uint8
    assert frame.attrs[VOCABULARY_ATTR] == vocabulary.to_dict()


def test_unseen_category_adds_no_column_and_is_counted(bundled_clean, vocabulary):
    batch = bundled_clean.head(5).copy()
    batch.loc[0, "occupation"] = "Astronaut"
    batch.loc[1, "occupation"] = "Astronaut"
    encoded = encode(batch, vocabulary)
    assert list(encoded.frame.columns) == [*vocabulary.feature_names, TARGET]
    occupation = [c for c in encoded.frame.columns if c.startswith("occupation_")]
    assert encoded.frame.loc[[0, 1], occupation].to_numpy().sum() == 0
    assert encoded.unseen == {"occupation": {"Astronaut": 2}}
    assert encoded.unseen_rows == 2


def test_missing_category_in_a_batch_still_yields_its_column(bundled_clean, vocabulary):
    one_row = encode(bundled_clean.head(1), vocabulary).frame
    assert list(one_row.columns) == [*vocabulary.feature_names, TARGET]


def test_age_bins_edges_follow_pd_cut():
    ages = pd.Series([17, 29, 30, 39, 40, 59, 60, 90, 16, 101])
    assert age_bins(ages).tolist()[:8] == [1, 1, 2, 2, 3, 4, 5, 5]
    assert np.isnan(age_bins(ages).iloc[8]) and np.isnan(age_bins(ages).iloc[9])


def test_vocabulary_round_trips_through_json(tmp_path, vocabulary):
    vocabulary.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json") == vocabulary
    with pytest.raises(ValueError, match="lacks categorical column.*race"):
        Vocabulary.from_dict({k: v for k, v in vocabulary.to_dict().items() if k != "race"})


def test_split_target_gives_float32_matrix(bundled_clean, vocabulary):
    X, y = split_target(encode(bundled_clean.head(100), vocabulary).frame)
    assert X.dtype == np.float32 and X.shape == (100, 94) and set(np.unique(y)) <= {0, 1}
