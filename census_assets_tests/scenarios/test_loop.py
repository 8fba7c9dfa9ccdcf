"""The label loop through the real code location, in this process: labels come back for scored
batches, batch_performance measures them, the decay sensor asks for one retraining, and the
retraining is judged against the champion on the evaluation window's rows. Run alone with
`python -m pytest -m loop` (the daemon story is test_loop_daemon.py).

The world: model A trained on 10,000 rows of the bundled table; then adult.test rows arrive as
batches. In the shifted world people marry later: every married person aged 22-40 is
`Never-married` (a learnable concept shift: the inputs do not move, the labels do). In the control
world nothing shifts. Each world is a copy of the storage and instance A left. The accuracy
threshold is 0.7: training data that mixes the old world (the source) with the new one (the
labelled batches) has contradicting labels, so neither its CV accuracy nor the retrained model's
accuracy on today's rows reaches the default 0.8, however much better than A it is.
"""

import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from census_assets.assets.labelled_rows import PERFORMANCE_FOLDER
from census_assets.automation.labels import (
    DECAY_EPISODE_TAG,
    RETRAIN_REASON_TAG,
    build_decay_sensor,
    build_labels_sensor,
)
from census_assets.resources.notifier import AlertNotifier
from census_assets.storage.codecs import codec_for
from census_assets.storage.commits import ArtifactKey, load_committed
from census_assets.storage.objects import open_store
from census_assets_tests.harness.runner import (
    TRAINING_CHAIN,
    check_evaluations,
    failure_messages,
    materialized,
)
from census_assets_tests.harness.sensors import SensorTicks
from census_assets_tests.scenarios.loop_world import (
    BATCH_ROWS,
    CONTROL_BATCHES,
    FOLD_FIGURES,
    MARKER,
    SHIFTED_BATCHES,
    SOURCE_ROWS,
    THRESHOLD,
    World,
    holdout_rows,
    marked,
    marry_later,
    open_world,
    predict_accuracy,
)

pytestmark = pytest.mark.loop


@pytest.fixture(scope="module")
def model_a(tmp_path_factory, bundled_raw):
    """Storage and instance with model A in production (and nothing labelled yet)."""
    root = tmp_path_factory.mktemp("loop") / "a"
    root.mkdir()
    source = root.parent / "source.parquet"
    bundled_raw.sample(SOURCE_ROWS, random_state=0).to_parquet(source, index=False)
    world = open_world(root, source)
    result = world.train()
    assert result.success, failure_messages(result)
    world.instance.dispose()
    return {"root": root, "source": source, "run": result, "version": world.registry().production()["version"]}


def world_from(model_a, target: Path) -> World:
    shutil.copytree(model_a["root"], target)
    return open_world(target, model_a["source"])


def score_and_measure(world: World, names) -> dict[str, dg.ExecuteInProcessResult]:
    measured = {}
    for name in names:
        assert world.run_partition("score_batches", name).success
        measured[name] = world.run_partition("measure_performance", name)
    return measured


@pytest.fixture(scope="module")
def shifted(model_a, tmp_path_factory):
    """Six batches of the shifted world, scored by A and measured against their labels."""
    world = world_from(model_a, tmp_path_factory.mktemp("shifted") / "world")
    rows = marry_later(holdout_rows())
    for index in range(SHIFTED_BATCHES):
        batch = marked(rows.iloc[index * BATCH_ROWS : (index + 1) * BATCH_ROWS].reset_index(drop=True), index)
        world.drop(f"batch{index}.csv", batch, batch[["marital_status"]])
    measured = score_and_measure(world, sorted(world.batches))
    return world, measured


@pytest.fixture(scope="module")
def control(model_a, tmp_path_factory):
    """Two unshifted batches, scored by A and measured."""
    world = world_from(model_a, tmp_path_factory.mktemp("control") / "world")
    rows = holdout_rows().iloc[12_000:]
    for index in range(CONTROL_BATCHES):
        batch = marked(rows.iloc[index * BATCH_ROWS : (index + 1) * BATCH_ROWS].reset_index(drop=True), 50 + index)
        world.drop(f"control{index}.csv", batch, batch[["marital_status"]])
    measured = score_and_measure(world, sorted(world.batches))
    return world, measured


