"""The IO manager alone (census_assets.io_manager.CensusIOManager) with toy assets: what a
materialisation commits, where each input is read from (this run, the run it re-executes, the
pointer), partitioned loads, and the failures it reports once."""

import errno
import json
import os
import shutil
import threading
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from census_assets import cli as census_cli
from census_assets.io_manager import PUBLISHED_AS, CensusIOManager
from census_assets.resources.storage import ArtifactStorage
from census_assets.storage.codecs import codec_for
from census_assets.storage.commits import (
    ArtifactKey,
    commit,
    committed_manifest,
    load_committed,
    load_published,
    prune,
)
from census_assets.storage.leases import LEASE_HOLDER, LEASE_SECONDS, read_lease
from census_assets.storage.objects import FAULTS, LocalObjectStore

FRAME, JSON = codec_for(pd.DataFrame), codec_for(dict)
STORAGE_VARIABLE = "TOY_STORAGE_URL"  # where the reconstructable toy job's IO manager stores


class Start(dg.Config):
    start: int = 1


@dg.asset
def numbers(config: Start) -> pd.DataFrame:
    return pd.DataFrame({"n": [config.start, config.start + 1, config.start + 2]})


@dg.asset(retry_policy=dg.RetryPolicy(max_retries=2))  # a failure that may not be retried shows here
def total(numbers: pd.DataFrame) -> dict:
    return {"total": int(numbers["n"].sum())}


@dg.asset
def report(numbers: pd.DataFrame, total: dict) -> dict:
    return {"first": int(numbers["n"].iloc[0]), **total}


DAYS = dg.StaticPartitionsDefinition(["mon", "tue", "wed"])
DAY_VALUES = {"mon": 1, "tue": 2, "wed": 3}


@dg.asset(partitions_def=DAYS, metadata={PUBLISHED_AS: "days"})
def daily(context: dg.AssetExecutionContext) -> pd.DataFrame:
    return pd.DataFrame({"day": [context.partition_key], "n": [DAY_VALUES[context.partition_key]]})


@dg.asset(partitions_def=DAYS)
def daily_doubled(daily: pd.DataFrame) -> pd.DataFrame:
    return daily.assign(n=daily["n"] * 2)


@dg.asset(retry_policy=dg.RetryPolicy(max_retries=2))
def week(daily: dict[str, pd.DataFrame]) -> dict:
    return {day: int(frame["n"].iloc[0]) for day, frame in daily.items()}


def resources(storage) -> dict:
    return {"io_manager": CensusIOManager(storage=ArtifactStorage(url=str(storage)))}


def start_at(value: int) -> dict:
    return {"ops": {"numbers": {"config": {"start": value}}}}


def materialization(result, asset: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def failures(result) -> dict[str, dg.DagsterEvent]:
    return {event.step_key: event for event in result.all_events if event.is_step_failure}


def restarts(result) -> list[str]:
    return [event.step_key for event in result.all_events if event.event_type_value == "STEP_RESTARTED"]


def test_an_output_is_committed_under_its_run_pointed_to_and_published(tmp_path):
    result = dg.materialize([numbers, total], resources=resources(tmp_path), run_config=start_at(1))
    assert result.success
    run, store = result.run_id, LocalObjectStore(tmp_path)
    expected = pd.DataFrame({"n": [1, 2, 3]})
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "runs" / run / "numbers.parquet"), expected)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "numbers.parquet"), expected)  # published
    assert committed_manifest(store, ArtifactKey("numbers"))["run_id"] == run
    assert load_committed(store, ArtifactKey("total"), JSON) == {"total": 6}  # read numbers from this run
    assert load_published(store, ArtifactKey("total"), JSON) == {"total": 6}
    size = (tmp_path / "numbers.parquet").stat().st_size
    assert materialization(result, "numbers") == {
        "path": f"{tmp_path}/numbers.parquet",
        "run_path": f"{tmp_path}/runs/{run}/numbers.parquet",
        "size_bytes": size,
        "files": {".parquet": size},
        "published": True,
    }
    # The run's lease lists what it committed. When the run's resources were torn down, this
    # process stopped renewing it, but did not end it: it runs out on its own.
    lease = read_lease(store, run)
    assert lease.committed == ("numbers", "total") and lease.is_live(time.time())
    assert run not in LEASE_HOLDER.held()


