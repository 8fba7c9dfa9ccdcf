"""Cross-validation equals sklearn's protocol; thread planning never oversubscribes."""

import numpy as np
import pytest
from lightgbm import LGBMClassifier
from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score

from census_assets.core import training
from census_assets.core.features import Vocabulary, encode, split_target
from census_assets.core.training import CVProtocol, cross_validate, fit_final, gate_failure


@pytest.fixture(scope="module")
def sample(bundled_clean):
    frame = encode(bundled_clean.sample(3000, random_state=0), Vocabulary.fit(bundled_clean)).frame
    return split_target(frame)


def test_fold_scores_equal_sklearn_cross_val_score(sample):
    X, y = sample
    protocol = CVProtocol(n_splits=3, n_repeats=2)
    ours = cross_validate(X, y, protocol, workers=2)
    sklearn_scores = cross_val_score(
        LGBMClassifier(random_state=protocol.model_seed, n_jobs=1, verbose=-1),
        X,
        y,
        scoring="accuracy",
        cv=RepeatedStratifiedKFold(n_splits=3, n_repeats=2, random_state=1),
    )
    assert ours.scores == list(sklearn_scores)
    assert len(ours.fit_seconds) == 6 and ours.mean == pytest.approx(np.mean(sklearn_scores))


def test_results_repeat_exactly(sample):
    X, y = sample
    protocol = CVProtocol(n_splits=3, n_repeats=1)
    assert cross_validate(X, y, protocol).scores == cross_validate(X, y, protocol, workers=1).scores


@pytest.mark.parametrize("cores,workers,expected", [(2, None, (2, 1)), (2, 1, (1, 2)), (2, 8, (2, 1)), (8, 3, (3, 2))])
def test_fits_times_threads_never_exceed_cores(monkeypatch, cores, workers, expected):
    monkeypatch.setattr(training, "available_cores", lambda: cores)
    planned = training.plan_threads(workers)
    assert planned == expected and planned[0] * planned[1] <= cores


def test_omp_waits_passively():
    import os

    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_final_model_predicts_probabilities(sample):
    X, y = sample
    names = [f"f{i}" for i in range(X.shape[1])]
    booster = fit_final(X, y, names)
    probabilities = booster.predict(X[:10])
    assert probabilities.shape == (10,) and ((probabilities >= 0) & (probabilities <= 1)).all()
    assert booster.feature_name() == names


def test_gate():
    assert gate_failure(0.83, 0.8) is None and gate_failure(0.8, 0.8) is None
    assert gate_failure(0.83, 0.99) == "CV accuracy 0.8300 is below the threshold 0.9900"
