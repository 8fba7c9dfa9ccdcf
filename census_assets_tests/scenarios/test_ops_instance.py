"""Running it like production: PostgreSQL instance, run queue with pools, restarts, the dg CLI.

One PostgreSQL server (session) and one deployment (module) serve the tests here: code servers
for `census_assets` and a tiny batch-scoring location (ops_code_location.py), dagster-webserver and
dagster-daemon on a DAGSTER_HOME holding the repo's dagster.yaml with the storage section of
deploy/dagster.yaml (PostgreSQL, from DAGSTER_PG_*), on a new database where nobody set a pool
limit. The census source is a 3,000-row sample of the bundled table, cross-validated with one
repeat, so a training run takes seconds.

Two training runs are launched through GraphQL at once, the way the UI's "Materialize all" does
(the implicit asset job, an asset selection, no job tag): the run queue must start the second only
after the first has ended (pool `census_training`, limit 1, run granularity), and both succeed.
Three batch-scoring runs sent at the same moment run two at a time, alongside training (pool
`census_scoring`, limit 2). The limits are the ones the run coordinator wrote when the first run
was submitted. Then: the events are in PostgreSQL, the history survives a restart of webserver
and daemon, and GraphQL reads it. Run alone with `python -m pytest -m ops`.
"""

import json
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from census_assets.assets.specs import POOL_LIMITS, SCORING_POOL
from census_assets.automation.run_coordinator import PoolLimitsRunCoordinator
from census_assets_tests.harness.dagster import IN_PROCESS_RUN_CONFIG, REPO_DAGSTER_YAML, WEBSERVER_ONLY_YAML
from census_assets_tests.harness.graphql import most_at_once
from census_assets_tests.harness.processes import REPO_ROOT, console_command, inherited_environment
from census_assets_tests.harness.runner import ONE_CV_REPEAT_RUN_CONFIG

pytestmark = pytest.mark.ops

DEPLOY_DAGSTER_YAML = REPO_ROOT / "deploy" / "dagster.yaml"
SAMPLE_ROWS = 3_000

TRAINING_CHAIN = ["raw_census", "clean_census", "features", "cv_accuracy", "lgbm_model"]
GATE = "cv_accuracy_meets_threshold"
# The scoring pool is exercised by a stand-in, a tiny second code location in the same deployment
# with an asset in that pool (pools are instance-wide).
POOLS_CODE = REPO_ROOT / "census_assets_tests" / "harness" / "ops_code_location.py"
POOLS_LOCATION = "ops_pools"
PG_ENV = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def repo_yaml_with_postgres(destination: Path) -> Path:
    """The repo's dagster.yaml as it is, plus deploy/dagster.yaml's `storage:` (PostgreSQL)."""
    storage = yaml.safe_dump({"storage": load_yaml(DEPLOY_DAGSTER_YAML)["storage"]}, sort_keys=False)
    destination.write_text(
        REPO_DAGSTER_YAML.read_text() + "\n# The test PostgreSQL, as in deploy/dagster.yaml.\n" + storage
    )
    return destination


# The instance files


def test_production_instance_is_the_repo_instance_on_postgres_with_the_password_from_the_environment():
    repo, deploy = load_yaml(REPO_DAGSTER_YAML), load_yaml(DEPLOY_DAGSTER_YAML)
    assert {key: value for key, value in deploy.items() if key != "storage"} == repo
    database = deploy["storage"]["postgres"]["postgres_db"]
    assert database["scheme"] == "postgresql+psycopg2"
    fields = {"hostname": "DAGSTER_PG_HOST", "port": "DAGSTER_PG_PORT", "username": "DAGSTER_PG_USER",
              "password": "DAGSTER_PG_PASSWORD", "db_name": "DAGSTER_PG_DB"}  # fmt: skip
    assert {field: database[field] for field in fields} == {field: {"env": var} for field, var in fields.items()}


