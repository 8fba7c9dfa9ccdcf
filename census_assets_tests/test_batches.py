"""Batch scoring through the real code location: the inbox sensor on a local folder and on GCS
(fake-gcs-server), scored_batch partitions (equal to `census-assets predict`, bad files failing
their own partition), the drift check, re-scoring after a promotion, and a real daemon.
Run alone with `python -m pytest -m batches`.

One module-scoped storage with two promoted models (A, then B; production rolled back to A) serves
every test; tests that change storage work on copies.
"""

import json
import os
import re
import shutil
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from census_assets import cli as census_cli
from census_assets.artifacts import ArtifactStore
from census_assets.assets.batches import census_batches, scored_batch
from census_assets.automation.inbox import build_inbox_sensor, census_inbox, partitions_to_rescore
from census_assets.core import batches as core
from census_assets.core.registry import Registry
from census_assets.core.scoring import PROBABILITY
from census_assets.definitions import build_definitions
from census_assets.io_manager import CensusIOManager
from census_assets.resources.inbox import BatchInbox
from census_assets.resources.lifecycle import LifecycleSettings
from census_assets.resources.training import TrainingSettings
from census_assets.settings import load_environment
from census_assets_tests.helpers import step_failure_message

pytestmark = pytest.mark.batches

REPO_ROOT = Path(__file__).resolve().parents[1]


def environment(storage, inbox, **extra) -> dict:
    return {"CENSUS_STORAGE_URL": str(storage), "CENSUS_INBOX_URL": str(inbox), **extra}


def definitions(storage, inbox="", source="bundled") -> dg.Definitions:
    return build_definitions(load_environment(environment(storage, inbox, CENSUS_SOURCE=str(source))))


def train(storage, source) -> dg.ExecuteInProcessResult:
    """The whole training graph and promotion on a small sample (CV with one repeat; a low threshold
    and a tolerance of 1.0, so each model is promoted)."""
    defs = definitions(storage, source=source)
    resources = {
        **defs.resources,
        "training": TrainingSettings(accuracy_threshold=0.5, n_repeats=1),
        "lifecycle": LifecycleSettings(champion_tolerance=1.0),
    }
    result = dg.materialize([*defs.assets, *defs.asset_checks], resources=resources, raise_on_error=False)
    assert result.success, [e.step_key for e in result.all_events if e.is_step_failure]
    return result


