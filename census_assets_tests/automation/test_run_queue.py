"""The run queue holds from the first launch, and a run whose process dies is failed, alerted once
and leaves the queue moving (docs/operations.md, "One training at a time" and "A run whose process
dies").

In this process, on a fresh SQLite instance configured by the repo's dagster.yaml: runs of two
stand-in jobs (one asset in each census pool) are submitted through the instance's run coordinator
and the queue daemon's own dequeue pass (`QueuedRunCoordinatorDaemon._get_runs_to_dequeue`) is
asked what it would start: one training run and two scoring runs; with Dagster's plain
QueuedRunCoordinator, both training runs (the cause). Then: an operator's limit is kept, a limit
Dagster wrote from `default_limit` is replaced, and importing the code location writes nothing.

As an operator runs it (slow):
- `dagster dev` in a copy of the repo root's layout (its dagster.yaml and workspace.yaml) without
  DAGSTER_HOME, so on a temporary instance nobody configured; three of them side by side, each its
  own fresh instance. In each, two census_pipeline runs and three runs of a batch-scoring stand-in
  (ops_code_location.py, pool census_scoring, one more entry in the copied workspace.yaml) are
  launched through GraphQL at the same moment, on a 3,000-row CSV sample (one repeat of the CV,
  1,000 held-out rows: the queue is under test, not the model): the training runs must not overlap
  (the second starts after the first has ended), and the scoring runs run two at a time, never
  three.
- `dagster dev` on a persistent DAGSTER_HOME (docs/operations.md's recipe), two census_pipeline runs
  at once on the bundled table (judged on 1,000 held-out rows): the one that starts is killed with
  SIGKILL during cv_accuracy. It is marked FAILURE, census_run_failure_alert POSTs exactly one
  alert naming it (checked after a later tick of the sensor, the daemon never restarted), the run
  queued behind it then starts and succeeds, and every committed artifact loads, verified, from
  that run.
The two scenarios run side by side (operator_runs), each `dagster dev` on its own instance: the
killed run's story spends most of its time waiting for the alert sensor's ticks.

The PostgreSQL instance (deploy/dagster.yaml on a new database, no manual step) is in
test_ops_instance.py.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.run_coordinator import SubmitRunContext
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

from census_assets.assets.specs import POOL_LIMITS, SCORING_POOL, TRAINING_POOL
from census_assets.automation.run_coordinator import PoolLimitsRunCoordinator
from census_assets.definitions import build_definitions
from census_assets.settings import load_environment
from census_assets.sources.common import BUNDLED_HOLDOUT, bundled_file
from census_assets.storage.codecs import codec_for, is_stored_type
from census_assets.storage.commits import ArtifactKey, committed_manifest, load_committed
from census_assets.storage.objects import open_store
from census_assets.storage.registry import Registry
from census_assets_tests.harness.dagster import IN_PROCESS_RUN_CONFIG, REPO_DAGSTER_YAML, instance_settings_for_tests
from census_assets_tests.harness.graphql import LOCATION, DagsterGraphQL, GraphQLError, most_at_once
from census_assets_tests.harness.processes import (
    REPO_ROOT,
    ManagedProcess,
    console_command,
    free_port,
    inherited_environment,
    kill_all,
    wait_until_ready,
)
from census_assets_tests.harness.runner import ONE_CV_REPEAT_RUN_CONFIG
from census_assets_tests.harness.waiting import wait_for
from census_assets_tests.harness.webhook import Recorder

pytestmark = pytest.mark.ops

# ---- the queue daemon's first pass, in this process ------------------------------------------------


@dg.asset(pool=TRAINING_POOL)
def training_stand_in() -> None: ...


@dg.asset(pool=SCORING_POOL)
def scoring_stand_in() -> None: ...


OTHER_POOL = "not_a_census_pool"


@dg.asset(pool=OTHER_POOL)
def other_pool_stand_in() -> None: ...


STAND_INS = dg.Definitions(
    assets=[training_stand_in, scoring_stand_in, other_pool_stand_in],
    jobs=[
        dg.define_asset_job("training", [training_stand_in]),
        dg.define_asset_job("scoring", [scoring_stand_in]),
        dg.define_asset_job("other", [other_pool_stand_in]),
    ],
)
DAGSTER_OWN_COORDINATOR = (
    REPO_DAGSTER_YAML.read_text()
    .replace("module: census_assets.automation.run_coordinator", "module: dagster.core.run_coordinator")
    .replace("class: PoolLimitsRunCoordinator", "class: QueuedRunCoordinator")
)


def instance_from(folder: Path, dagster_yaml: str) -> dg.DagsterInstance:
    folder.mkdir()
    (folder / "dagster.yaml").write_text(dagster_yaml)
    return dg.DagsterInstance.from_config(str(folder))


def submit(instance: dg.DagsterInstance, job: str) -> dg.DagsterRun:
    """A run of a stand-in job, submitted to the instance's run coordinator as a launch from the UI
    submits it (the queue needs to know the run's code location)."""
    origin = RemoteJobOrigin(RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("stand_ins"), "__repository__"), job)
    run = instance.create_run_for_job(STAND_INS.resolve_job_def(job), remote_job_origin=origin)
    return instance.run_coordinator.submit_run(SubmitRunContext(run, workspace=None))