def test_an_input_the_run_did_not_produce_is_read_from_the_pointer(tmp_path):
    for start in (1, 10):
        dg.materialize([numbers], resources=resources(tmp_path), run_config=start_at(start))
    result = dg.materialize([numbers, total], selection=[total], resources=resources(tmp_path))
    assert result.output_for_node("total") == {"total": 10 + 11 + 12}


def test_an_input_the_run_produced_is_its_own_even_when_another_commit_is_newer(tmp_path):
    """Another run commits numbers between this run's numbers and total: total reads this run's."""
    store = LocalObjectStore(tmp_path)
    other = {"done": False}

    def another_run_commits(point, name, temporary):
        if point == "committed" and name == "numbers.manifest.json" and not other["done"]:
            other["done"] = True
            commit(store, ArtifactKey("numbers"), "another-run", FRAME.encode(pd.DataFrame({"n": [100, 101, 102]})))

    with FAULTS.installed(another_run_commits):
        result = dg.materialize([numbers, total], resources=resources(tmp_path), run_config=start_at(1))
    assert other["done"] and committed_manifest(store, ArtifactKey("numbers"))["run_id"] == "another-run"
    assert result.output_for_node("total") == {"total": 6}


def toy_job() -> dg.JobDefinition:
    """numbers -> total -> report, stored where TOY_STORAGE_URL says (re-execution rebuilds the
    job from this function, in this process)."""
    storage = ArtifactStorage(url=dg.EnvVar(STORAGE_VARIABLE))
    definitions = dg.Definitions(
        assets=[numbers, total, report],
        jobs=[dg.define_asset_job("toy", executor_def=dg.in_process_executor)],
        resources={"io_manager": CensusIOManager(storage=storage)},
    )
    return definitions.resolve_job_def("toy")


@pytest.mark.slow  # kept out of the fast tier: seconds of a Dagster run or a subprocess
def test_a_reexecution_reads_the_parent_runs_outputs_not_newer_commits(tmp_path, monkeypatch):
    """Run 1 (numbers from 1), run 2 (numbers from 10: the pointer now), then a re-execution of
    run 1's total, and a re-execution of that re-execution's report: each step reads what its
    lineage (the run, its parent, its parent's parent) produced, never run 2's numbers."""
    monkeypatch.setenv(STORAGE_VARIABLE, str(tmp_path / "storage"))
    store, job = LocalObjectStore(tmp_path / "storage"), dg.reconstructable(toy_job)
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:

        def execute(start: int, parent: str | None = None, step: str | None = None) -> str:
            options = dg.ReexecutionOptions(parent_run_id=parent, step_selection=[step]) if parent else None
            with dg.execute_job(job, instance, run_config=start_at(start), reexecution_options=options) as done:
                assert done.success, [e.message for e in done.all_events if e.is_failure]
                return done.run_id

        first = execute(1)
        execute(10)
        assert load_committed(store, ArtifactKey("numbers"), FRAME)["n"].tolist() == [10, 11, 12]
        again = execute(1, parent=first, step="total")
        assert instance.get_run_by_id(again).parent_run_id == first
        assert load_committed(store, ArtifactKey("total"), JSON, (again,)) == {"total": 6}
        assert run_files(store, again) == [f"runs/{again}/total.json", f"runs/{again}/total.manifest.json"]
        grandchild = execute(1, parent=again, step="report")
        assert load_committed(store, ArtifactKey("report"), JSON, (grandchild,)) == {"first": 1, "total": 6}