# ---- measuring -----------------------------------------------------------------------------------


def test_shift_is_measured_as_predict_and_the_labels_say_while_drift_stays_green(shifted, tmp_path):
    world, measured = shifted
    for name, result in measured.items():
        assert result.success, failure_messages(result)
        metadata = world.performance(name)
        assert metadata["accuracy"] == pytest.approx(predict_accuracy(world, name, tmp_path), abs=1e-12)
        assert metadata["labelled_rows"] == BATCH_ROWS and metadata["label_coverage"] == 1.0
        assert metadata["accuracy_ci_low"] < metadata["accuracy"] < metadata["accuracy_ci_high"]
        assert metadata["model_version"] == world.registry().production()["version"]
        for group in ("sex=Female", "sex=Male", "race=White"):
            assert 0 < metadata[f"accuracy {group}"] < 1
        check = check_evaluations(result)["performance_within_limit"]
        assert not check.passed and "is below" in check.description
    drift = world.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("scored_batch")), limit=SHIFTED_BATCHES
    ).records
    assert all(r.asset_materialization.metadata["max_psi"].value < 0.1 for r in drift)  # the inputs did not move
    published = open_store(str(world.storage)).read(f"{PERFORMANCE_FOLDER}/batch0.csv.parquet")
    assert published  # the labelled rows, readable without this package


def test_estimated_accuracy_sees_input_shift_not_label_shift(shifted, control):
    for world, measured in (control, shifted):
        for name in measured:
            metadata = world.performance(name)
            half_width = (metadata["accuracy_ci_high"] - metadata["accuracy_ci_low"]) / 2
            error = abs(metadata["estimate_error"])
            assert metadata["estimate_error"] == pytest.approx(metadata["estimated_accuracy"] - metadata["accuracy"])
            if world is control[0]:
                assert error <= half_width, (name, metadata["estimated_accuracy"], metadata["accuracy"])
            else:
                assert metadata["estimate_error"] > 3 * half_width  # the estimate cannot see the label shift


def test_control_batches_pass_the_performance_check(control):
    _, measured = control
    for result in measured.values():
        check = check_evaluations(result)["performance_within_limit"]
        assert check.passed and "reaches" in check.description


def test_performance_summary_puts_estimate_realized_and_drift_side_by_side(shifted):
    world, _ = shifted
    result = world.train(selection=["performance_summary"])
    assert result.success, failure_messages(result)
    [table] = [e for e in result.asset_materializations_for_node("performance_summary")]
    metadata = {name: value.value for name, value in table.metadata.items()}
    assert metadata["batches_scored"] == metadata["batches_labelled"] == SHIFTED_BATCHES
    below = [name for name in world.batches if world.performance(name)["accuracy_ci_high"] < float(THRESHOLD)]
    assert metadata["batches_below_threshold"] == len(below)
    assert "accuracy_and_drift_over_time" in metadata and "estimated_accuracy" in metadata["batches_table"]


# ---- retraining ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def retrained(shifted):
    """The decay sensor's first tick, and the retraining it requests run as census_pipeline would."""
    world, _ = shifted
    tick = decay_sensor(world, RecordingNotifier()).tick
    [request] = tick().run_requests
    result = world.train(tags=request.tags)
    return world, tick, request, result


class RecordingNotifier(AlertNotifier):
    """The notifier, keeping what it is asked to send."""

    def send(self, alert: dict) -> str:
        SENT.append(alert)
        return "recorded"


SENT: list[dict] = []


def decay_sensor(world: World, notifier: AlertNotifier) -> SensorTicks:
    """census_performance_decay evaluated tick after tick, its cursor carried over."""
    resources = {"model_registry": world.registry(), "notifier": notifier}
    return SensorTicks(build_decay_sensor(), world.instance, resources)


def test_decay_requests_one_retraining_that_says_why(retrained):
    world, tick, request, _ = retrained
    assert request.tags[RETRAIN_REASON_TAG] == "performance_decay"
    assert request.tags["census/decayed_batch"] in world.batches
    assert "is below" in request.tags["census/decay"]
    assert request.tags[DECAY_EPISODE_TAG] == request.run_key