def first_pass(instance: dg.DagsterInstance) -> list[str]:
    """The jobs of the runs the queue daemon's next pass would start, sorted."""
    daemon = QueuedRunCoordinatorDaemon(interval_seconds=5)
    runs = daemon._get_runs_to_dequeue(instance, instance.get_concurrency_config(), fixed_iteration_time=None)
    return sorted(run.job_name for run in runs)


def pool_limits(instance: dg.DagsterInstance) -> dict[str, tuple[int, bool]]:
    """Pool -> (limit, whether Dagster wrote it from default_limit)."""
    return {limit.name: (limit.limit, limit.from_default) for limit in instance.event_log_storage.get_pool_limits()}


def submit_two_trainings_and_three_scorings(instance: dg.DagsterInstance) -> None:
    for job in ("training", "training", "scoring", "scoring", "scoring"):
        assert submit(instance, job).status == dg.DagsterRunStatus.QUEUED


@pytest.mark.slow  # kept out of the fast tier: seconds of a Dagster run or a subprocess
def test_first_pass_on_a_fresh_instance_starts_one_training_and_two_scoring_runs(tmp_path):
    with instance_from(tmp_path / "home", REPO_DAGSTER_YAML.read_text()) as instance:
        assert isinstance(instance.run_coordinator, PoolLimitsRunCoordinator)
        assert pool_limits(instance) == {}  # nobody configured this instance
        submit_two_trainings_and_three_scorings(instance)
        assert pool_limits(instance) == {pool: (limit, False) for pool, limit in POOL_LIMITS.items()}
        assert first_pass(instance) == ["scoring", "scoring", "training"]


@pytest.mark.slow  # kept out of the fast tier: seconds of a Dagster run or a subprocess
def test_without_the_coordinator_dagsters_first_pass_starts_both_training_runs(tmp_path):
    """Why the coordinator exists: Dagster 1.13's own first pass writes default_limit's rows only
    after reading which pools are limited, so nothing holds the runs back."""
    with instance_from(tmp_path / "home", DAGSTER_OWN_COORDINATOR) as instance:
        submit_two_trainings_and_three_scorings(instance)
        assert first_pass(instance) == ["scoring", "scoring", "training", "training"]
        # ...and the limits it leaves are default_limit's, 1 for scoring too.
        assert pool_limits(instance) == {TRAINING_POOL: (1, True), SCORING_POOL: (1, True)}


def test_any_other_pool_has_default_limit_from_the_first_launch(tmp_path):
    with instance_from(tmp_path / "home", REPO_DAGSTER_YAML.read_text()) as instance:
        submit(instance, "other")
        submit(instance, "other")
        assert pool_limits(instance)[OTHER_POOL] == (instance.global_op_concurrency_default_limit, True)
        assert first_pass(instance) == ["other"]


def test_an_operators_limit_stays_and_a_default_written_limit_is_replaced(tmp_path):
    with instance_from(tmp_path / "home", REPO_DAGSTER_YAML.read_text()) as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots(TRAINING_POOL, 3)  # `dagster instance concurrency set census_training 3`
        storage.initialize_concurrency_limit_to_default(SCORING_POOL)  # what Dagster's first pass writes
        assert pool_limits(instance)[SCORING_POOL] == (1, True)
        submit(instance, "scoring")
        assert pool_limits(instance) == {TRAINING_POOL: (3, False), SCORING_POOL: (POOL_LIMITS[SCORING_POOL], False)}


