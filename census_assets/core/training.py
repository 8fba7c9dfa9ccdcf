"""Cross-validation and the final fit, with thread discipline.

LightGBM's OpenMP threads busy-wait by default: two fits side by side on a small machine then
fight for the cores (one fit took 100 s instead of 1 s). So folds run in a thread pool (LightGBM
releases the GIL), each fit gets cores // workers threads, and OpenMP waits passively.
"""

import os

# Must be set before LightGBM loads its OpenMP runtime; a user's explicit choice wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import accuracy_score  # noqa: E402
from sklearn.model_selection import RepeatedStratifiedKFold  # noqa: E402

from census_assets.core.features import Vocabulary  # noqa: E402


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class CVProtocol:
    """RepeatedStratifiedKFold as in the reference pipeline; model_seed seeds LightGBM."""

    n_splits: int = 5
    n_repeats: int = 3
    cv_random_state: int = 1
    model_seed: int = 1


@dataclass(frozen=True)
class CVResult:
    scores: list[float]
    fit_seconds: list[float]
    wall_seconds: float
    workers: int
    threads_per_fit: int

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        return float(np.std(self.scores))


def make_classifier(model_seed: int, threads: int) -> lgb.LGBMClassifier:
    """LightGBM with default hyper-parameters, seeded, with an explicit thread count."""
    return lgb.LGBMClassifier(random_state=model_seed, n_jobs=threads, verbose=-1)


def plan_threads(workers: int | None) -> tuple[int, int]:
    """(parallel fits, threads per fit) with fits x threads never above the cores."""
    cores = available_cores()
    workers = max(1, min(workers or cores, cores))
    return workers, max(1, cores // workers)


def cross_validate(
    X: np.ndarray, y: np.ndarray, protocol: CVProtocol = CVProtocol(), workers: int | None = None
) -> CVResult:
    """Accuracy of every fold of the protocol, identical to sklearn's cross_val_score."""
    splits = list(
        RepeatedStratifiedKFold(
            n_splits=protocol.n_splits,
            n_repeats=protocol.n_repeats,
            random_state=protocol.cv_random_state,
        ).split(X, y)
    )
    workers, threads = plan_threads(workers)

    def run_fold(split: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:
        train, test = split
        started = time.perf_counter()
        model = make_classifier(protocol.model_seed, threads).fit(X[train], y[train])
        score = accuracy_score(y[test], model.predict(X[test]))
        return float(score), time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(run_fold, splits))
    return CVResult(
        scores=[score for score, _ in results],
        fit_seconds=[seconds for _, seconds in results],
        wall_seconds=time.perf_counter() - started,
        workers=workers,
        threads_per_fit=threads,
    )


def fit_final(
    X: np.ndarray, y: np.ndarray, feature_names: list[str], model_seed: int = 1
) -> lgb.Booster:
    """The final model on all rows, with every core for the one fit, features named."""
    model = make_classifier(model_seed, available_cores())
    return model.fit(X, y, feature_name=feature_names).booster_


def gate_failure(accuracy: float, threshold: float) -> str | None:
    """Why a model must not be trained, or None when the accuracy passes the threshold."""
    if accuracy >= threshold:
        return None
    return f"CV accuracy {accuracy:.4f} is below the threshold {threshold:.4f}"


@dataclass
class TrainedModel:
    """A LightGBM booster and the vocabulary its features were encoded with."""

    booster: lgb.Booster
    vocabulary: Vocabulary

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.booster.predict(X)
