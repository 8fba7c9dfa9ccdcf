"""The census compute on a real (local, multi-process) Dask cluster. Run alone: pytest -m dask."""

import json
import os
import signal
import threading

import lightgbm as lgb
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from census_assets.core import training
from census_assets.core.cleaning import clean
from census_assets.core.features import Vocabulary, encode, split_target
from census_assets.core.training import CVProtocol, cross_validate, fit_final
from census_assets.distributed import (
    clean_partitioned,
    cross_validate_on,
    encode_partitioned,
    fit_final_on,
    fit_vocabulary_partitioned,
    lightgbm_machines,
    read_partitioned,
)
from census_assets_tests.harness.runner import TRAINING_CHAIN, run_graph
from census_assets_tests.harness.waiting import wait_for

pytestmark = pytest.mark.dask


@pytest.fixture(scope="module")
def cluster():
    import distributed  # slow to import: here, not when the fast tier collects this module

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        yield cluster, client


@pytest.fixture(scope="module")
def census(bundled_clean):
    # A third of the table keeps the suite quick; what is compared does not depend on the size.
    sample = bundled_clean.sample(12_000, random_state=0).reset_index(drop=True)
    frame = encode(sample, Vocabulary.fit(bundled_clean)).frame
    X, y = split_target(frame)
    return X, y, [str(name) for name in frame.columns.drop("never_married")]


def two_workers(client):
    client.wait_for_workers(2, timeout=60)
    return sorted(client.nthreads())


def test_cv_on_the_cluster_is_bit_identical_to_local(cluster, census):
    _, client = cluster
    X, y, _ = census
    two_workers(client)
    local = cross_validate(X, y)
    remote = cross_validate_on(client, X, y)
    assert remote.scores == local.scores and len(remote.scores) == 15
    assert remote.threads_per_fit == 1 and remote.workers == 2


def test_cv_on_fewer_workers_than_cores_is_bit_identical_to_local(census):
    """One single-threaded worker on this 2-core machine: every fold queues on it, same scores."""
    import distributed

    X, y, _ = census
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as single, distributed.Client(single) as client:
        remote = cross_validate_on(client, X, y)
    assert remote.workers == 1 < training.available_cores()
    assert remote.scores == cross_validate(X, y).scores


def source_with_cross_partition_duplicates(raw: pd.DataFrame) -> list[pd.DataFrame]:
    """The table plus 500 repeated rows, cut into 4 parts: only a global dedupe removes the
    repeats (they sit in another part than their originals), as pandas does."""
    table = pd.concat([raw, raw.head(500)], ignore_index=True)
    return [table.iloc[i::4] for i in range(4)]


def assert_dask_features_equal_pandas(parts: list[pd.DataFrame], uri: str, storage_options=None):
    cleaned = clean_partitioned(read_partitioned(uri, storage_options))
    vocabulary = fit_vocabulary_partitioned(cleaned)
    got = encode_partitioned(cleaned, vocabulary).compute()

    expected_clean = clean(pd.concat(parts))
    assert vocabulary == Vocabulary.fit(expected_clean)
    expected = encode(expected_clean, vocabulary).frame
    assert list(got.columns) == list(expected.columns) and got.dtypes.equals(expected.dtypes)

    def ordered(frame):  # same rows, in the shuffle's order: compare as sorted tables
        return frame.sort_values(list(frame.columns)).reset_index(drop=True)

    assert len(got) == len(expected) == 32537
    pd.testing.assert_frame_equal(ordered(got), ordered(expected))


def test_dask_dataframe_features_equal_pandas(cluster, bundled_raw, tmp_path):
    parts = source_with_cross_partition_duplicates(bundled_raw)
    (tmp_path / "source").mkdir()
    for i, part in enumerate(parts):
        part.to_parquet(tmp_path / "source" / f"part.{i}.parquet")
    assert_dask_features_equal_pandas(parts, str(tmp_path / "source"))