@pytest.mark.slow
@pytest.mark.integrity
def test_a_reexecution_holds_the_lease_of_the_run_it_reads_from(tmp_path, monkeypatch):
    """Run 1's lease ran out long ago and run 2 superseded its numbers; a re-execution of run 1's
    total reads run 1's numbers. While it works, prune --keep 1 must leave run 1's numbers: the
    re-execution holds run 1's lease (prune runs here just after total's file is written)."""
    monkeypatch.setenv(STORAGE_VARIABLE, str(tmp_path / "storage"))
    store, job = LocalObjectStore(tmp_path / "storage"), dg.reconstructable(toy_job)
    (tmp_path / "home").mkdir()
    pruned = []

    def prune_during_the_reexecution(point, name, temporary):
        if point == "committed" and name.endswith("/total.json") and not pruned:
            pruned.append(prune(store, keep=1, grace_seconds=0))

    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        with dg.execute_job(job, instance, run_config=start_at(1)) as done:
            first = done.run_id
        with dg.execute_job(job, instance, run_config=start_at(10)) as done:
            assert done.success
        for record in (tmp_path / "storage" / "leases" / first).iterdir():  # as if run 1 ended long ago
            record.write_text(json.dumps({**json.loads(record.read_text()), "expires": time.time() - 1}))
        options = dg.ReexecutionOptions(parent_run_id=first, step_selection=["total"])
        with FAULTS.installed(prune_during_the_reexecution), dg.execute_job(
            job, instance, run_config=start_at(1), reexecution_options=options
        ) as done:
            assert done.success, [event.message for event in done.all_events if event.is_failure]
            again = done.run_id
    [deleted] = pruned
    assert not [name for name in deleted if name.startswith(f"runs/{first}/")], deleted
    assert load_committed(store, ArtifactKey("total"), JSON, (again,)) == {"total": 6}
    assert read_lease(store, first).is_live(time.time())


class Gate(dg.Config):
    folder: str


@dg.asset(deps=[numbers])
def gate(config: Gate) -> dg.MaterializeResult:
    """Stands between numbers and counted, reading and writing nothing through the IO manager:
    writes `<folder>/paused`, then waits for `<folder>/resume`, so the test acts between steps."""
    folder = Path(config.folder)
    (folder / "paused").touch()
    deadline = time.monotonic() + 120
    while not (folder / "resume").exists():
        assert time.monotonic() < deadline, "never resumed"
        time.sleep(0.05)
    return dg.MaterializeResult()


@dg.asset(deps=[gate])
def counted(numbers: pd.DataFrame) -> dict:
    return {"total": int(numbers["n"].sum())}


def gated_job() -> dg.JobDefinition:
    """numbers -> gate -> counted, one process per step (the multiprocess executor), stored where
    TOY_STORAGE_URL says."""
    definitions = dg.Definitions(
        assets=[numbers, gate, counted],
        jobs=[dg.define_asset_job("gated", executor_def=dg.multiprocess_executor)],
        resources={"io_manager": CensusIOManager(storage=ArtifactStorage(url=dg.EnvVar(STORAGE_VARIABLE)))},
    )
    return definitions.resolve_job_def("gated")


@pytest.mark.slow
@pytest.mark.integrity
def test_prune_between_two_steps_of_a_multiprocess_run_leaves_the_run_its_commits(tmp_path, monkeypatch):
    """16.1 under the multiprocess executor: the numbers step's process has ended when another
    run commits numbers and `census-assets prune --keep 1` runs (the run stands still at gate).
    The run's lease outlives the step's process, so prune deletes nothing of the run's, and
    counted, in a process of its own, reads the run's own numbers (it refused when each step's
    end released the lease and prune deleted them)."""
    storage = tmp_path / "storage"
    monkeypatch.setenv(STORAGE_VARIABLE, str(storage))
    store = LocalObjectStore(storage)
    (tmp_path / "home").mkdir()
    config = {"ops": {**start_at(1)["ops"], "gate": {"config": {"folder": str(tmp_path)}}}}
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        outcome = {}

        def execute() -> None:
            with dg.execute_job(dg.reconstructable(gated_job), instance, run_config=config) as done:
                outcome["success"], outcome["run_id"] = done.success, done.run_id
                outcome["failures"] = [event.message for event in done.all_events if event.is_failure]

        runner = threading.Thread(target=execute)
        runner.start()
        try:
            deadline = time.monotonic() + 120
            while not (tmp_path / "paused").exists():
                assert runner.is_alive() and time.monotonic() < deadline, "the run never reached gate"
                time.sleep(0.05)
            [run] = [path.name for path in (storage / "runs").iterdir()]
            own = run_files(store, run)
            assert own == [f"runs/{run}/numbers.manifest.json", f"runs/{run}/numbers.parquet"]
            assert run not in LEASE_HOLDER.held()  # its steps ran in other processes, now ended
            assert read_lease(store, run).is_live(time.time())
            commit(store, ArtifactKey("numbers"), "another-run", FRAME.encode(pd.DataFrame({"n": [100, 101, 102]})))
            assert census_cli.main(["prune", "--keep", "1", "--grace-hours", "0", "--storage", str(storage)]) == 0
            assert run_files(store, run) == own
        finally:
            (tmp_path / "resume").touch()
            runner.join(timeout=180)
    assert not runner.is_alive() and outcome["success"], outcome.get("failures")
    assert outcome["run_id"] == run
    assert load_committed(store, ArtifactKey("counted"), JSON, (run,)) == {"total": 6}
    assert committed_manifest(store, ArtifactKey("numbers"))["run_id"] == "another-run"
    assert read_lease(store, run).committed == ("counted", "numbers")
    # One record per process that read or wrote for the run (numbers', counted's): none shared.
    assert len(list((storage / "leases" / run).iterdir())) == 2