def registry(storage) -> Registry:
    return Registry(ArtifactStore(str(storage)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, bundled_raw):
    """Storage with models A and B promoted, production rolled back to A; and holdout samples."""
    root = tmp_path_factory.mktemp("batches")
    storage = root / "storage"
    versions = {}
    for name, seed in (("A", 0), ("B", 1)):
        sample = root / f"train_{name}.parquet"
        bundled_raw.sample(3000, random_state=seed).to_parquet(sample, index=False)
        train(storage, sample)
        versions[name] = registry(storage).production()
    registry(storage).rollback(versions["A"]["version"], reason="tests start on A")
    return {"storage": storage, "A": versions["A"]["version"], "B": versions["B"]}


@pytest.fixture(scope="module")
def holdout():
    from census_assets.assets.evaluation import read_holdout

    return read_holdout()


def copy_storage(trained, target) -> Path:
    shutil.copytree(trained["storage"], target)
    return target


def promote_b(storage, trained) -> str:
    """Production moves to B, as production_model's promotion does (B is published already)."""
    record = trained["B"]
    return registry(storage).promote(record["version"], record["metrics"], run_id=None)["version"]


def write_batches(inbox: Path, holdout: pd.DataFrame) -> dict[str, Path]:
    inbox.mkdir(parents=True, exist_ok=True)
    paths = {"good1.csv": inbox / "good1.csv", "good2.parquet": inbox / "good2.parquet", "bad.csv": inbox / "bad.csv"}
    holdout.iloc[:2000].drop(columns="marital_status").to_csv(paths["good1.csv"], index=False)
    holdout.iloc[2000:3500].to_parquet(paths["good2.parquet"], index=False)
    holdout.iloc[3500:3600].drop(columns="occupation").to_csv(paths["bad.csv"], index=False)
    return paths


# ---- the sensor ---------------------------------------------------------------------------------


class SensorHarness:
    """Evaluates census_inbox tick after tick as the daemon would: cursor carried over, requested
    partitions added to the instance."""

    def __init__(self, inbox_url: str, storage, home: Path):
        # A persistent instance: the sensor context loads dynamic partitions through its ref.
        home.mkdir(parents=True, exist_ok=True)
        self.instance = dg.DagsterInstance.local_temp(tempdir=str(home))
        self.definitions = definitions(storage, inbox_url)
        self.resources = {"inbox": BatchInbox(url=inbox_url), "io_manager": CensusIOManager(base_url=str(storage))}
        self.cursor = None

    def tick(self):
        with dg.build_sensor_context(
            cursor=self.cursor,
            instance=self.instance,
            instance_ref=self.instance.get_ref(),
            resources=self.resources,
            definitions=self.definitions,
        ) as context:
            result = census_inbox.evaluate_tick(context)
        self.cursor = result.cursor
        for request in result.dynamic_partitions_requests:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        return result

    def scoring_requests(self, result) -> dict[str, dg.RunRequest]:
        return {r.partition_key: r for r in result.run_requests if r.job_name == "score_batches"}


def test_an_unreadable_cursor_starts_afresh(trained, holdout, tmp_path):
    inbox = tmp_path / "inbox"
    write_batches(inbox, holdout)
    sensor = SensorHarness(str(inbox), trained["storage"], tmp_path / "home")
    sensor.cursor = "not json {"
    result = sensor.tick()  # no exception: the files are seen again, run keys prevent repeats
    assert result.run_requests == [] and "3 new or changed" in result.skip_message
    assert re.fullmatch("[0-9a-f]{16}", json.loads(sensor.cursor)["p"])  # production, read afresh


def test_sensor_on_a_local_inbox(trained, holdout, tmp_path):
    inbox = tmp_path / "inbox"
    paths = write_batches(inbox, holdout)
    (inbox / "_incoming.csv").write_text("half a file")  # a temporary name: never taken
    (inbox / "notes.txt").write_text("not a batch")
    sensor = SensorHarness(str(inbox), trained["storage"], tmp_path / "home")

    first = sensor.tick()  # seen once: a file may still be being written
    assert first.run_requests == [] and "3 new or changed" in first.skip_message
    second = sensor.tick()
    requests = sensor.scoring_requests(second)
    assert set(requests) == {"good1.csv", "good2.parquet", "bad.csv"}
    assert set(sensor.instance.get_dynamic_partitions(census_batches.name)) == set(requests)
    fingerprint = core.content_fingerprint(paths["good1.csv"].read_bytes())
    assert requests["good1.csv"].run_key == f"good1.csv@{fingerprint}#1"
    assert requests["good1.csv"].tags["census/inbox_file"] == "good1.csv"

    os.utime(paths["good1.csv"], (time.time() + 60, time.time() + 60))  # a touch: same bytes
    paths["good2.parquet"].write_bytes(paths["good2.parquet"].read_bytes())  # rewritten, same bytes
    assert sensor.scoring_requests(sensor.tick()) == {}

    holdout.iloc[:2100].drop(columns="marital_status").to_csv(paths["good1.csv"], index=False)
    assert sensor.scoring_requests(sensor.tick()) == {}  # changed: taken when stable
    [changed] = sensor.scoring_requests(sensor.tick()).values()
    assert changed.partition_key == "good1.csv" and changed.run_key.endswith("#2")
    assert sensor.scoring_requests(sensor.tick()) == {}


def test_sensor_skips_with_the_reason_when_the_inbox_is_missing(trained, tmp_path):
    result = SensorHarness(str(tmp_path / "nowhere"), trained["storage"], tmp_path / "home").tick()
    assert result.run_requests == [] and "does not exist" in result.skip_message


def test_inbox_sensor_defaults():
    assert census_inbox.default_status == dg.DefaultSensorStatus.STOPPED
    assert census_inbox.minimum_interval_seconds == 30
    assert build_inbox_sensor(5).minimum_interval_seconds == 5
    defs = definitions("/tmp/storage")
    assets_def = defs.resolve_assets_def("scored_batch")
    spec = next(iter(assets_def.specs))
    assert spec.automation_condition is None  # follows the inbox sensor, not the eager condition
    assert assets_def.op.pool == "census_scoring" and spec.metadata["census/published_as"] == "scored"
    assert spec.partitions_def == census_batches
    assert defs.resolve_sensor_def("census_inbox").minimum_interval_seconds == 30
    env = load_environment({"CENSUS_STORAGE_URL": "/srv/census", "CENSUS_INBOX_INTERVAL_SECONDS": "5"})
    assert env.inbox == "/srv/census/inbox" and env.inbox_interval_seconds == 5
    assert load_environment({"CENSUS_INBOX_URL": "gs://b/in/"}).inbox == "gs://b/in"


@pytest.mark.gcp
def test_sensor_on_a_gcs_inbox(gcs_emulator, trained, holdout, tmp_path):
    from google.cloud import storage as gcs

    bucket = gcs.Client().create_bucket("census-inbox")

    def upload(name: str, frame: pd.DataFrame):
        bucket.blob(f"inbox/{name}").upload_from_string(frame.to_csv(index=False))

    upload("a.csv", holdout.head(50))
    upload("b c.csv", holdout.iloc[50:80])
    bucket.blob("inbox/sub/ignored.csv").upload_from_string("x")
    sensor = SensorHarness("gs://census-inbox/inbox", trained["storage"], tmp_path / "home")

    first = sensor.scoring_requests(sensor.tick())  # complete once listed: taken at once
    key = core.partition_key("b c.csv")
    assert set(first) == {"a.csv", key} and key.startswith("b_c.csv-")
    assert first["a.csv"].tags["census/content"].startswith("md5:")

    upload("a.csv", holdout.head(50))  # the same bytes again: a new generation, nothing new
    assert sensor.scoring_requests(sensor.tick()) == {}
    upload("a.csv", holdout.head(51))
    [changed] = sensor.scoring_requests(sensor.tick()).values()
    assert changed.partition_key == "a.csv" and changed.run_key.endswith("#2")

    # scored_batch reads the object exactly as listed.
    data, fingerprint = BatchInbox(url="gs://census-inbox/inbox").read("a.csv")
    assert fingerprint == changed.tags["census/content"] and len(core.read_batch(data, "a.csv")) == 51


# ---- scored_batch --------------------------------------------------------------------------------


def score(storage, inbox, partition: str, instance: dg.DagsterInstance, run_config=None):
    """One run of the score_batches job for one partition, in this process."""
    instance.add_dynamic_partitions(census_batches.name, [partition])
    job = definitions(storage, inbox).resolve_job_def("score_batches")
    return job.execute_in_process(
        partition_key=partition, instance=instance, run_config=run_config or {}, raise_on_error=False
    )


def metadata(result) -> dict:
    [event] = result.asset_materializations_for_node("scored_batch")
    return {name: value.value for name, value in event.metadata.items()}


@pytest.fixture(scope="module")
def scored(trained, holdout, tmp_path_factory):
    """The three batches scored with production A, each in its own run."""
    root = tmp_path_factory.mktemp("scored")
    storage = copy_storage(trained, root / "storage")
    inbox = root / "inbox"
    paths = write_batches(inbox, holdout)
    instance = dg.DagsterInstance.ephemeral()
    results = {name: score(storage, inbox, name, instance) for name in paths}
    return {"storage": storage, "inbox": inbox, "paths": paths, "instance": instance, "results": results}


def test_scores_equal_census_assets_predict_byte_for_byte(scored, trained, tmp_path):
    result = scored["results"]["good1.csv"]
    assert result.success
    output = tmp_path / "predicted.parquet"
    code = census_cli.main(
        ["predict", "--input", str(scored["paths"]["good1.csv"]), "--output", str(output),
         "--storage", str(scored["storage"])]
    )  # fmt: skip
    assert code == 0
    expected = pd.read_parquet(output)
    frame = result.output_for_node("scored_batch")
    assert frame[PROBABILITY].to_numpy().tobytes() == expected[PROBABILITY].to_numpy().tobytes()
    assert frame.drop(columns=[PROBABILITY]).equals(expected.drop(columns=[PROBABILITY]))
    meta = metadata(result)
    assert meta["model_version"] == trained["A"]
    assert meta["rows"] == meta["scored_rows"] == 2000.0 and isinstance(meta["positive_rate"], float)
    assert 0 < meta["positive_rate"] < 1 and meta["unseen_category_share"] == 0.0
    assert {f"psi {name}" for name in ("age", "education", "native_country")} <= set(meta)
    assert all(isinstance(v, float) for k, v in meta.items() if k.startswith("psi "))


def test_scores_are_published_per_partition(scored):
    """The IO manager publishes partition P at <storage>/scored/<P>.parquet (run-scoped storage)."""
    published = pd.read_parquet(scored["storage"] / "scored" / "good1.csv.parquet")
    frame = scored["results"]["good1.csv"].output_for_node("scored_batch")
    assert published[PROBABILITY].to_numpy().tobytes() == frame[PROBABILITY].to_numpy().tobytes()
    assert len(pd.read_parquet(scored["storage"] / "scored" / "good2.parquet.parquet")) == 1500
    assert not (scored["storage"] / "scored" / "bad.csv.parquet").exists()


def test_a_bad_file_fails_its_own_partition_and_stays_in_the_inbox(scored):
    result = scored["results"]["bad.csv"]
    assert not result.success
    assert "missing required column(s): occupation" in step_failure_message(result, "scored_batch")
    assert scored["paths"]["bad.csv"].exists()
    statuses = scored["instance"].get_status_by_partition(
        scored_batch.key, ["good1.csv", "good2.parquet", "bad.csv"], census_batches
    )
    assert {k: v.value for k, v in statuses.items()} == {
        "good1.csv": "MATERIALIZED", "good2.parquet": "MATERIALIZED", "bad.csv": "FAILED"
    }  # fmt: skip


@pytest.mark.parametrize(
    "name, make, message",
    [
        ("empty.csv", lambda rows: b"", "empty (0 bytes"),
        ("header.csv", lambda rows: rows.head(0).to_csv(index=False).encode(), "no rows"),
        ("text_age.csv", lambda rows: rows.assign(age="forty").to_csv(index=False).encode(), "column 'age' must be"),
        ("broken.parquet", lambda rows: b"PAR1 not really", "not a readable Parquet file"),
        ("holes.csv", lambda rows: rows.assign(workclass=[None] * 20 + ["Private"] * 80).to_csv(index=False).encode(),
         "20 of 100 rows (20.0%) cannot be scored"),
    ],
)  # fmt: skip
def test_bad_batches_are_refused_before_anything_is_stored(trained, holdout, tmp_path, name, make, message):
    storage = copy_storage(trained, tmp_path / "storage")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / name).write_bytes(make(holdout.head(100)))
    result = score(storage, inbox, name, dg.DagsterInstance.ephemeral())
    assert not result.success and message in step_failure_message(result, "scored_batch")
    assert not (storage / "scored").exists() and not (storage / "pointers" / "scored_batch").exists()
    assert (inbox / name).exists()


