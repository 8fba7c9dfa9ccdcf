"""Cross-validation and the final fit, with thread discipline and bounded memory.

LightGBM's OpenMP threads busy-wait by default: two fits side by side on a small machine then
fight for the cores (one fit took 100 s instead of 1 s). So folds run in a thread pool (LightGBM
releases the GIL), each fit gets cores // workers threads, and OpenMP waits passively
(census_assets.core sets OMP_WAIT_POLICY=PASSIVE before LightGBM loads).

Memory: X is shared by all folds, either a float32 matrix or (compact_split) a FeatureMatrix
that keeps each column in its own dtype (uint8 dummies: a byte a cell instead of four) and hands
out float32 rows. A fold never copies large X[train]: LightGBM reads those rows in batches
(RowBatches) and keeps only its binned Dataset.
"""

from __future__ import annotations

import ctypes
import functools
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from census_assets.core.features import TARGET, Vocabulary

# LightGBM and scikit-learn load inside the functions that use them (importing this module stays
# cheap), through lightgbm_runtime: OMP_WAIT_POLICY=PASSIVE is set before LightGBM's OpenMP runtime
# loads, and the libraries' objects are frozen once loaded.
from census_assets.core.lightgbm_runtime import lightgbm, sklearn

if TYPE_CHECKING:
    import lightgbm as lgb


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class CVProtocol:
    """RepeatedStratifiedKFold as in the reference pipeline, with the reference's model.

    model_seed None is the reference's `LGBMClassifier()`: no random_state, LightGBM's own default
    seeds. An int is passed as random_state; it changes the fits wherever LightGBM samples (above
    200,000 training rows it samples rows for the bin boundaries), so the scores then differ from
    the reference's there.
    """

    n_splits: int = 5
    n_repeats: int = 3
    cv_random_state: int = 1
    model_seed: int | None = None


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


def make_classifier(model_seed: int | None, threads: int) -> lgb.LGBMClassifier:
    """`LGBMClassifier()` with an explicit thread count (and random_state=model_seed unless None,
    LGBMClassifier's own default). Neither n_jobs nor verbose changes the trees."""
    return lightgbm().LGBMClassifier(random_state=model_seed, n_jobs=threads, verbose=-1)