def test_the_learnable_shift_is_promoted_on_the_windows_rows(retrained, model_a):
    world, _, _, result = retrained
    assert result.success, failure_messages(result)
    metadata = materialized(result)
    raw = metadata["raw_census"]
    # Default window (5,000 rows): the 3 newest label revisions judge, the 3 older ones train.
    assert (raw["evaluation_window_batches"], raw["evaluation_window_rows"]) == (3, 3 * BATCH_ROWS)
    assert raw["labelled_batches_in_training"] == 3 and raw["dagster/row_count"] == SOURCE_ROWS + 3 * BATCH_ROWS
    holdout = metadata["holdout_metrics"]
    assert holdout["split"] == "evaluation window" and holdout["champion_version"] == model_a["version"]
    assert holdout["accuracy_difference_ci_low"] > 0.03  # better on today's data, beyond doubt
    record = world.registry().production()
    assert record["previous_version"] == model_a["version"]
    evidence = record["evidence"]
    assert evidence["champion_version"] == model_a["version"]
    assert evidence["comparison"]["ci_low"] == holdout["accuracy_difference_ci_low"]
    assert evidence["comparison"]["challenger_accuracy"] == holdout["accuracy"]
    window = {batch["partition"] for batch in evidence["evaluation_rows"]["batches"]}
    assert len(window) == 3 and evidence["evaluation_rows"]["kind"] == "window"


def test_no_window_row_reaches_training(retrained):
    world, _, _, result = retrained
    store = open_store(str(world.storage))
    raw = load_committed(store, ArtifactKey("raw_census"), codec_for(pd.DataFrame), (result.run_id,))
    evidence = world.registry().production()["evidence"]
    window = {batch["partition"] for batch in evidence["evaluation_rows"]["batches"]}
    trained = set(raw[MARKER])
    for name, rows in world.batches.items():
        present = set(rows[MARKER]) & trained
        if name in window:
            assert not present, f"{len(present)} row(s) of window batch {name} reached training"
        else:
            assert present == set(rows[MARKER]), name  # a training batch: every labelled row
    version = world.registry().production()["version"]
    recorded = {batch["partition"] for batch in world.registry().read_json(version, "training_metrics.json")
                ["training_batches"]}  # fmt: skip
    assert recorded == set(world.batches) - window


def test_a_larger_window_leaves_out_what_the_champion_trained_on_and_a_refusal_alerts_once(retrained):
    world, tick, _, _ = retrained
    assert tick().run_requests == []  # production moved: the episode ended; no failure since
    # Labels revised after the promotion: batch0 measured again (still scored by A) fails again.
    revised = world.batches["batch0.csv"][["marital_status"]].assign(
        marital_status=lambda frame: frame["marital_status"].where(np.arange(len(frame)) % 2 == 0, "")
    )
    before = world.performance("batch0.csv")
    revised.to_csv(world.root / "labels" / "batch0.csv", index=False)
    measured = world.run_partition("measure_performance", "batch0.csv")
    assert not check_evaluations(measured)["performance_within_limit"].passed
    after = world.performance("batch0.csv")
    assert after["labelled_rows"] == BATCH_ROWS / 2 and after["label_coverage"] == 0.5  # empty cells: not labelled
    assert after["label_revision"] != before["label_revision"]  # a new revision, committed now
    assert after["label_committed_at"] > before["label_committed_at"]
    assert after["first_scores_run"] == before["first_scores_run"]  # against the same first scores
    [request] = tick().run_requests  # a new episode
    # A window of every labelled row: the 3 batches the champion trained on are left out, and the
    # challenger (trained on the source alone) is refused against it.
    result = world.train(evaluation={"evaluation_window_rows": 12_000}, tags=request.tags)
    holdout = materialized(result)["holdout_metrics"]
    champion = world.registry().production()["version"]
    record = world.registry().read_json(champion, "training_metrics.json")
    trained = [batch["partition"] for batch in record["training_batches"]]
    assert holdout["evaluation_rows_left_out"] == sum(world.performance(name)["labelled_rows"] for name in trained)
    assert "left out" in holdout["evaluation_rows"] and holdout["champion_version"] == champion
    check = check_evaluations(result)["challenger_beats_champion"]
    assert not check.passed and "lower bound <" in check.description
    assert world.registry().production()["version"] == champion
    SENT.clear()
    assert tick().run_requests == [] and tick().run_requests == []  # the retraining ended: alert, once
    [alert] = SENT
    assert alert["kind"] == "performance_decay_not_promoted" and alert["retraining_run_id"] == result.run_id