def test_max_unscorable_share_is_configurable(trained, holdout, tmp_path):
    storage = copy_storage(trained, tmp_path / "storage")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    holdout.head(100).assign(workclass=[None] * 20 + ["Private"] * 80).to_csv(inbox / "holes.csv", index=False)
    config = {"ops": {"scored_batch": {"config": {"max_unscorable_share": 0.25}}}}
    result = score(storage, inbox, "holes.csv", dg.DagsterInstance.ephemeral(), run_config=config)
    assert result.success
    meta = metadata(result)
    assert meta["unscorable_rows"] == 20.0 and meta["scored_rows"] == 80.0 and meta["rows"] == 100.0


def test_drift_check_per_partition(scored, trained, holdout, tmp_path):
    [ok] = scored["results"]["good1.csv"].get_asset_check_evaluations()
    assert ok.passed and ok.check_name == "batch_drift" and ok.partition == "good1.csv"
    storage = copy_storage(trained, tmp_path / "storage")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    holdout.head(2000).assign(age=holdout["age"].head(2000) + 15).to_csv(inbox / "older.csv", index=False)
    result = score(storage, inbox, "older.csv", dg.DagsterInstance.ephemeral())
    assert result.success  # scores are stored; the check says the batch drifted
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "age" in check.description and check.metadata["max_psi"].value > 0.25