@pytest.mark.slow  # kept out of the fast tier: seconds of a Dagster run or a subprocess
def test_importing_the_code_location_writes_nothing_and_loads_no_model_library(tmp_path):
    """The coordinator is imported by every process that loads the instance; the code location's
    import must not touch the instance (the coordinator writes only when a run is submitted)."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO_DAGSTER_YAML, home / "dagster.yaml")
    script = (
        "import sys, dagster as dg, census_assets, census_assets.automation.run_coordinator\n"
        "assert isinstance(census_assets.defs, dg.Definitions)\n"  # the code location, as `-m census_assets` loads it
        "print(sorted(m for m in ('lightgbm', 'sklearn', 'matplotlib') if m in sys.modules))\n"
    )
    env = {**inherited_environment(), "DAGSTER_HOME": str(home)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"
    assert sorted(path.name for path in home.iterdir()) == ["dagster.yaml"]


def test_the_run_coordinator_loads_without_the_code_location_and_its_settings():
    """The webserver and the daemon import the coordinator (dagster.yaml) when they load the
    instance: the code location is not built there, so a malformed CENSUS_* variable fails the code
    location (with its name) and not the instance."""
    script = (
        "import sys, census_assets.automation.run_coordinator as coordinator\n"
        "print(coordinator.PoolLimitsRunCoordinator.__name__, 'census_assets.definitions' in sys.modules)\n"
    )
    env = {**inherited_environment(), "CENSUS_ACCURACY_THRESHOLD": "high"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["PoolLimitsRunCoordinator", "False"]
    loaded = subprocess.run(
        [sys.executable, "-c", "import census_assets; census_assets.defs"], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert loaded.returncode != 0 and "CENSUS_ACCURACY_THRESHOLD='high'" in loaded.stderr, loaded.stderr[-3000:]


# ---- `dagster dev` as an operator runs it -----------------------------------------------------------

SAMPLE_ROWS = 3_000
HOLDOUT_ROWS = 1_000  # what holdout_metrics judges on: its audit costs in proportion to the rows
TRIALS = 3
STAND_IN_LOCATION = "ops_pools"
STAND_IN_WORKSPACE_ENTRY = f"""  - python_file:
      relative_path: {REPO_ROOT / "census_assets_tests" / "harness" / "ops_code_location.py"}
      location_name: {STAND_IN_LOCATION}