# ---- the graph with and without labels -----------------------------------------------------------


def test_a_window_holding_every_labelled_row_leaves_training_as_it_was(control, model_a):
    """Two control batches (4,000 rows) fit in the default window: raw_census is the source alone,
    with the same fold scores as model A's run, which had no labelled batch at all."""
    world, _ = control
    result = world.train(selection=list(TRAINING_CHAIN))
    assert result.success, failure_messages(result)
    raw = materialized(result)["raw_census"]
    assert raw["evaluation_window_rows"] == 2 * BATCH_ROWS and raw["labelled_batches_in_training"] == 0
    folds = [
        {name: record.asset_materialization.metadata[name].value for name in FOLD_FIGURES}
        for record in world.instance.fetch_materializations(dg.AssetKey("cv_accuracy"), limit=2).records
    ]
    assert folds[0] == folds[1]  # this run's, and model A's (copied with the instance)
    assert "labelled_batches" not in materialized(model_a["run"])["raw_census"]


def test_bad_label_files_fail_only_their_partition_and_are_named_in_raw_census(control):
    world, _ = control
    rows = holdout_rows().iloc[:BATCH_ROWS]
    world.drop("bad.csv", rows, rows[["marital_status"]].iloc[:-1])  # one label short
    assert world.run_partition("score_batches", "bad.csv").success
    result = world.run_partition("measure_performance", "bad.csv")
    assert not result.success
    assert "has 1999 row(s) but the batch has 2000" in failure_messages(result)["batch_performance"]
    raw = materialized(world.train(selection=["raw_census"]))["raw_census"]
    assert "bad.csv" in raw["labelled_batches_left_out"] and "1999" in raw["labelled_batches_left_out"]["bad.csv"]


def test_labels_sensor_takes_stable_label_files_of_scored_batches_and_refuses_odd_entries(control, tmp_path):
    world, _ = control
    labels = world.root / "labels"
    (labels / "unscored.csv").write_text("marital_status\nDivorced\n")
    (labels / "link.csv").symlink_to(labels / "control0.csv")
    defs = world.definitions
    sensor = SensorTicks(build_labels_sensor(), world.instance, {"labels": defs.resources["labels"]}, defs)
    results = [sensor.tick() for _ in range(3)]
    measuring = [{r.partition_key for r in t.run_requests if r.job_name == "measure_performance"} for t in results]
    # Seen once: a local file may still be being written. The measuring done so far: summarised.
    assert measuring[0] == set() and [r.job_name for r in results[0].run_requests] == ["summarize_performance"]
    assert {"control0.csv", "control1.csv"} <= measuring[1] and "unscored.csv" not in measuring[1]
    assert results[2].run_requests == []  # nothing new
    assert "waiting for their batch to be scored (unscored.csv)" in results[2].skip_message
    assert "link.csv: a symbolic link" in results[2].skip_message


def test_a_changed_batch_voids_its_labels_until_they_arrive_again(control):
    world, _ = control
    changed = holdout_rows().iloc[:500]
    world.drop("control1.csv", changed)  # new content under the same name, its old labels left as they were
    assert world.run_partition("score_batches", "control1.csv").success
    left_out = materialized(world.train(selection=["raw_census"]))["raw_census"]["labelled_batches_left_out"]
    assert "its content changed since its labels were matched" in left_out["control1.csv"]
    stale = world.run_partition("measure_performance", "control1.csv")  # the old file cannot match the new rows
    assert "has 2000 row(s) but the batch has 500" in failure_messages(stale)["batch_performance"]
    changed[["marital_status"]].to_csv(world.root / "labels" / "control1.csv", index=False)
    assert world.run_partition("measure_performance", "control1.csv").success
    raw = materialized(world.train(selection=["raw_census"]))["raw_census"]
    assert "control1.csv" not in raw.get("labelled_batches_left_out", {})
    assert raw["evaluation_window_rows"] == BATCH_ROWS + 500