def test_rescore_after_a_promotion_names_the_new_version(scored, trained, tmp_path):
    storage, instance = scored["storage"], scored["instance"]
    defs = definitions(storage, scored["inbox"])
    summary = defs.resolve_job_def("summarize_batches")
    before = summary.execute_in_process(instance=instance).asset_materializations_for_node("batch_summary")[0]
    assert before.metadata["batches_behind_production"].value == 0.0
    assert before.metadata["batches_failed"].value == 1.0 and before.metadata["batches_scored"].value == 2.0
    assert "missing required column(s): occupation" in before.metadata["batches_table"].value

    version_b = promote_b(storage, trained)
    after_promotion = summary.execute_in_process(instance=instance).asset_materializations_for_node("batch_summary")
    assert after_promotion[0].metadata["batches_behind_production"].value == 2.0
    behind = partitions_to_rescore(instance, version_b, everything=False)
    assert sorted(behind) == ["good1.csv", "good2.parquet"]  # the failed batch was never scored

    for partition in behind:
        assert score(storage, scored["inbox"], partition, instance).success
    records = {r["partition"]: r for r in core_records(instance)}
    assert {records[p]["model_version"] for p in behind} == {version_b}
    assert partitions_to_rescore(instance, version_b, everything=False) == []
    table = pd.read_parquet(storage / "scored" / "good1.csv.parquet")
    assert table[PROBABILITY].notna().all()