def test_repo_instance_queues_every_run_with_run_granularity_pools_and_monitors_runs(tmp_path):
    from dagster import DagsterInstance
    from dagster._core.instance.config import PoolGranularity

    (tmp_path / "dagster.yaml").write_text(REPO_DAGSTER_YAML.read_text())
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.run_coordinator, PoolLimitsRunCoordinator)  # a QueuedRunCoordinator
        config = instance.get_concurrency_config()
        assert config.pool_config.pool_granularity == PoolGranularity.RUN
        assert config.pool_config.default_pool_limit == 1
        assert config.run_queue_config.should_block_op_concurrency_limited_runs
        assert config.run_queue_config.max_concurrent_runs >= sum(POOL_LIMITS.values())
        # Run monitoring: runs that never start, and runs nobody reports dead, end some day.
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds > 0 and instance.run_monitoring_max_runtime_seconds > 0


def test_webserver_only_instance_starts_runs_without_a_daemon(tmp_path):
    from dagster import DagsterInstance
    from dagster._core.run_coordinator import DefaultRunCoordinator

    (tmp_path / "dagster.yaml").write_text(WEBSERVER_ONLY_YAML.read_text())
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.run_coordinator, DefaultRunCoordinator)


# The dg CLI


def dg(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*console_command("dg", "dagster_dg_cli.cli"), *args],
        cwd=REPO_ROOT,  # dg reads [tool.dg] from pyproject.toml here
        env={**inherited_environment(), "DAGSTER_HOME": str(home)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def dg_results(tmp_path_factory) -> dict[str, Future]:
    """`dg check defs` and `dg list defs --json`, side by side (each loads the code location in
    processes of its own), each on a DAGSTER_HOME of its own holding the repo's dagster.yaml."""
    commands = {"check": ("check", "defs"), "list": ("list", "defs", "--json")}
    homes = {name: tmp_path_factory.mktemp(f"dg_{name}_home") for name in commands}
    for home in homes.values():
        (home / "dagster.yaml").write_text(REPO_DAGSTER_YAML.read_text())
    with ThreadPoolExecutor(len(commands)) as pool:
        return {name: pool.submit(dg, *args, home=homes[name]) for name, args in commands.items()}


def test_dg_check_defs(dg_results):
    result = dg_results["check"].result()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout


def test_dg_list_defs(dg_results):
    result = dg_results["list"].result()
    assert result.returncode == 0, result.stdout + result.stderr
    listed = json.loads(result.stdout)
    assert set(TRAINING_CHAIN) <= {asset["asset_key"] for asset in listed["assets"]}
    assert GATE in {check["name"] for check in listed["asset_checks"]}
    assert "census_pipeline" in {job["name"] for job in listed["jobs"]}
    assert "weekly_retrain" in {schedule["name"] for schedule in listed["schedules"]}
    assert {"census_source_changed", "census_automation", "census_run_failure_alert"} <= {
        sensor["name"] for sensor in listed["sensors"]
    }


# deploy/dagster.yaml as it is, loaded by the CLI


def test_cli_materialize_records_in_postgres_with_the_production_instance_file(
    tmp_path, postgres_server, census_sample
):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DEPLOY_DAGSTER_YAML.read_text())  # verbatim
    database = postgres_server.create_database("census_cli")
    env = {
        **inherited_environment(),
        **database,
        "DAGSTER_HOME": str(home),
        "CENSUS_SOURCE": str(census_sample),
        "CENSUS_STORAGE_URL": str(tmp_path / "storage"),
    }
    command = [*console_command("dagster", "dagster"), "asset", "materialize", "-m", "census_assets"]
    result = subprocess.run(
        [*command, "--select", "raw_census"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    db = database["DAGSTER_PG_DB"]
    assert [status for (status,) in postgres_server.query(db, "SELECT status FROM runs")] == ["SUCCESS"]
    materialized = postgres_server.query(
        db, "SELECT asset_key FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
    )
    assert [json.loads(key) for (key,) in materialized] == [["raw_census"]]


# The deployment: PostgreSQL, code server, webserver, daemon


@pytest.fixture(scope="module")
def census_sample(tmp_path_factory, bundled_raw) -> Path:
    path = tmp_path_factory.mktemp("census_source") / "census_sample.parquet"
    bundled_raw.sample(SAMPLE_ROWS, random_state=0).to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def pg_database(postgres_server) -> dict:
    return {"server": postgres_server, "env": postgres_server.create_database("census_ops")}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, census_sample, pg_database, start_dagster):
    base = tmp_path_factory.mktemp("ops_deployment")
    instance_yaml = repo_yaml_with_postgres(base / "instance.yaml")
    env = {
        **pg_database["env"],
        "CENSUS_SOURCE": str(census_sample),
        "CENSUS_STORAGE_URL": str(base / "storage"),
        # This module tests the run queue, not the model: a sample's accuracy must not decide it.
        "CENSUS_ACCURACY_THRESHOLD": "0.7",
        "OPS_TEST_SLEEP": "3",  # each asset of the pools location
    }
    locations = {"census_assets": ("-m", "census_assets"), POOLS_LOCATION: ("-f", str(POOLS_CODE))}
    # No `dagster instance concurrency set`: the pools' limits come from the run coordinator.
    with start_dagster(base, instance_yaml, env, locations, name="ops") as running:
        yield running


@pytest.fixture(scope="module")
def launches(deployment, pg_database) -> dict[str, list[dict]]:
    """Sent at the same moment: two "Materialize all"-style launches of the census training chain,
    and three batch-scoring runs of the pools location. Returns the finished runs by kind, each
    with `dequeued`: when the daemon's run queue let it go (its RunStartingEvent); and the pool
    limits the database held before the first launch."""
    server, database = pg_database["server"], pg_database["env"]["DAGSTER_PG_DB"]
    limits_before = server.query(database, 'SELECT concurrency_key, "limit" FROM concurrency_limits')
    training = [deployment.launch_assets(TRAINING_CHAIN, run_config=ONE_CV_REPEAT_RUN_CONFIG) for _ in range(2)]
    scoring = [
        deployment.launch_assets(["ops_batch_scores"], location=POOLS_LOCATION, run_config=IN_PROCESS_RUN_CONFIG)
        for _ in range(3)
    ]
    runs = deployment.wait_for_runs([*training, *scoring])
    for run_id, run in runs.items():
        run["dequeued"] = deployment.event_times(run_id)["RunStartingEvent"]
    return {
        "training": [runs[run_id] for run_id in training],
        "scoring": [runs[run_id] for run_id in scoring],
        "limits_before": limits_before,
    }


@pytest.fixture(scope="module")
def two_training_runs(launches) -> list[dict]:
    return launches["training"]


def test_two_training_runs_queue_behind_each_other_on_a_new_database_and_both_succeed(launches, two_training_runs):
    assert launches["limits_before"] == []  # nobody set a limit: the first launch did
    first, second = sorted(two_training_runs, key=lambda run: run["startTime"])
    assert [first["status"], second["status"]] == ["SUCCESS", "SUCCESS"], two_training_runs
    for run in (first, second):
        assert run["jobName"] == "__ASSET_JOB"
        own_tags = [tag for tag in run["tags"] if not tag["key"].startswith(("dagster/", ".dagster/"))]
        assert own_tags == []  # nothing a tag concurrency limit could match: the pool does it
    assert second["dequeued"] >= first["endTime"] and second["startTime"] >= first["endTime"], (
        f"overlap: first {first['startTime']:.1f}-{first['endTime']:.1f}, "
        f"second {second['startTime']:.1f}-{second['endTime']:.1f}"
    )


def test_the_runs_are_recorded_in_postgres(two_training_runs, pg_database):
    server, database = pg_database["server"], pg_database["env"]["DAGSTER_PG_DB"]
    run_ids = [run["runId"] for run in two_training_runs]
    statuses = dict(server.query(database, "SELECT run_id, status FROM runs WHERE run_id = ANY(%s)", (run_ids,)))
    assert statuses == {run_id: "SUCCESS" for run_id in run_ids}
    for run_id in run_ids:
        events = server.query(
            database,
            "SELECT dagster_event_type, step_key, asset_key FROM event_logs WHERE run_id = %s",
            (run_id,),
        )
        succeeded_steps = {step for kind, step, _ in events if kind == "STEP_SUCCESS"}
        assert set(TRAINING_CHAIN) <= succeeded_steps
        materialized = {json.loads(key)[0] for kind, _, key in events if kind == "ASSET_MATERIALIZATION"}
        assert materialized == set(TRAINING_CHAIN)
        assert any(kind == "ASSET_CHECK_EVALUATION" for kind, _, _ in events)
        checks = server.query(
            database,
            "SELECT check_name, execution_status FROM asset_check_executions WHERE run_id = %s",
            (run_id,),
        )
        assert checks == [(GATE, "SUCCEEDED")]


def test_history_survives_a_restart_and_graphql_reads_it(deployment, two_training_runs):
    run_ids = {run["runId"] for run in two_training_runs}
    deployment.restart_servers()  # new webserver and daemon processes, same PostgreSQL

    runs = deployment.graphql(RUNS, {"runIds": sorted(run_ids)})["runsOrError"]["results"]
    assert {run["runId"]: run["status"] for run in runs} == {run_id: "SUCCESS" for run_id in run_ids}
    for run in runs:
        assert {step["stepKey"]: step["status"] for step in run["stepStats"] if step["stepKey"] in TRAINING_CHAIN} == {
            key: "SUCCESS" for key in TRAINING_CHAIN
        }
    materializations = deployment.graphql(MATERIALIZATIONS, {"assetKey": {"path": ["lgbm_model"]}})
    assert run_ids <= {event["runId"] for event in materializations["assetOrError"]["assetMaterializations"]}
    executions = deployment.graphql(CHECK_EXECUTIONS, {"assetKey": {"path": ["cv_accuracy"]}, "checkName": GATE})
    passed = {e["runId"] for e in executions["assetCheckExecutions"] if e["status"] == "SUCCEEDED"}
    assert run_ids <= passed
    assert deployment.pool_limits() == POOL_LIMITS
    locations = deployment.graphql(LOCATIONS)["locationStatusesOrError"]["entries"]
    assert {entry["name"]: entry["loadStatus"] for entry in locations} == {
        "census_assets": "LOADED",
        POOLS_LOCATION: "LOADED",
    }


# The scoring pool, through the stand-in of census_assets_tests/ops_code_location.py, launched
# together with the two training runs above.


def test_scoring_runs_two_at_a_time_alongside_training(launches):
    training, scoring = launches["training"], launches["scoring"]
    assert {run["status"] for run in scoring} == {"SUCCESS"}, scoring
    assert most_at_once(scoring) == POOL_LIMITS[SCORING_POOL], scoring  # two at once, never three
    assert most_at_once([*training, *scoring]) == 3, launches  # one training run alongside them


RUNS = """query Runs($runIds: [String!]) { runsOrError(filter: {runIds: $runIds}) {
  ... on Runs { results { runId status stepStats { stepKey status } } } } }"""
MATERIALIZATIONS = """query M($assetKey: AssetKeyInput!) { assetOrError(assetKey: $assetKey) {
  ... on Asset { assetMaterializations(limit: 20) { runId } } } }"""
CHECK_EXECUTIONS = """query C($assetKey: AssetKeyInput!, $checkName: String!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: 20) { runId status } }"""
LOCATIONS = """{ locationStatusesOrError { ... on WorkspaceLocationStatusEntries { entries { name loadStatus } } } }"""