"""
ALERT_SENSOR = "census_run_failure_alert"
RUN_PROCESS = re.compile(r"Started process for run \(pid: (\d+)\)")


class DagsterDev:
    """`dagster dev` in `root`, a folder holding the repo root's dagster.yaml (its run queue looking
    every TEST_DEQUEUE_INTERVAL_S) and workspace.yaml (and, with `scoring_stand_in`, the stand-in
    location in the workspace), as README says to run it: on a temporary instance, or with
    DAGSTER_HOME = `home` holding the same dagster.yaml."""

    def __init__(self, root: Path, env: dict, home: Path | None = None, scoring_stand_in: bool = False):
        root.mkdir(parents=True)
        instance_settings = instance_settings_for_tests(REPO_DAGSTER_YAML)
        (root / "dagster.yaml").write_text(instance_settings)
        workspace = (REPO_ROOT / "workspace.yaml").read_text()
        (root / "workspace.yaml").write_text(workspace + (STAND_IN_WORKSPACE_ENTRY if scoring_stand_in else ""))
        environment = {name: value for name, value in inherited_environment().items() if name != "DAGSTER_HOME"}
        if home is not None:
            home.mkdir()
            (home / "dagster.yaml").write_text(instance_settings)
            environment["DAGSTER_HOME"] = str(home)
        self.home = home
        self.locations = [LOCATION, *([STAND_IN_LOCATION] if scoring_stand_in else [])]
        port = free_port()
        self.process = ManagedProcess(
            f"dagster-dev-{root.name}",
            [*console_command("dagster", "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port)],
            root / "dagster-dev.log",
            env={**environment, **env},
            cwd=root,
        )
        self.ui = DagsterGraphQL(f"http://127.0.0.1:{port}", details=self.process.log_tail)

    def wait_until_loaded(self) -> None:
        def loaded() -> bool:
            statuses = self.ui.location_statuses()
            return all(statuses.get(location) == "LOADED" for location in self.locations)

        wait_until_ready([self.process], loaded, f"{self.process.name}: code locations loaded",
                         not_yet=(OSError, GraphQLError, KeyError))  # fmt: skip
        self.ui.raise_load_errors()


def launch_together(ui: DagsterGraphQL, launches: list) -> list[str]:
    """Each launch (a callable taking the GraphQL client) sent at the same moment, from its own
    thread, as several people or sensors would; the run ids in the order given."""
    with ThreadPoolExecutor(len(launches)) as pool:
        return list(pool.map(lambda launch: launch(ui), launches))


def census_pipeline(ui: DagsterGraphQL) -> str:
    return ui.launch_job("census_pipeline")


def census_pipeline_one_cv_repeat(ui: DagsterGraphQL) -> str:
    return ui.launch_job("census_pipeline", run_config=ONE_CV_REPEAT_RUN_CONFIG)


def scoring_stand_in_run(ui: DagsterGraphQL) -> str:
    return ui.launch_assets(["ops_batch_scores"], location=STAND_IN_LOCATION, run_config=IN_PROCESS_RUN_CONFIG)


def trial(dev: DagsterDev) -> dict:
    """Two census_pipeline runs and three scoring runs launched at once; their finished runs by kind,
    each with `dequeued` (its RunStartingEvent) and times relative to the launch; the instance's
    pool limits before the launch and after."""
    limits_before = dev.ui.pool_limits()
    launched_at = time.time()
    ids = launch_together(dev.ui, [census_pipeline_one_cv_repeat] * 2 + [scoring_stand_in_run] * 3)
    runs = dev.ui.wait_for_runs(ids)
    for run_id, run in runs.items():
        run["dequeued"] = dev.ui.event_times(run_id)["RunStartingEvent"]
        run["relative"] = tuple(round(run[t] - launched_at, 1) for t in ("dequeued", "startTime", "endTime"))
    return {
        "training": [runs[run_id] for run_id in ids[:2]],
        "scoring": [runs[run_id] for run_id in ids[2:]],
        "limits": (limits_before, dev.ui.pool_limits()),
    }


@pytest.fixture(scope="module")
def census_csv_sample(tmp_path_factory, bundled_raw) -> Path:
    path = tmp_path_factory.mktemp("census_source") / "census_sample.csv"
    bundled_raw.sample(SAMPLE_ROWS, random_state=0).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def small_holdout(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("census_holdout") / "census_holdout.parquet"
    pd.read_parquet(bundled_file(BUNDLED_HOLDOUT)).sample(HOLDOUT_ROWS, random_state=0).to_parquet(path, index=False)
    return path


def fresh_instance_trials(base: Path, census_csv_sample: Path, small_holdout: Path) -> list[dict]:
    """TRIALS `dagster dev`s without DAGSTER_HOME, each on its own temporary instance, run side by
    side (the same trial one after the other would take three times as long)."""
    devs = []
    for number in range(1, TRIALS + 1):
        env = {
            "CENSUS_SOURCE": str(census_csv_sample),
            "CENSUS_HOLDOUT": str(small_holdout),
            "CENSUS_STORAGE_URL": str(base / f"storage{number}"),
            # The queue is under test, not the model: a sample's accuracy must not decide it.
            "CENSUS_ACCURACY_THRESHOLD": "0.7",
            "OPS_TEST_SLEEP": "3",
        }
        devs.append(DagsterDev(base / f"repo{number}", env, scoring_stand_in=True))
    try:
        for dev in devs:
            dev.process.start()
        for dev in devs:
            dev.wait_until_loaded()
        with ThreadPoolExecutor(len(devs)) as pool:
            return list(pool.map(trial, devs))
    finally:
        kill_all([dev.process for dev in devs])  # the instances are thrown away with the test


@pytest.fixture(scope="module")
def operator_runs(tmp_path_factory, census_csv_sample, small_holdout) -> dict[str, Future]:
    """The fresh-instance trials and the killed training run, side by side: the killed run's story
    waits most of its time for the alert sensor's ticks, while the trials keep the cores busy. Each
    test takes its own scenario's result (`.result()`), so an error in one scenario fails only the
    tests of that scenario, with its own traceback."""
    with ThreadPoolExecutor(2) as pool:
        return {
            "trials": pool.submit(
                fresh_instance_trials, tmp_path_factory.mktemp("fresh_instances"), census_csv_sample, small_holdout
            ),
            "killed": pool.submit(killed_training_run, tmp_path_factory.mktemp("killed_run"), small_holdout),
        }


@pytest.mark.slow
@pytest.mark.parametrize("number", range(TRIALS))
def test_dagster_dev_on_a_temporary_instance_runs_one_training_at_a_time_from_the_first_launch(operator_runs, number):
    runs = operator_runs["trials"].result()[number]
    first, second = sorted(runs["training"], key=lambda run: run["startTime"])
    figures = {
        "training (dequeued, started, ended) s after launch": [first["relative"], second["relative"]],
        "training overlap s": round(first["endTime"] - second["startTime"], 1),
        "scoring": [run["relative"] for run in runs["scoring"]],
        "scoring runs at once": most_at_once(runs["scoring"]),
    }
    print(f"trial {number + 1}: {json.dumps(figures)}")
    assert runs["limits"] == ({}, POOL_LIMITS)  # none on the new instance; the first launch wrote them
    assert [run["status"] for run in (*runs["training"], *runs["scoring"])] == ["SUCCESS"] * 5, runs
    assert second["dequeued"] >= first["endTime"] and second["startTime"] >= first["endTime"], figures
    assert figures["scoring runs at once"] == POOL_LIMITS[SCORING_POOL], figures


def run_events(instance: dg.DagsterInstance, run_id: str, event_type: dg.DagsterEventType) -> list:
    return [record.event_log_entry for record in instance.get_records_for_run(run_id, of_type=event_type).records]


def steps(instance: dg.DagsterInstance, run_id: str, event_type: dg.DagsterEventType) -> set[str]:
    return {entry.step_key for entry in run_events(instance, run_id, event_type)}


def engine_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    entries = run_events(instance, run_id, dg.DagsterEventType.ENGINE_EVENT)
    return [entry.dagster_event.message or "" for entry in entries]


def run_process(instance: dg.DagsterInstance, run_id: str) -> int:
    """The pid of the run's process, from the engine event the code server writes when it starts it."""
    messages = engine_messages(instance, run_id)
    return next(int(found.group(1)) for message in messages if (found := RUN_PROCESS.search(message)))