def core_records(instance):
    from census_assets.assets.batches import batch_records

    return batch_records(instance)


def test_rescore_cli_dry_run_lists_what_is_behind(scored, trained, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    code = census_cli.main(["rescore", "--dry-run", "--storage", str(scored["storage"])])
    assert code == 0 and "nothing to re-score" in capsys.readouterr().out
    monkeypatch.delenv("DAGSTER_HOME")
    assert census_cli.main(["rescore", "--storage", str(scored["storage"])]) == 2
    assert "set DAGSTER_HOME" in capsys.readouterr().err


# ---- a real daemon --------------------------------------------------------------------------------

PARTITIONS = """query Partitions($partitions: [String!]) { assetNodeOrError(assetKey: {path: ["scored_batch"]}) {
  ... on AssetNode {
    assetPartitionStatuses { ... on DefaultPartitionStatuses { materializedPartitions failedPartitions } }
    latestMaterializationByPartition(partitions: $partitions) { partition runId
      metadataEntries { label ... on TextMetadataEntry { text } ... on FloatMetadataEntry { floatValue } } }
  } } }"""
LATEST_RUN = """query Latest($partition: String!) { assetNodeOrError(assetKey: {path: ["scored_batch"]}) {
  ... on AssetNode { latestRunForPartition(partition: $partition) { runId status
    eventConnection { events { __typename ... on ExecutionStepFailureEvent { stepKey
      failureMetadata { description } error { message } } } } } } } }"""
SUMMARY = """{ assetNodeOrError(assetKey: {path: ["batch_summary"]}) { ... on AssetNode {
  assetMaterializations(limit: 1) { metadataEntries { label ... on FloatMetadataEntry { floatValue } } } } } }"""
START_SENSOR = """mutation Start($selector: SensorSelector!) { startSensor(sensorSelector: $selector) {
  __typename ... on Sensor { sensorState { status } } ... on PythonError { message } } }"""


def wait_for(probe, timeout: float, what: str, deployment):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := probe()) is not None:
            return value
        time.sleep(2)
    raise AssertionError(f"{what} not reached after {timeout:.0f} s\n{deployment.log_tails()}")