def plan_threads(workers: int | None) -> tuple[int, int]:
    """(parallel fits, threads per fit) with fits x threads never above the cores."""
    cores = available_cores()
    workers = max(1, min(workers or cores, cores))
    return workers, max(1, cores // workers)


# A fold whose training rows would take more than this as a dense copy is not copied: LightGBM
# reads the rows from X in batches instead (see RowBatches). Below it the copy is faster.
STREAM_ABOVE_BYTES = 256 * 2**20
BATCH_ROWS = 65_536


class FeatureMatrix:
    """A feature table's columns in their own dtypes, grouped by dtype into row-major blocks.

    At 3.26 M rows the census features take 0.3 GiB this way instead of 1.2 GiB as one float32
    matrix. Rows come out as float32 (what split_target gives; exact for integer features below
    2**24), so the fits see the same values either way.
    """

    def __init__(self, frame: pd.DataFrame):
        self.shape = frame.shape
        self.columns = [str(name) for name in frame.columns]
        self._blocks = []
        dtypes = frame.dtypes.to_numpy()
        for dtype in pd.unique(dtypes):
            where = np.flatnonzero(dtypes == dtype)
            block = np.empty((len(frame), len(where)), dtype=dtype)
            for j, position in enumerate(where):  # column by column: no transient copy of the table
                block[:, j] = frame.iloc[:, position].to_numpy()
            self._blocks.append((where, block))
        self._order = np.argsort(np.concatenate([where for where, _ in self._blocks]))

    def rows(self, index: np.ndarray) -> np.ndarray:
        out = np.empty((len(index), self.shape[1]), dtype=np.float32)
        for where, block in self._blocks:
            out[:, where] = block[index]
        return out

    def row(self, i: int) -> np.ndarray:
        return np.concatenate([block[i] for _, block in self._blocks]).astype(np.float64)[self._order]


Features = np.ndarray | FeatureMatrix


def compact_split(features: pd.DataFrame) -> tuple[FeatureMatrix, np.ndarray]:
    """split_target without the float32 copy of the whole table: (FeatureMatrix, y)."""
    return FeatureMatrix(features.drop(columns=[TARGET])), features[TARGET].to_numpy()


def take_rows(X: Features, index: np.ndarray) -> np.ndarray:
    """X[index] as a matrix LightGBM reads (float32 unless X is float64)."""
    if isinstance(X, FeatureMatrix):
        return X.rows(index)
    rows = X[index]
    return rows if rows.dtype in (np.float32, np.float64) else rows.astype(np.float32)


@functools.cache
def _row_batches_class() -> type:
    """RowBatches, created on first use: it subclasses lgb.Sequence, so LightGBM must be loaded."""

    class RowBatches(lightgbm().Sequence):
        """The rows `index` of X as a LightGBM Sequence, so a fit never holds a copy of its rows.

        LightGBM builds the same binned Dataset from a Sequence as from the copied matrix (it
        samples the same rows for the bin boundaries, then pushes the rows in order), so fold
        scores stay those of the sklearn protocol; the test suite checks this against
        cross_val_score. Only the binned Dataset (a byte or less per value) and one batch live
        per fit.
        """

        batch_size = BATCH_ROWS

        def __init__(self, X: Features, index: np.ndarray):
            self.X, self.index = X, index

        def __len__(self) -> int:
            return len(self.index)

        def __getitem__(self, item):
            if isinstance(item, slice):
                return take_rows(self.X, self.index[item])
            # Bin sampling reads single rows, as double.
            if isinstance(self.X, FeatureMatrix):
                return self.X.row(self.index[item])
            return self.X[self.index[item]].astype(np.float64)

    RowBatches.__qualname__ = "RowBatches"  # pickles as census_assets.core.training.RowBatches
    RowBatches.__module__ = __name__
    return RowBatches


def __getattr__(name: str):
    # `training.RowBatches` / `from census_assets.core.training import RowBatches` create the class.
    if name == "RowBatches":
        return _row_batches_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _train_params(model_seed: int | None, threads: int) -> tuple[dict, int]:
    """make_classifier's parameters as LGBMClassifier.fit hands them to lgb.train (binary)."""
    params = make_classifier(model_seed, threads).get_params()
    rounds = params.pop("n_estimators")
    for sklearn_only in ("importance_type", "class_weight", "objective"):
        params.pop(sklearn_only)
    params["objective"] = "binary"
    params["num_threads"] = params.pop("n_jobs")
    seed = params.pop("random_state")
    if seed is not None:  # None: no seed at all, as LGBMClassifier() passes none (default seeds)
        params["random_state"] = int(seed)
        # When LightGBM samples rows for its bin boundaries from a Sequence it passes only dataset
        # parameters, so `seed` would not reach the sampler; give it the seed `seed` implies.
        params["data_random_seed"] = _implied_data_seed(int(seed))
    return params, rounds


def _implied_data_seed(seed: int) -> int:
    """LightGBM's data_random_seed for a given seed: the first NextShort(0, 32767) of its
    Random(seed) (config.cpp); the test suite checks streamed and copied trees stay identical."""
    state = (214013 * seed + 2531011) & 0xFFFFFFFF
    return ((state >> 16) & 0x7FFF) % 32767


def _rows(X: Features, index: np.ndarray | None):
    """X[index] copied, or (above STREAM_ABOVE_BYTES) a RowBatches over it."""
    if index is None:
        if isinstance(X, np.ndarray):
            return X  # used as it is: no copy
        index = np.arange(X.shape[0])
    if len(index) * X.shape[1] * 4 <= STREAM_ABOVE_BYTES:
        return take_rows(X, index)
    return _row_batches_class()(X, index)


def fit_rows(
    X: Features,
    y: np.ndarray,
    index: np.ndarray | None = None,
    model_seed: int | None = None,
    threads: int = 1,
    feature_names: list[str] | None = None,
) -> lgb.Booster:
    """What make_classifier(...).fit(X[index], y[index]) fits, without copying large X[index]."""
    labels = y if index is None else y[index]
    classes, encoded = np.unique(labels, return_inverse=True)
    if len(classes) != 2:
        raise ValueError(f"the target must have two classes, got {list(classes)}")
    params, rounds = _train_params(model_seed, threads)
    lgb = lightgbm()
    dataset = lgb.Dataset(
        _rows(X, index),
        label=encoded.astype(np.float32),
        feature_name=feature_names or "auto",
        params=params,
    )
    return lgb.train(params, dataset, num_boost_round=rounds)


def predict_positive(booster: lgb.Booster, X: Features, index: np.ndarray, threads: int = 1) -> np.ndarray:
    """LGBMClassifier.predict's class index (argmax of [1-p, p]) for X[index], in batches."""
    labels = np.empty(len(index), dtype=bool)
    for start in range(0, len(index), BATCH_ROWS):
        p = booster.predict(take_rows(X, index[start : start + BATCH_ROWS]), num_threads=threads)
        labels[start : start + BATCH_ROWS] = p > 1.0 - p
    return labels


def fold_splits(y: np.ndarray, protocol: CVProtocol = CVProtocol()) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(
        sklearn("model_selection").RepeatedStratifiedKFold(
            n_splits=protocol.n_splits,
            n_repeats=protocol.n_repeats,
            random_state=protocol.cv_random_state,
        ).split(np.zeros(len(y)), y)
    )


def score_fold(
    X: Features, y: np.ndarray, train: np.ndarray, test: np.ndarray, model_seed: int | None, threads: int
) -> tuple[float, float]:
    """(accuracy, seconds) of one fold: the unit of work, run locally or as a Dask task."""
    started = time.perf_counter()
    booster = fit_rows(X, y, train, model_seed, threads)
    classes = np.unique(y[train])
    predicted = classes[predict_positive(booster, X, test, threads).astype(np.intp)]
    score = sklearn("metrics").accuracy_score(y[test], predicted)
    return float(score), time.perf_counter() - started


def cross_validate(
    X: Features, y: np.ndarray, protocol: CVProtocol = CVProtocol(), workers: int | None = None
) -> CVResult:
    """Accuracy of every fold of the protocol, identical to sklearn's cross_val_score."""
    splits = fold_splits(y, protocol)
    workers, threads = plan_threads(workers)

    def run_fold(split: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:
        return score_fold(X, y, *split, protocol.model_seed, threads)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(run_fold, splits))
    return_freed_memory()
    return CVResult(
        scores=[score for score, _ in results],
        fit_seconds=[seconds for _, seconds in results],
        wall_seconds=time.perf_counter() - started,
        workers=workers,
        threads_per_fit=threads,
    )


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    libc = ctypes.CDLL(None)
    return getattr(libc, "malloc_trim", None)  # glibc only


def return_freed_memory() -> None:
    """Give the memory that finished threads freed back to the operating system.

    glibc gives each thread its own malloc arena and keeps what is freed there; the fold threads'
    copies and LightGBM Datasets would stay resident after the CV, and the next steps, allocating
    from the main thread, could not reuse them, so a run's peak memory would count them again.
    """
    if (trim := _malloc_trim()) is not None:
        trim(0)


# Under passive OpenMP waiting, waking the other threads for every step of every boosting round
# costs more than they bring on a small table (measured on 2 cores: 32,537 rows 0.33 s on one
# thread vs 1.1 s on two; 162,685 rows 1.1-1.5 s vs 1.9 s; 650,740 rows 6.1 s vs 5.4 s).
ONE_THREAD_BELOW_ROWS = 400_000


def final_fit_threads(rows: int) -> int:
    return 1 if rows < ONE_THREAD_BELOW_ROWS else available_cores()


def fit_final(
    X: Features, y: np.ndarray, feature_names: list[str], model_seed: int | None = None
) -> lgb.Booster:
    """The final model on all rows, features named: one thread for a small table, else every core
    (the trees are the same either way)."""
    return fit_rows(X, y, None, model_seed, final_fit_threads(len(y)), feature_names)


def gate_failure(accuracy: float, threshold: float) -> str | None:
    """Why a model must not be trained, or None when the accuracy passes the threshold."""
    if accuracy >= threshold:
        return None
    return f"CV accuracy {accuracy:.4f} is below the threshold {threshold:.4f}"


@dataclass
class TrainedModel:
    """A LightGBM booster, the vocabulary its features were encoded with, and optionally its
    feature-importance chart (PNG), stored beside it."""

    booster: lgb.Booster
    vocabulary: Vocabulary
    importance_chart: bytes | None = None

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.booster.predict(X)
