"""Scale: the jittered replicator, and folds streamed from X scoring exactly like copied folds."""

import numpy as np
import pytest
from lightgbm import LGBMClassifier
from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score

from census_assets.core import training
from census_assets.core.cleaning import clean
from census_assets.core.features import Vocabulary, encode, split_target
from census_assets.core.scaling import replicate
from census_assets.core.training import CVProtocol, RowBatches, compact_split, cross_validate, fit_final


def test_replicate_keeps_copy_zero_and_grows_the_clean_table(bundled_raw):
    raw = bundled_raw.head(2000)
    scaled = replicate(raw, 5, seed=3)
    assert len(scaled) == 5 * len(raw)
    assert scaled.head(len(raw)).equals(raw.reset_index(drop=True))
    assert scaled.dtypes.equals(raw.dtypes)
    assert scaled.equals(replicate(raw, 5, seed=3)) and not scaled.equals(replicate(raw, 5, seed=4))
    # Copies differ from their originals, so drop_duplicates keeps (almost) every row.
    assert len(clean(scaled)) >= 5 * len(clean(raw)) - 5
    for name in ("age", "hours_per_week", "capital_gain"):
        assert scaled[name].between(raw[name].min(), raw[name].max()).all()
    assert (scaled["capital_gain"] == 0).sum() == 5 * (raw["capital_gain"] == 0).sum()


def test_replicate_rejects_no_copies(bundled_raw):
    with pytest.raises(ValueError, match="copies must be at least 1"):
        replicate(bundled_raw, 0)


@pytest.fixture(scope="module")
def sample(bundled_clean):
    frame = encode(bundled_clean.sample(3000, random_state=1), Vocabulary.fit(bundled_clean)).frame
    return split_target(frame)


def test_streamed_folds_equal_sklearn_cross_val_score(sample, monkeypatch):
    X, y = sample
    monkeypatch.setattr(training, "STREAM_ABOVE_BYTES", 0)  # every fold read through RowBatches
    monkeypatch.setattr(training, "BATCH_ROWS", 700)  # several batches per fold
    monkeypatch.setattr(RowBatches, "batch_size", 700)
    protocol = CVProtocol(n_splits=3, n_repeats=2)
    ours = cross_validate(X, y, protocol, workers=2)
    expected = cross_val_score(
        LGBMClassifier(random_state=protocol.model_seed, n_jobs=1, verbose=-1),
        X, y, scoring="accuracy",
        cv=RepeatedStratifiedKFold(n_splits=3, n_repeats=2, random_state=1),
    )
    assert ours.scores == list(expected)


def test_final_fit_streamed_equals_copied(sample, monkeypatch):
    X, y = sample
    names = [f"f{i}" for i in range(X.shape[1])]
    copied = fit_final(X, y, names)
    monkeypatch.setattr(training, "STREAM_ABOVE_BYTES", 0)
    streamed = training.fit_rows(X, y, np.arange(len(y)), 1, 1, names)
    assert streamed.dump_model()["tree_info"] == copied.dump_model()["tree_info"]
    assert streamed.feature_name() == names


@pytest.fixture(scope="module")
def frame(bundled_clean):
    return encode(bundled_clean.sample(3000, random_state=2), Vocabulary.fit(bundled_clean)).frame


def test_feature_matrix_rows_equal_split_target(frame):
    X, y = split_target(frame)
    compact, y2 = compact_split(frame)
    assert np.array_equal(y, y2) and compact.shape == X.shape
    index = np.array([5, 0, 2999, 17])
    assert np.array_equal(compact.rows(index), X[index], equal_nan=True)
    assert compact.rows(index).dtype == np.float32
    assert np.array_equal(compact.row(17), X[17].astype(np.float64), equal_nan=True)
    # The uint8 dummies stay one byte a cell: far below the float32 matrix.
    assert sum(block.nbytes for _, block in compact._blocks) < X.nbytes / 2


@pytest.mark.parametrize("stream", [False, True])
def test_compact_folds_and_final_fit_equal_the_float32_matrix(frame, monkeypatch, stream):
    X, y = split_target(frame)
    compact, _ = compact_split(frame)
    protocol = CVProtocol(n_splits=3, n_repeats=1)
    expected = cross_validate(X, y, protocol).scores
    names = [str(c) for c in frame.columns.drop("never_married")]
    expected_trees = fit_final(X, y, names).dump_model()["tree_info"]
    if stream:
        monkeypatch.setattr(training, "STREAM_ABOVE_BYTES", 0)
    assert cross_validate(compact, y, protocol).scores == expected
    assert fit_final(compact, y, names).dump_model()["tree_info"] == expected_trees
