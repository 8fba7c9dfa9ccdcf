"""Batch scoring through the real code location: the inbox sensor on a local folder and on GCS
(fake-gcs-server), scored_batch partitions (equal to `census-assets predict`, bad files failing
their own partition), the drift check, re-scoring after a promotion (the request and the
census_rescore sensor), one bad inbox entry or partition key failing only itself, and a real daemon.
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
from census_assets.assets.batches import batch_records, census_batches, scored_batch
from census_assets.automation.inbox import build_inbox_sensor
from census_assets.automation.rescore import REQUESTS, build_rescore_sensor, request_rescore
from census_assets.core.batch_names import partition_key
from census_assets.core.batch_summary import behind_production
from census_assets.core.batches import read_batch
from census_assets.core.fingerprints import content_fingerprint
from census_assets.core.scoring import PROBABILITY
from census_assets.definitions import build_definitions
from census_assets.resources.inbox import BatchInbox
from census_assets.resources.storage import ArtifactStorage
from census_assets.settings import load_environment
from census_assets.storage.objects import open_store
from census_assets.storage.registry import Registry
from census_assets_tests.harness.dagster import REPO_DAGSTER_YAML, dagster_deployment
from census_assets_tests.harness.runner import run_graph, step_failure_message
from census_assets_tests.harness.sensors import SensorTicks
from census_assets_tests.harness.waiting import wait_for

pytestmark = pytest.mark.batches
census_rescore = build_rescore_sensor()


def environment(storage, inbox, **extra) -> dict:
    return {"CENSUS_STORAGE_URL": str(storage), "CENSUS_INBOX_URL": str(inbox), **extra}


def definitions(storage, inbox="", source="bundled") -> dg.Definitions:
    return build_definitions(load_environment(environment(storage, inbox, CENSUS_SOURCE=str(source))))


def train(storage, source) -> dg.ExecuteInProcessResult:
    """The whole training graph and promotion on a small sample (CV with one repeat; a low threshold
    and a tolerance of 1.0, so each model is promoted)."""
    result = run_graph(
        {"CENSUS_STORAGE_URL": str(storage), "CENSUS_SOURCE": str(source)},
        training={"accuracy_threshold": 0.5, "n_repeats": 1},
        lifecycle={"champion_tolerance": 1.0},
    )
    assert result.success, [e.step_key for e in result.all_events if e.is_step_failure]
    return result


def registry(storage) -> Registry:
    return Registry(open_store(str(storage)))


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


class SensorHarness(SensorTicks):
    """census_inbox tick after tick as the daemon would, resources as definitions.py binds them."""

    def __init__(self, inbox_url: str, storage, home: Path):
        # A persistent instance: the sensor context loads dynamic partitions through its ref.
        home.mkdir(parents=True, exist_ok=True)
        definitions_ = definitions(storage, inbox_url)
        resources = {name: definitions_.resources[name] for name in ("inbox", "model_registry")}
        super().__init__(
            build_inbox_sensor(), dg.DagsterInstance.local_temp(tempdir=str(home)), resources, definitions_
        )

    def scoring_requests(self, result) -> dict[str, dg.RunRequest]:
        return {r.partition_key: r for r in result.run_requests if r.job_name == "score_batches"}

    def run(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        """The run the daemon would launch for `request`, in this process, on this instance."""
        job = self.definitions.resolve_job_def(request.job_name)
        return job.execute_in_process(
            partition_key=request.partition_key, tags=request.tags, instance=self.instance, raise_on_error=False
        )


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
    fingerprint = content_fingerprint(paths["good1.csv"].read_bytes())
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
    assert build_inbox_sensor().default_status == dg.DefaultSensorStatus.STOPPED
    assert build_inbox_sensor().minimum_interval_seconds == 30
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
    key = partition_key("b c.csv")
    assert set(first) == {"a.csv", key} and key.startswith("b_c.csv-")
    assert first["a.csv"].tags["census/content"].startswith("md5:")

    upload("a.csv", holdout.head(50))  # the same bytes again: a new generation, nothing new
    assert sensor.scoring_requests(sensor.tick()) == {}
    upload("a.csv", holdout.head(51))
    [changed] = sensor.scoring_requests(sensor.tick()).values()
    assert changed.partition_key == "a.csv" and changed.run_key.endswith("#2")

    # scored_batch reads the object exactly as listed.
    data, fingerprint = BatchInbox(url="gs://census-inbox/inbox", storage=ArtifactStorage(url=str(tmp_path))).read(
        "a.csv"
    )
    assert fingerprint == changed.tags["census/content"] and len(read_batch(data, "a.csv")) == 51


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


@pytest.mark.audit
def test_explain_stores_the_reasons_of_census_assets_predict_explain(trained, holdout, tmp_path):
    storage = copy_storage(trained, tmp_path / "storage")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    batch = inbox / "holes.csv"  # 10 rows without a workclass: scored by neither, no reasons
    holdout.head(300).assign(workclass=[None] * 10 + ["Private"] * 290).to_csv(batch, index=False)
    instance = dg.DagsterInstance.ephemeral()
    plain = score(storage, inbox, "holes.csv", instance).output_for_node("scored_batch")
    explained = score(storage, inbox, "holes.csv", instance, {"ops": {"scored_batch": {"config": {"explain": 3}}}})
    assert explained.success
    output = tmp_path / "predicted.parquet"
    code = census_cli.main(
        ["predict", "--input", str(batch), "--output", str(output), "--storage", str(storage), "--explain", "3"]
    )
    assert code == 0
    expected = pd.read_parquet(output)
    published = pd.read_parquet(storage / "scored" / "holes.csv.parquet")  # the explained run's
    reasons = [f"{kind}_{i}" for kind in ("reason", "contribution", "value") for i in (1, 2, 3)]
    assert list(published.columns) == list(plain.columns) + reasons == list(expected.columns)
    assert published.equals(expected)
    assert published[reasons].iloc[:10].isna().all().all() and published[reasons].iloc[10:].notna().all().all()
    # Off by default: the output is the scores alone, as they are with the reasons.
    assert not any(name.startswith(("reason_", "contribution_", "value_")) for name in plain.columns)
    assert plain.equals(explained.output_for_node("scored_batch")[list(plain.columns)])

    too_many = score(storage, inbox, "holes.csv", instance, {"ops": {"scored_batch": {"config": {"explain": 12}}}})
    assert not too_many.success
    assert "less than or equal to 11" in step_failure_message(too_many, "scored_batch")


def test_drift_check_per_partition(scored, trained, holdout, tmp_path):
    checks = {check.check_name: check for check in scored["results"]["good1.csv"].get_asset_check_evaluations()}
    ok = checks["batch_drift"]
    assert ok.passed and ok.partition == "good1.csv"
    storage = copy_storage(trained, tmp_path / "storage")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    holdout.head(2000).assign(age=holdout["age"].head(2000) + 15).to_csv(inbox / "older.csv", index=False)
    result = score(storage, inbox, "older.csv", dg.DagsterInstance.ephemeral())
    assert result.success  # scores are stored; the check says the batch drifted
    check = {check.check_name: check for check in result.get_asset_check_evaluations()}["batch_drift"]
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
    behind = behind_production(batch_records(instance), version_b)
    assert sorted(behind) == ["good1.csv", "good2.parquet"]  # the failed batch was never scored

    for partition in behind:
        assert score(storage, scored["inbox"], partition, instance).success
    records = {r["partition"]: r for r in batch_records(instance)}
    assert {records[p]["model_version"] for p in behind} == {version_b}
    assert behind_production(batch_records(instance), version_b) == []
    table = pd.read_parquet(storage / "scored" / "good1.csv.parquet")
    assert table[PROBABILITY].notna().all()


# ---- census-assets rescore: a request, carried out by the census_rescore sensor --------------------


def rescore_sensor(storage, inbox, instance: dg.DagsterInstance) -> SensorTicks:
    """census_rescore evaluated as the daemon would, on `instance`, cursor carried over."""
    definitions_ = definitions(storage, inbox)
    registry = definitions_.resources["model_registry"]
    resources = {"storage": ArtifactStorage(url=str(storage)), "model_registry": registry}
    return SensorTicks(census_rescore, instance, resources, definitions_)


def test_rescore_request_names_what_it_asks_and_needs_a_production_model(trained, tmp_path):
    storage = copy_storage(trained, tmp_path / "storage")
    lines = request_rescore(open_store(str(storage)), everything=False)
    [written] = list((storage / REQUESTS).iterdir())
    request = json.loads(written.read_text())
    assert request["everything"] is False and request["production"] == trained["A"]
    assert f"request {written.stem}" in lines[0] and f"production {trained['A']}" in lines[0]
    assert "census_rescore" in lines[1]
    assert census_rescore.default_status == dg.DefaultSensorStatus.RUNNING

    empty = tmp_path / "empty"
    with pytest.raises(Exception, match="production") as error:
        request_rescore(open_store(str(empty)), everything=True)
    assert isinstance(error.value, OSError)  # a RegistryError: the CLI reports it in one line, status 2
    assert not (empty / REQUESTS).exists()


@pytest.mark.integrity
def test_rescore_all_is_one_run_per_partition_so_a_key_with_a_comma_fails_alone(trained, holdout, tmp_path):
    """`rescore --all` with a partition key added by hand that holds a comma: that partition's run
    is refused, every other partition is re-scored (one `dagster job backfill --partitions a,b`
    re-scored nothing)."""
    storage = copy_storage(trained, tmp_path / "storage")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    holdout.head(200).drop(columns="marital_status").to_csv(inbox / "good.csv", index=False)
    home = tmp_path / "home"
    home.mkdir()
    instance = dg.DagsterInstance.local_temp(tempdir=str(home))
    assert score(storage, inbox, "good.csv", instance).success  # scored by A
    instance.add_dynamic_partitions(census_batches.name, ["odd,key"])  # added by hand
    version_b = promote_b(storage, trained)

    request_rescore(open_store(str(storage)), everything=True)
    sensor = rescore_sensor(storage, inbox, instance)
    result = sensor.tick()
    requests = {r.partition_key: r for r in result.run_requests}
    assert set(requests) == {"good.csv", "odd,key"}  # one run each
    assert requests["odd,key"].run_key.endswith("/odd,key")
    assert requests["good.csv"].tags["census/rescore_to"] == version_b

    job = sensor.definitions.resolve_job_def("score_batches")
    runs = {
        key: job.execute_in_process(partition_key=key, tags=request.tags, instance=instance, raise_on_error=False)
        for key, request in requests.items()
    }
    assert runs["good.csv"].success and metadata(runs["good.csv"])["model_version"] == version_b
    assert not runs["odd,key"].success
    assert "partition key 'odd,key' is not a safe name" in step_failure_message(runs["odd,key"], "scored_batch")

    again = sensor.tick()  # the request is carried out once
    assert again.run_requests == [] and "no re-score request waiting" in again.skip_message


# ---- one bad inbox entry fails only itself ----------------------------------------------------------


@pytest.mark.integrity
def test_the_inbox_listing_refuses_each_bad_entry_with_its_reason_and_keeps_the_rest(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.csv").write_text("age\n1\n")
    with open(os.path.join(os.fsencode(inbox), b"bad\xff\xfe.csv"), "wb") as handle:
        handle.write(b"age\n1\n")
    os.symlink("loop.csv", inbox / "loop.csv")
    (tmp_path / "outside.csv").write_text("age\n2\n")
    os.symlink(tmp_path / "outside.csv", inbox / "elsewhere.csv")
    os.mkfifo(inbox / "pipe.csv")
    (inbox / "folder.csv").mkdir()  # sub-folders are not looked into
    os.symlink("loop.txt", inbox / "loop.txt")  # not a batch name: not reported either
    batches = BatchInbox(url=str(inbox), storage=ArtifactStorage(url=str(tmp_path / "storage")))

    listing = batches.list_batches()
    assert [(f.name, f.fingerprint) for f in listing.files] == [("good.csv", content_fingerprint(b"age\n1\n"))]
    assert sorted(listing.refused) == ["bad\\xff\\xfe.csv", "elsewhere.csv", "loop.csv", "pipe.csv"]
    assert "not valid UTF-8" in listing.refused["bad\\xff\\xfe.csv"]
    assert "symbolic link" in listing.refused["loop.csv"] and "symbolic link" in listing.refused["elsewhere.csv"]
    assert "not a regular file" in listing.refused["pipe.csv"]
    # scored_batch finds its file by a listing: a bad neighbour does not stop it, a link is no batch.
    assert batches.find("good.csv") == "good.csv" and batches.find("loop.csv") is None
    assert batches.read("good.csv") == (b"age\n1\n", content_fingerprint(b"age\n1\n"))


def write_good(inbox: Path, holdout: pd.DataFrame) -> Path:
    inbox.mkdir(parents=True, exist_ok=True)
    holdout.head(200).drop(columns="marital_status").to_csv(inbox / "good.csv", index=False)
    return inbox / "good.csv"


@pytest.mark.integrity
def test_a_file_name_that_is_not_utf8_is_refused_alone_and_the_good_file_is_scored(trained, holdout, tmp_path):
    storage = copy_storage(trained, tmp_path / "storage")
    good = write_good(tmp_path / "inbox", holdout)
    bad = os.path.join(os.fsencode(good.parent), b"bad\xff\xfe.csv")
    with open(bad, "wb") as handle:
        handle.write(good.read_bytes())
    sensor = SensorHarness(str(good.parent), storage, tmp_path / "home")

    first = sensor.tick()
    assert "1 refused (not taken): bad\\xff\\xfe.csv: the file name is not valid UTF-8" in first.skip_message
    [request] = sensor.scoring_requests(sensor.tick()).values()  # the good file, on the next tick
    assert request.partition_key == "good.csv" and "bad" not in sensor.cursor
    result = sensor.run(request)
    assert result.success and metadata(result)["model_version"] == trained["A"]
    assert sensor.scoring_requests(sensor.tick()) == {}  # the bad name is never taken


@pytest.mark.integrity
def test_symlinks_are_refused_a_loop_fails_only_itself(trained, holdout, tmp_path):
    storage = copy_storage(trained, tmp_path / "storage")
    good = write_good(tmp_path / "inbox", holdout)
    os.symlink("loop.csv", good.parent / "loop.csv")  # a link to itself
    outside = tmp_path / "outside.csv"
    shutil.copy(good, outside)
    os.symlink(outside, good.parent / "elsewhere.csv")  # scored before: content outside the inbox
    sensor = SensorHarness(str(good.parent), storage, tmp_path / "home")

    first = sensor.tick()
    assert "2 refused (not taken): elsewhere.csv: a symbolic link" in first.skip_message
    assert "loop.csv: a symbolic link" in first.skip_message
    [request] = sensor.scoring_requests(sensor.tick()).values()
    assert request.partition_key == "good.csv"
    assert sensor.run(request).success  # finding the partition's file lists the inbox: the loop is skipped
    assert sensor.scoring_requests(sensor.tick()) == {}


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


def partitions_state(deployment, partitions):
    node = deployment.graphql(PARTITIONS, {"partitions": partitions})["assetNodeOrError"]
    versions = {
        event["partition"]: {e["label"]: e.get("text", e.get("floatValue")) for e in event["metadataEntries"]}
        for event in node["latestMaterializationByPartition"]
        if event
    }
    return node["assetPartitionStatuses"], versions


def latest_run(deployment, partition: str) -> dict | None:
    return deployment.graphql(LATEST_RUN, {"partition": partition})["assetNodeOrError"]["latestRunForPartition"]


def step_failure(run: dict) -> str:
    [failure] = [e for e in run["eventConnection"]["events"] if e["__typename"] == "ExecutionStepFailureEvent"]
    return failure["failureMetadata"]["description"]


@pytest.mark.slow
def test_daemon_scores_dropped_files_and_rescores_after_a_promotion(trained, holdout, tmp_path):
    storage = copy_storage(trained, tmp_path / "storage")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    env = environment(storage, inbox, CENSUS_INBOX_INTERVAL_SECONDS="3")
    with dagster_deployment(tmp_path / "deployment", REPO_DAGSTER_YAML, env) as deployment:
        details = deployment.log_tails
        deployment.start_sensor("census_inbox")
        write_batches(inbox, holdout)  # three files dropped in the inbox, one of them bad
        names = ["good1.csv", "good2.parquet", "bad.csv"]

        def settled():
            statuses, versions = partitions_state(deployment, names)
            done = len(statuses.get("materializedPartitions", [])) == 2 and statuses.get("failedPartitions")
            return (statuses, versions) if done else None

        statuses, versions = wait_for(settled, 240, what="two scored and one failed partition", details=details)
        assert sorted(statuses["materializedPartitions"]) == ["good1.csv", "good2.parquet"]
        assert statuses["failedPartitions"] == ["bad.csv"]
        assert {versions[p]["model_version"] for p in ("good1.csv", "good2.parquet")} == {trained["A"]}
        assert versions["good1.csv"]["rows"] == 2000.0

        run = latest_run(deployment, "bad.csv")
        assert run["status"] == "FAILURE" and "missing required column(s): occupation" in step_failure(run)

        def summarised():
            events = deployment.graphql(SUMMARY)["assetNodeOrError"]["assetMaterializations"]
            figures = {e["label"]: e.get("floatValue") for e in events[0]["metadataEntries"]} if events else {}
            return figures if figures.get("batches") == 3.0 else None

        figures = wait_for(summarised, 240, what="batch_summary of three batches", details=details)
        assert figures["batches_scored"] == 2.0 and figures["batches_failed"] == 1.0

        version_b = promote_b(storage, trained)
        with dg.DagsterInstance.from_config(str(deployment.home)) as instance:  # a key added by hand
            instance.add_dynamic_partitions(census_batches.name, ["odd,key"])
        # The operator's request (census-assets rescore --all); census_rescore, on by default, carries it out.
        request_rescore(open_store(str(storage)), everything=True)

        def rescored():
            _, versions = partitions_state(deployment, names[:2])
            odd = latest_run(deployment, "odd,key")
            done = {v["model_version"] for v in versions.values()} == {version_b} and odd and odd["status"] == "FAILURE"
            return odd if done else None

        odd = wait_for(rescored, 240, what="both scored partitions re-scored by B, odd,key refused", details=details)
        assert "partition key 'odd,key' is not a safe name" in step_failure(odd)
        published = pd.read_parquet(storage / "scored" / "good2.parquet.parquet")
        assert len(published) == 1500 and np.isfinite(published[PROBABILITY]).all()