def committed_runs_and_objects(storage: Path) -> dict[str, str]:
    """Asset -> the run whose commit its pointer names, for every stored asset of the code location
    that has a pointer; each object is loaded as a run would read it, every file checked against
    its manifest (a torn or mixed commit raises)."""
    store = open_store(str(storage))
    graph = build_definitions(load_environment({"CENSUS_STORAGE_URL": str(storage)})).resolve_asset_graph()
    committed = {}
    for assets_def in graph.assets_defs:
        for key in assets_def.keys if assets_def.is_executable and not assets_def.partitions_def else ():
            output = assets_def.op.output_def_named(assets_def.get_output_name_for_asset_key(key))
            artifact = ArtifactKey(key.to_user_string())
            if is_stored_type(output.dagster_type.typing_type) and store.exists(artifact.pointer):
                load_committed(store, artifact, codec_for(output.dagster_type.typing_type))
                committed[artifact.asset] = committed_manifest(store, artifact)["run_id"]
    return committed


def killed_training_run(base: Path, small_holdout: Path) -> dict:
    """`dagster dev` on a persistent DAGSTER_HOME, two census_pipeline runs launched at once, the one
    that starts killed with SIGKILL during cv_accuracy; what followed, for the test to judge."""
    hook = Recorder()
    storage = base / "storage"
    # The bundled table: its cross-validation lasts long enough to be killed in the middle of it.
    env = {
        "CENSUS_STORAGE_URL": str(storage),
        "CENSUS_HOLDOUT": str(small_holdout),
        "CENSUS_ALERT_WEBHOOK_URL": hook.url,
        # The alert sensor ticks as often as the daemon allows: the test waits for its ticks.
        "CENSUS_ALERT_INTERVAL_SECONDS": "1",
    }
    dev = DagsterDev(base / "repo", env, home=base / "repo" / ".dagster_home")
    instance = None
    try:
        dev.process.start()
        dev.wait_until_loaded()
        # A run-status sensor's first tick only records where the event log stands: wait for it,
        # so that the sensor watches from before the kill.
        wait_for(lambda: dev.ui.sensor_state(ALERT_SENSOR).get("lastCursor"), 120, what="the alert sensor's first tick")
        instance = dg.DagsterInstance.from_config(str(dev.home))
        run_ids = launch_together(dev.ui, [census_pipeline] * 2)

        def in_cross_validation() -> str | None:
            started = {run_id: steps(instance, run_id, dg.DagsterEventType.STEP_START) for run_id in run_ids}
            return next((run_id for run_id, keys in started.items() if "cv_accuracy" in keys), None)

        killed = wait_for(in_cross_validation, 180, what="a run in cv_accuracy", interval=0.1)
        [queued] = [run_id for run_id in run_ids if run_id != killed]
        pid = run_process(instance, killed)
        if os.getpgid(pid) != dev.process.process.pid:  # a process of this dagster dev, not anyone's
            raise RuntimeError(f"pid {pid} of run {killed} is not in the process group of {dev.process.name}")
        os.kill(pid, signal.SIGKILL)
        killed_at = time.time()
        queued_status_at_the_kill = instance.get_run_by_id(queued).status

        # The run's status follows its RUN_FAILURE event (written to the event log first).
        wait_for(lambda: instance.get_run_by_id(killed).is_finished, 60, what="the killed run finished")
        second = dev.ui.wait_for_run(queued)

        def alerts_naming_the_killed_run():
            return [alert for alert in hook.alerts if alert.get("run_id") == killed]

        wait_for(alerts_naming_the_killed_run, 120, what="the alert of the killed run")
        alerted_at = time.time()
        # One more tick of the sensor after the alert: it must not send it again.
        wait_for(lambda: (dev.ui.sensor_state(ALERT_SENSOR).get("lastTickTimestamp") or 0) > alerted_at, 120,
                 what="a tick of the alert sensor after the alert")  # fmt: skip
        pointer, model = Registry(open_store(str(storage))).load_production()
        return {
            "killed": killed,
            "queued": queued,
            "queued status at the kill": queued_status_at_the_kill,
            "killed at": killed_at,
            "killed status": instance.get_run_by_id(killed).status,
            "killed end": instance.get_run_record_by_id(killed).end_time,
            "killed run failures": run_events(instance, killed, dg.DagsterEventType.RUN_FAILURE),
            "killed run steps succeeded": steps(instance, killed, dg.DagsterEventType.STEP_SUCCESS),
            "killed run engine messages": engine_messages(instance, killed),
            "queued run": second,
            "queued run dequeued": dev.ui.event_times(queued)["RunStartingEvent"],
            "run failure alerts": [alert for alert in hook.alerts if alert.get("kind") == "run_failure"],
            "alerted at": alerted_at,
            "committed": committed_runs_and_objects(storage),  # raises on a torn or mixed commit
            "production run": pointer["run_id"],
            "production trees": model.booster.num_trees(),
        }
    finally:
        if instance is not None:
            instance.dispose()
        kill_all([dev.process])
        hook.close()


