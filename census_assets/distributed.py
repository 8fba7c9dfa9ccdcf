"""Dask: the heavy compute of the census assets on an existing Dask cluster.

`CENSUS_DASK_ADDRESS` (e.g. `tcp://scheduler:8786`) points the assets at a cluster; unset, they
run locally. Nothing here re-implements the pipeline: Dask runs census_assets.core's functions.

- CV: the protocol's fits run as independent single-threaded tasks (`score_fold`, the same
  function the local thread pool runs), so the fold scores are bit-identical to a local run. A
  worker that dies mid-CV loses only its running task; the scheduler reruns it elsewhere.
- Final model: above `distributed_fit_min_rows` rows, `lightgbm.dask.DaskLGBMClassifier` trains
  data-parallel over the workers, with LightGBM's ports pinned through `machines=`; below, the
  fit is local (a distributed fit is slower than one local fit for small tables).
- DataFrames: `read_partitioned` + `clean_partitioned` + `encode_partitioned` run clean/encode on
  every partition of a partitioned Parquet source (local or gs://); only the global
  drop_duplicates is Dask's own.

Workers need this package installed (same version as the Dagster code) and should run with
OMP_WAIT_POLICY=PASSIVE, as census_assets.core.training sets for local runs.
"""

import math
import time

import numpy as np
import pandas as pd

from census_assets.core import training
from census_assets.core.cleaning import clean
from census_assets.core.features import CATEGORICAL_COLUMNS, Vocabulary, encode
from census_assets.core.lightgbm_runtime import lgb, lightgbm
from census_assets.core.training import CVProtocol, CVResult
from census_assets.settings import DEFAULT_LIGHTGBM_PORT

# ---- CV: one task per fold ---------------------------------------------------------------------


def cross_validate_on(client, X: training.Features, y: np.ndarray, protocol: CVProtocol = CVProtocol()) -> CVResult:
    """training.cross_validate on a Dask cluster: each fold a single-threaded task."""
    splits = training.fold_splits(y, protocol)
    started = time.perf_counter()
    # One copy of the data per worker (not one per task); replicas survive a worker's death.
    data = client.scatter([X, y], broadcast=True, hash=False)
    futures = client.map(
        training.score_fold,
        [data[0]] * len(splits),
        [data[1]] * len(splits),
        [train for train, _ in splits],
        [test for _, test in splits],
        model_seed=protocol.model_seed,
        threads=1,
        pure=False,
    )
    results = client.gather(futures)
    return CVResult(
        scores=[score for score, _ in results],
        fit_seconds=[seconds for _, seconds in results],
        wall_seconds=time.perf_counter() - started,
        workers=sum(client.nthreads().values()),
        threads_per_fit=1,
    )


# ---- final model: data-parallel LightGBM -------------------------------------------------------


def lightgbm_machines(worker_addresses: list[str], base_port: int) -> str:
    """`machines=` for LightGBM: host:port per worker, ports counting up from base_port, so
    workers sharing a host get distinct ports and the firewall rule is one known range."""
    from urllib.parse import urlparse

    return ",".join(f"{urlparse(address).hostname}:{base_port + i}" for i, address in enumerate(worker_addresses))


def fit_final_on(
    client,
    X: training.Features,
    y: np.ndarray,
    feature_names: list[str],
    model_seed: int | None = None,
    base_port: int = DEFAULT_LIGHTGBM_PORT,
    partitions: int | None = None,
) -> lgb.Booster:
    """The final model trained with DaskLGBMClassifier over every worker of the cluster.

    The rows are cut into `partitions` (default: two per worker) and placed round-robin, so every
    worker holds data and `machines=` lists exactly the workers that train.
    """
    import dask.array as da
    dask_lightgbm = lightgbm("dask")

    workers = sorted(client.nthreads())
    parts = max(partitions or 2 * len(workers), len(workers))
    size = math.ceil(len(y) / parts)
    chunks_X, chunks_y = [], []
    for i, start in enumerate(range(0, len(y), size)):
        where = [workers[i % len(workers)]]
        rows = np.arange(start, min(start + size, len(y)))
        chunk = training.take_rows(X, rows)
        fx = client.scatter(chunk, workers=where, hash=False)
        fy = client.scatter(y[rows], workers=where, hash=False)
        chunks_X.append(da.from_delayed(fx, shape=chunk.shape, dtype=chunk.dtype))
        chunks_y.append(da.from_delayed(fy, shape=(len(rows),), dtype=y.dtype))
    model = dask_lightgbm.DaskLGBMClassifier(
        client=client,
        random_state=model_seed,
        verbose=-1,
        machines=lightgbm_machines(workers, base_port),
    )
    model.fit(da.concatenate(chunks_X), da.concatenate(chunks_y), feature_name=feature_names)
    return model.to_local().booster_


# ---- DataFrames: clean and encode per partition ------------------------------------------------


def read_partitioned(uri: str, storage_options: dict | None = None):
    """A partitioned Parquet source (a directory or gs:// prefix of part files) as a Dask DataFrame.

    The workers read the parts themselves; storage_options (e.g. gcsfs's token) travel with the
    tasks, the default credentials are each worker's own."""
    import dask.dataframe as dd

    return dd.read_parquet(uri, storage_options=storage_options)


def _empty_like_clean(raw_meta: pd.DataFrame) -> pd.DataFrame:
    return clean(raw_meta).iloc[:0]


def _clean_partition(part: pd.DataFrame, empty: pd.DataFrame) -> pd.DataFrame:
    # A partition can be empty after the global dedupe; clean() refuses an empty table.
    return clean(part) if len(part) else empty


def clean_partitioned(raw):
    """core.clean on every partition, after Dask's global dropna + drop_duplicates (a shuffle):
    the rows and values of clean() on the whole table, in another order."""
    deduped = raw.dropna().drop_duplicates(split_out=raw.npartitions)
    empty = _empty_like_clean(raw._meta_nonempty)
    return deduped.map_partitions(_clean_partition, empty, meta=empty)


def fit_vocabulary_partitioned(cleaned) -> Vocabulary:
    """Vocabulary.fit on the distinct category combinations (small) instead of every row."""
    return Vocabulary.fit(cleaned[list(CATEGORICAL_COLUMNS)].drop_duplicates().compute())


def _encode_partition(part: pd.DataFrame, vocabulary: Vocabulary) -> pd.DataFrame:
    return encode(part, vocabulary).frame


def encode_partitioned(cleaned, vocabulary: Vocabulary):
    """core.encode on every partition with one fixed vocabulary: the same columns everywhere."""
    meta = _encode_partition(cleaned._meta, vocabulary)
    return cleaned.map_partitions(_encode_partition, vocabulary, meta=meta)