@dg.asset
def looked_at(numbers: pd.DataFrame) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": len(numbers)})


@pytest.mark.integrity
def test_a_step_that_only_reads_holds_the_run_s_lease(tmp_path):
    """A step that reads and writes nothing through the IO manager (a long CV, a check) keeps the
    run at work in prune's eyes: it takes the lease before it reads."""
    dg.materialize([numbers], resources=resources(tmp_path))
    before = time.time()
    result = dg.materialize([numbers, looked_at], selection=[looked_at], resources=resources(tmp_path))
    lease = read_lease(LocalObjectStore(tmp_path), result.run_id)
    assert lease.committed == () and lease.expires >= before + LEASE_SECONDS


def run_files(store: LocalObjectStore, run_id: str) -> list[str]:
    return sorted(info.name for info in store.list(f"runs/{run_id}"))


@pytest.fixture
def days(tmp_path) -> dg.DagsterInstance:
    """daily materialised for every partition, one run each, on one instance."""
    instance = dg.DagsterInstance.ephemeral()
    for day in DAY_VALUES:
        assert dg.materialize([daily], partition_key=day, resources=resources(tmp_path), instance=instance).success
    return instance


def test_each_partition_is_committed_and_published_on_its_own(tmp_path, days):
    store = LocalObjectStore(tmp_path)
    for day, value in DAY_VALUES.items():
        key = ArtifactKey("daily", day, published_as="days")
        assert key.pointer == f"pointers/daily/{day}.json"
        expected = pd.DataFrame({"day": [day], "n": [value]})
        pd.testing.assert_frame_equal(load_committed(store, key, FRAME), expected)
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "days" / f"{day}.parquet"), expected)
        pd.testing.assert_frame_equal(load_published(store, key, FRAME), expected)


def test_a_partitioned_downstream_reads_its_own_partition(tmp_path, days):
    result = dg.materialize([daily, daily_doubled], selection=[daily_doubled], partition_key="tue",
                            resources=resources(tmp_path), instance=days)
    assert result.output_for_node("daily_doubled")["n"].tolist() == [4]


def test_a_downstream_reads_several_partitions_as_a_dict(tmp_path, days):
    result = dg.materialize([daily, week], selection=[week], resources=resources(tmp_path), instance=days)
    assert result.success, failures(result)
    assert result.output_for_node("week") == DAY_VALUES


@dg.asset
def week_as_one_frame(daily: pd.DataFrame) -> dict:
    return {}


def test_an_input_of_several_partitions_must_say_it_is_a_dict(tmp_path, days):
    result = dg.materialize([daily, week_as_one_frame], selection=[week_as_one_frame], resources=resources(tmp_path),
                            instance=days, raise_on_error=False)
    error = failures(result)["week_as_one_frame"].step_failure_data.error
    assert "input daily reads 3 partitions: annotate it dict[str, DataFrame] (partition key -> value)" in str(error)


