"""The concept-shift story end to end with a real daemon (code server, webserver, dagster-daemon):
batches and their labels dropped in, the inbox and labels sensors score and measure them, the
realized accuracy equals what `census-assets predict` and the label files give, the performance
check fails while the drift check passes, the decay sensor requests one retraining, and that
retraining (labelled batches in, the window out) is judged against the champion on the window's
rows and promoted. The world is test_loop.py's shifted world (every married person aged 22-40 is
Never-married). Run with `python -m pytest -m loop`.
"""

import time

import dagster as dg
import pytest

from census_assets.automation.labels import DECAY_EPISODE_TAG, RETRAIN_REASON_TAG
from census_assets_tests.harness.dagster import REPO_DAGSTER_YAML, dagster_deployment
from census_assets_tests.harness.runner import failure_messages
from census_assets_tests.harness.waiting import wait_for
from census_assets_tests.scenarios.loop_world import (
    BATCH_ROWS,
    SHIFTED_BATCHES,
    SOURCE_ROWS,
    holdout_rows,
    marked,
    marry_later,
    open_world,
    predict_accuracy,
)

pytestmark = [pytest.mark.loop, pytest.mark.slow]

WAIT_S = 400
SENSOR_INTERVAL_S = "2"


def check_results(instance: dg.DagsterInstance, check: str) -> dict[str, bool]:
    """partition -> whether the latest evaluation of `check` passed."""
    records = instance.event_log_storage.get_logs_for_all_runs_by_log_id(
        after_cursor=-1, dagster_event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=10_000
    )
    results = {}
    for _, entry in sorted(records.items()):
        evaluation = entry.dagster_event.event_specific_data
        if evaluation.check_name == check:
            results[evaluation.partition] = evaluation.passed
    return results


def test_concept_shift_story_with_a_real_daemon(tmp_path, bundled_raw):
    source = tmp_path / "source.parquet"
    bundled_raw.sample(SOURCE_ROWS, random_state=0).to_parquet(source, index=False)
    (tmp_path / "world").mkdir()
    world = open_world(tmp_path / "world", source)
    trained = world.train()  # model A, in this process: the daemon's instance starts without it
    assert trained.success, failure_messages(trained)
    version_a = world.registry().production()["version"]
    rows = marry_later(holdout_rows())
    for index in range(SHIFTED_BATCHES):
        batch = marked(rows.iloc[index * BATCH_ROWS : (index + 1) * BATCH_ROWS].reset_index(drop=True), index)
        world.drop(f"batch{index}.csv", batch, batch[["marital_status"]])
    env = {
        **world.env,
        "CENSUS_INBOX_INTERVAL_SECONDS": SENSOR_INTERVAL_S,
        "CENSUS_ALERT_INTERVAL_SECONDS": SENSOR_INTERVAL_S,
    }
    with dagster_deployment(tmp_path / "deployment", REPO_DAGSTER_YAML, env) as deployment:
        details = deployment.log_tails
        deployment.start_sensor("census_inbox")
        deployment.start_sensor("census_labels")
        with dg.DagsterInstance.from_config(str(deployment.home)) as instance:

            def measured():
                latest = instance.get_latest_storage_id_by_partition(
                    dg.AssetKey("batch_performance"), dg.DagsterEventType.ASSET_MATERIALIZATION
                )
                return len(latest) == SHIFTED_BATCHES

            wait_for(measured, WAIT_S, what="every batch scored and measured", details=details)
            for name in world.batches:
                performance = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=dg.AssetKey("batch_performance"), asset_partitions=[name]),
                    limit=1,
                ).records[0]
                accuracy = performance.asset_materialization.metadata["accuracy"].value
                assert accuracy == pytest.approx(predict_accuracy(world, name, tmp_path), abs=1e-12)
                assert performance.asset_materialization.metadata["model_version"].value == version_a
            wait_for(lambda: len(check_results(instance, "performance_within_limit")) == SHIFTED_BATCHES, 60,
                     what="every batch checked", details=details)  # fmt: skip
            assert not any(check_results(instance, "performance_within_limit").values())  # the labels moved
            assert all(check_results(instance, "batch_drift").values())  # the inputs did not

            deployment.start_sensor("census_performance_decay")

            def retrained():
                runs = instance.get_runs(dg.RunsFilter(tags={RETRAIN_REASON_TAG: "performance_decay"}))
                return runs if runs and all(run.is_finished for run in runs) else None

            [run] = wait_for(retrained, WAIT_S, what="the retraining requested and finished", details=details)
            assert run.status == dg.DagsterRunStatus.SUCCESS and run.job_name == "census_pipeline"
            assert run.tags[DECAY_EPISODE_TAG].startswith("decay:")
            record = world.registry().production()
            assert record["previous_version"] == version_a and record["run_id"] == run.run_id
            evidence = record["evidence"]
            assert evidence["evaluation_rows"]["kind"] == "window" and evidence["comparison"]["ci_low"] > 0
            # More ticks: the episode ended with the promotion, and no failure came after it.
            ticked = deployment.sensor_state("census_performance_decay").get("lastTickTimestamp", 0)
            wait_for(
                lambda: deployment.sensor_state("census_performance_decay").get("lastTickTimestamp", 0) > ticked + 2,
                60, what="two more decay ticks", details=details,
            )  # fmt: skip
            time.sleep(1)
            runs = instance.get_runs(dg.RunsFilter(tags={RETRAIN_REASON_TAG: "performance_decay"}))
            assert len(runs) == 1