@pytest.mark.slow
def test_a_killed_training_run_fails_is_alerted_once_and_the_queued_one_succeeds(operator_runs):
    seen = operator_runs["killed"].result()
    killed, queued = seen["killed"], seen["queued"]
    assert seen["queued status at the kill"] == dg.DagsterRunStatus.QUEUED  # behind the killed run
    assert seen["killed status"] == dg.DagsterRunStatus.FAILURE
    [failure] = seen["killed run failures"]
    assert "cv_accuracy" not in seen["killed run steps succeeded"]  # killed inside it
    assert any("terminated by signal 9 (SIGKILL)" in message for message in seen["killed run engine messages"])

    assert seen["queued run"]["status"] == "SUCCESS", seen["queued run"]
    assert seen["queued run dequeued"] >= seen["killed end"]  # the queue let it go only once the killed run had failed

    [alert] = seen["run failure alerts"]  # one alert, and no other after a later tick of the sensor
    assert alert["run_id"] == killed and killed in alert["summary"]

    committed = seen["committed"]
    assert {"raw_census", "cv_accuracy", "lgbm_model"} <= committed.keys()
    assert set(committed.values()) == {queued}, committed  # the killed run's commits replaced, nothing torn
    assert seen["production run"] == queued and seen["production trees"] > 0
    figures = {
        "FAILURE s after SIGKILL": round(failure.timestamp - seen["killed at"], 2),
        "queued run dequeued s after the failure": round(seen["queued run dequeued"] - seen["killed end"], 1),
        "alert received s after SIGKILL": round(seen["alerted at"] - seen["killed at"], 1),
    }
    print(json.dumps(figures))