def partitions_state(deployment, partitions):
    node = deployment.graphql(PARTITIONS, {"partitions": partitions})["assetNodeOrError"]
    versions = {
        event["partition"]: {e["label"]: e.get("text", e.get("floatValue")) for e in event["metadataEntries"]}
        for event in node["latestMaterializationByPartition"]
        if event
    }
    return node["assetPartitionStatuses"], versions


def test_daemon_scores_dropped_files_and_rescores_after_a_promotion(trained, holdout, tmp_path, monkeypatch, capsys):
    from census_assets_tests.daemon_support import dagster_daemon_instance

    storage = copy_storage(trained, tmp_path / "storage")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    env = environment(storage, inbox, CENSUS_INBOX_INTERVAL_SECONDS="3")
    with dagster_daemon_instance(
        tmp_path / "deployment", REPO_ROOT / "dagster.yaml", env, pool_limits={"census_scoring": 2}
    ) as deployment:
        selector = {"repositoryLocationName": deployment.location_name, "repositoryName": "__repository__",
                    "sensorName": "census_inbox"}  # fmt: skip
        started = deployment.graphql(START_SENSOR, {"selector": selector})["startSensor"]
        assert started["__typename"] == "Sensor", started
        write_batches(inbox, holdout)  # three files dropped in the inbox, one of them bad
        names = ["good1.csv", "good2.parquet", "bad.csv"]

        def settled():
            statuses, versions = partitions_state(deployment, names)
            done = len(statuses.get("materializedPartitions", [])) == 2 and statuses.get("failedPartitions")
            return (statuses, versions) if done else None

        statuses, versions = wait_for(settled, 240, "two scored and one failed partition", deployment)
        assert sorted(statuses["materializedPartitions"]) == ["good1.csv", "good2.parquet"]
        assert statuses["failedPartitions"] == ["bad.csv"]
        assert {versions[p]["model_version"] for p in ("good1.csv", "good2.parquet")} == {trained["A"]}
        assert versions["good1.csv"]["rows"] == 2000.0

        run = deployment.graphql(LATEST_RUN, {"partition": "bad.csv"})["assetNodeOrError"]["latestRunForPartition"]
        assert run["status"] == "FAILURE"
        [failure] = [e for e in run["eventConnection"]["events"] if e["__typename"] == "ExecutionStepFailureEvent"]
        assert "missing required column(s): occupation" in failure["failureMetadata"]["description"]

        def summarised():
            events = deployment.graphql(SUMMARY)["assetNodeOrError"]["assetMaterializations"]
            figures = {e["label"]: e.get("floatValue") for e in events[0]["metadataEntries"]} if events else {}
            return figures if figures.get("batches") == 3.0 else None

        figures = wait_for(summarised, 120, "batch_summary of three batches", deployment)
        assert figures["batches_scored"] == 2.0 and figures["batches_failed"] == 1.0

        version_b = promote_b(storage, trained)
        # The operator's command, against the deployment's instance and code server.
        monkeypatch.setenv("DAGSTER_HOME", str(deployment.home))
        workspace = str(deployment.base / "workspace.yaml")
        assert census_cli.main(["rescore", "--storage", str(storage), "--workspace", workspace]) == 0
        assert "re-scoring 2 batch(es)" in capsys.readouterr().out

        def rescored():
            _, versions = partitions_state(deployment, names[:2])
            return versions if {v["model_version"] for v in versions.values()} == {version_b} else None

        wait_for(rescored, 180, "every scored partition re-scored by B", deployment)
        published = pd.read_parquet(storage / "scored" / "good2.parquet.parquet")
        assert len(published) == 1500 and np.isfinite(published[PROBABILITY]).all()