def test_dask_dataframe_reads_partitioned_parquet_from_gcs(cluster, bundled_raw, gcs_emulator):
    import gcsfs

    # The workers were started before the emulator: they get its endpoint with the tasks.
    options = {"token": "anon", "endpoint_url": os.environ["STORAGE_EMULATOR_HOST"]}
    fs = gcsfs.GCSFileSystem(skip_instance_cache=True, **options)
    fs.mkdir("census-dask")
    parts = source_with_cross_partition_duplicates(bundled_raw)
    for i, part in enumerate(parts):
        with fs.open(f"census-dask/raw/part.{i}.parquet", "wb") as handle:
            part.to_parquet(handle)
    assert len(fs.ls("census-dask/raw")) == 4
    assert_dask_features_equal_pandas(parts, "gs://census-dask/raw/", options)


def test_lightgbm_machines_pins_one_port_per_worker():
    machines = lightgbm_machines(["tcp://10.0.0.5:40000", "tcp://10.0.0.5:40001", "tcp://10.0.0.6:3"], 12400)
    assert machines == "10.0.0.5:12400,10.0.0.5:12401,10.0.0.6:12402"


def test_dask_lightgbm_on_four_partitions_matches_local_accuracy(cluster, census):
    _, client = cluster
    X, y, names = census
    workers = two_workers(client)
    cut = int(len(y) * 0.8)
    local = fit_final(X[:cut], y[:cut], names)
    remote = fit_final_on(client, X[:cut], y[:cut], names, partitions=4, base_port=12560)
    assert remote.feature_name() == names
    # Both workers trained: the model records the machines it was built on.
    assert all(f"127.0.0.1:{12560 + i}" in remote.model_to_string() for i in range(len(workers)))

    def accuracy(booster):
        return accuracy_score(y[cut:], booster.predict(X[cut:]) > 0.5)

    assert abs(accuracy(remote) - accuracy(local)) <= 0.01
    assert accuracy(remote) > 0.8


def test_whole_graph_materialises_with_the_dask_resource(cluster, tmp_path):
    dask_cluster, client = cluster
    two_workers(client)
    storage = tmp_path / "storage"
    env = {
        "CENSUS_STORAGE_URL": str(storage),
        "CENSUS_DASK_ADDRESS": dask_cluster.scheduler_address,
        "CENSUS_DASK_FIT_MIN_ROWS": "1",  # the final model trains with DaskLGBMClassifier too
    }
    result = run_graph(env, selection=TRAINING_CHAIN)
    assert result.success
    meta = {
        event.asset_key.to_user_string(): event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    assert meta["cv_accuracy"]["compute"].value == dask_cluster.scheduler_address
    assert meta["lgbm_model"]["trained_on"].value == dask_cluster.scheduler_address
    # The cluster's fold scores are those of a local run on the stored features.
    X, y = split_target(pd.read_parquet(storage / "features.parquet"))
    assert json.loads((storage / "cv_accuracy.json").read_text())["scores"] == cross_validate(X, y).scores
    booster = lgb.Booster(model_file=str(storage / "lgbm_model.txt"))
    assert accuracy_score(y, booster.predict(X) > 0.5) > 0.8


def test_cv_survives_a_worker_killed_mid_run(cluster, census):
    """Kill the process of a worker while it runs a fold: the scheduler reruns the lost task on
    the surviving (or restarted) worker and the scores do not change."""
    _, client = cluster
    X, y, _ = census
    protocol = CVProtocol()
    expected = cross_validate(X, y, protocol).scores
    pids = client.run(os.getpid)
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(result=cross_validate_on(client, X, y, protocol)))
    runner.start()

    def worker_running_a_fold():
        busy = [w for w, keys in client.processing().items() if any("score_fold" in str(k) for k in keys)]
        return busy[0] if busy and busy[0] in pids else None

    victim = wait_for(worker_running_a_fold, 60, what="a fold task started", interval=0.05)
    os.kill(pids[victim], signal.SIGKILL)
    assert runner.is_alive()  # the CV was still running when its worker died
    runner.join(timeout=120)
    assert "result" in outcome, "CV did not complete after the worker died"
    assert outcome["result"].scores == expected
    assert victim not in client.nthreads()  # that worker process is gone