@pytest.mark.integrity
def test_a_missing_partition_fails_the_step_once_naming_it(tmp_path, days):
    """16.11: a missing committed file does not come back by waiting: no retries."""
    (tmp_path / "pointers" / "daily" / "wed.json").unlink()
    result = dg.materialize([daily, week], selection=[week], resources=resources(tmp_path), instance=days,
                            raise_on_error=False)
    assert list(failures(result)) == ["week"] and restarts(result) == []
    failure = failures(result)["week"].step_failure_data.user_failure_data
    assert failure.description == f"no committed daily/wed in {tmp_path}: materialise it first"


@pytest.mark.integrity
def test_a_deleted_run_file_fails_the_step_once_naming_it(tmp_path):
    """16.11: the pointer names a run file that is gone: the reading step fails once."""
    first = dg.materialize([numbers], resources=resources(tmp_path))
    missing = tmp_path / "runs" / first.run_id / "numbers.parquet"
    missing.unlink()
    result = dg.materialize([numbers, total], selection=[total], resources=resources(tmp_path), raise_on_error=False)
    assert list(failures(result)) == ["total"] and restarts(result) == []
    assert failures(result)["total"].step_failure_data.user_failure_data.description == (
        f"cannot read {missing}: it does not exist"
    )


@pytest.mark.integrity
def test_a_run_whose_own_output_is_gone_refuses_to_read_another_runs(tmp_path):
    """16.1: while the run is between numbers and total, its numbers files are deleted (a prune
    that could not see it) and another run commits numbers: total refuses, once, instead of
    reading the other run's numbers."""
    store = LocalObjectStore(tmp_path)
    done = {}

    def prune_and_commit_another(point, name, temporary):
        if point == "committed" and name == "numbers.manifest.json" and not done:
            done["run"] = committed_manifest(store, ArtifactKey("numbers"))["run_id"]
            shutil.rmtree(tmp_path / "runs" / done["run"])
            commit(store, ArtifactKey("numbers"), "another-run", FRAME.encode(pd.DataFrame({"n": [100, 101, 102]})))

    with FAULTS.installed(prune_and_commit_another):
        result = dg.materialize([numbers, total], resources=resources(tmp_path), raise_on_error=False)
    assert list(failures(result)) == ["total"] and restarts(result) == []
    description = failures(result)["total"].step_failure_data.user_failure_data.description
    assert description.startswith(f"run {done['run']} committed numbers, but its files under {tmp_path}/runs/")
    assert "refusing to read another run's commit" in description


@pytest.mark.integrity
def test_a_failed_publication_leaves_the_step_succeeded_and_the_commit_in_force(tmp_path):
    """16.3: writing the published copy fails (no space) after the commit: the step succeeds,
    says so in its metadata and a warning; Dagster's materialisation, the pointer and the
    downstream step agree on the new value; the published copy is the previous one, whole."""
    dg.materialize([numbers], resources=resources(tmp_path), run_config=start_at(1))

    def full_disk(point, name, temporary):
        if point == "committing" and name == "numbers.parquet":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    instance = dg.DagsterInstance.ephemeral()
    with FAULTS.installed(full_disk):
        result = dg.materialize([numbers, total], resources=resources(tmp_path), run_config=start_at(10),
                                instance=instance)
    assert result.success
    metadata = materialization(result, "numbers")
    error = f"[Errno {errno.ENOSPC}] cannot write {tmp_path}/numbers.parquet: no space left on the device"
    assert metadata["published"] is False and metadata["publication_error"] == error
    warnings = [entry.user_message for entry in instance.all_logs(result.run_id) if entry.level == 30]
    assert f"committed, but the published copies were not refreshed: {error}" in warnings
    store = LocalObjectStore(tmp_path)
    assert committed_manifest(store, ArtifactKey("numbers"))["run_id"] == result.run_id
    assert instance.get_latest_materialization_event(dg.AssetKey("numbers")).run_id == result.run_id
    assert result.output_for_node("total") == {"total": 33}
    assert load_published(store, ArtifactKey("numbers"), FRAME)["n"].tolist() == [1, 2, 3]
