"""The model's life after training, through the real graph: promotion, rollback, drift, scoring,
automation and alerts. Run alone with `python -m pytest -m lifecycle`.

One module-scoped history of pipeline runs (in-process, harness.runner, CV cut to one repeat of
5 folds for speed) serves most tests; tests that change the storage work on copies of it.
"""

import shutil
import subprocess

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from census_assets import cli as census_cli
from census_assets.alerts.sensors import run_failure_alert_sensor
from census_assets.assets.specs import GATED_EAGER
from census_assets.automation.jobs import census_pipeline
from census_assets.automation.schedules import weekly_retrain
from census_assets.automation.sensors import census_source_changed
from census_assets.core.features import split_target
from census_assets.core.promotion import model_version
from census_assets.core.scoring import PROBABILITY, score
from census_assets.core.training import TrainedModel
from census_assets.definitions import build_definitions
from census_assets.resources.notifier import AlertNotifier
from census_assets.resources.source import CensusSource
from census_assets.settings import load_environment
from census_assets.storage.codecs import codec_for
from census_assets.storage.commits import ArtifactKey, load_committed, load_published
from census_assets.storage.objects import open_store
from census_assets.storage.registry import Registry
from census_assets_tests.harness.processes import console_command
from census_assets_tests.harness.runner import (
    ONE_CV_REPEAT,
    check_evaluations,
    failure_context,
    failure_messages,
    materialized,
    run_graph,
    step_failure_message,
)
from census_assets_tests.harness.webhook import Recorder

pytestmark = pytest.mark.lifecycle
census_run_failure_alert = run_failure_alert_sensor()

REGISTRY_PATHS = ("models", "promotions", "production.json")


def environment(storage, source="bundled", threshold=0.8) -> dict:
    return {
        "CENSUS_STORAGE_URL": str(storage),
        "CENSUS_SOURCE": str(source),
        "CENSUS_ACCURACY_THRESHOLD": str(threshold),
    }


def definitions(storage, source="bundled", threshold=0.8) -> dg.Definitions:
    return build_definitions(load_environment(environment(storage, source, threshold)))


def run(storage, source="bundled", threshold=0.8, tolerance=0.0, instance=None, selection=None):
    """The whole graph (or `selection`) in this process, on one repeat of the CV."""
    return run_graph(
        environment(storage, source, threshold),
        selection=selection,
        instance=instance,
        training=ONE_CV_REPEAT,
        lifecycle={"champion_tolerance": tolerance},
    )


def registry(storage) -> Registry:
    return Registry(open_store(str(storage)))


def registry_snapshot(storage) -> dict:
    """Relative path -> bytes of everything the registry owns."""
    files = {}
    for name in REGISTRY_PATHS:
        root = storage / name
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        files.update({str(p.relative_to(storage)): p.read_bytes() for p in paths})
    return files


def copy_storage(source, target):
    shutil.copytree(source, target)
    return target


def cli(*args) -> subprocess.CompletedProcess:
    """`census-assets ...` in a process of its own, as a user runs it."""
    command = console_command("census-assets", "census_assets.cli")
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120)


def shuffled_ages(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Same marginals (no drift), but age no longer goes with its row: a crippled model."""
    return frame.assign(age=np.random.default_rng(seed).permutation(frame["age"].to_numpy()))


@pytest.fixture(scope="module")
def sources(tmp_path_factory, bundled_raw):
    """Samples of the bundled table (small, so the runs are quick): crippled, shifted, unshifted."""
    root = tmp_path_factory.mktemp("sources")
    sample = bundled_raw.sample(8000, random_state=0)
    frames = {
        "crippled": shuffled_ages(sample, 0),
        "crippled_again": shuffled_ages(bundled_raw.sample(8000, random_state=1), 1),
        "shifted": sample.assign(age=sample["age"] + 15),
        "unshifted": sample,
    }
    paths = {}
    for name, frame in frames.items():
        paths[name] = root / f"{name}.parquet"
        frame.to_parquet(paths[name], index=False)
    return paths


@pytest.fixture(scope="module")
def lineage(tmp_path_factory, sources):
    """A: a crippled first model; B: the normal, better model; C: another crippled, worse model.

    The crippled runs lower the accuracy threshold to 0.6 so that only champion/challenger can
    stop them, not the gate.
    """
    root = tmp_path_factory.mktemp("lineage")
    storage = root / "storage"
    out = {"storage": storage}
    out["A"] = run(storage, sources["crippled"], threshold=0.6)
    out["version_A"] = registry(storage).production()["version"]
    out["B"] = run(storage)
    out["version_B"] = registry(storage).production()["version"]
    out["after_B"] = copy_storage(storage, root / "after_B")
    out["before_C"] = registry_snapshot(storage)
    out["C"] = run(storage, sources["crippled_again"], threshold=0.6)
    return out


def test_first_model_is_promoted(lineage):
    result = lineage["A"]
    assert result.success
    assert check_evaluations(result)["challenger_beats_champion"].passed
    history = registry(lineage["after_B"]).history()
    assert history[0]["action"] == "promote" and history[0]["version"] == lineage["version_A"]
    assert history[0]["previous_version"] is None
    assert 0.6 <= history[0]["metrics"]["cv_accuracy"] < 0.8  # crippled indeed


def test_better_model_is_promoted_with_history_in_metadata(lineage):
    result = lineage["B"]
    assert result.success and lineage["version_B"] != lineage["version_A"]
    pointer = registry(lineage["after_B"]).production()
    assert pointer["previous_version"] == lineage["version_A"]
    assert pointer["metrics"]["cv_accuracy"] > 0.82
    assert pointer["run_id"] == result.run_id
    meta = materialized(result)["production_model"]
    assert meta["version"] == lineage["version_B"] and meta["promotions"] == 2
    assert lineage["version_A"] in meta["promotion_history"]
    # The version directory holds the model in open formats, the drift reference, the model card
    # with its reliability diagrams (per group column), the rows it trained on and the record of
    # its build, and a manifest.
    files = {p.name for p in (lineage["after_B"] / "models" / lineage["version_B"]).iterdir()}
    assert files == {
        "model.txt", "model.json", "model.vocabulary.json", "model.importance.png",
        "reference_profile.json", "training_metrics.json", "manifest.json",
        "model_card.md", "model_card.json", "reliability_sex.png", "reliability_race.png",
        "training_raw.parquet", "build.json",
    }  # fmt: skip


def test_worse_model_is_not_promoted_and_nothing_changes(lineage):
    result = lineage["C"]
    check = check_evaluations(result)["challenger_beats_champion"]
    # Judged on the same held-out rows as the champion: its paired interval reaches far below -tolerance.
    assert not check.passed and "on the same" in check.description and "lower bound <" in check.description
    assert not result.success  # a failed blocking check fails the run: the alert sensor sees it
    assert "lgbm_model" in materialized(result)  # training itself went ahead
    assert "production_model" not in materialized(result)
    assert registry_snapshot(lineage["storage"]) == lineage["before_C"]
    assert registry(lineage["storage"]).production()["version"] == lineage["version_B"]


def test_production_model_alone_refuses_the_worse_model(lineage):
    """A blocking check guards only its own run: the asset re-makes the decision itself."""
    result = run(lineage["storage"], threshold=0.6, selection=["production_model"])
    assert not result.success
    message = step_failure_message(result, "production_model")
    assert "not promoting lgbm_model" in message and "lower bound <" in message
    assert registry_snapshot(lineage["storage"]) == lineage["before_C"]


def test_holdout_metrics_overall_and_per_group(lineage):
    meta = materialized(lineage["B"])["holdout_metrics"]
    assert abs(meta["accuracy"] - meta["cv_accuracy"]) < 0.02  # near the CV accuracy
    assert 0.85 < meta["roc_auc"] < 1 and 0 < meta["log_loss"] < 0.6
    cells = ("true_negative", "false_positive", "false_negative", "true_positive")
    assert sum(meta[cell] for cell in cells) == meta["rows"]
    for group in ("sex=Female", "sex=Male", "race=White", "race=Black"):
        assert isinstance(meta[f"accuracy {group}"], float)
        assert isinstance(meta[f"roc_auc {group}"], float)
    assert "predicted 1" in meta["confusion_matrix"]


def test_scored_census_scores_every_held_out_row(lineage):
    meta = materialized(lineage["B"])["scored_census"]
    assert meta["model_version"] == lineage["version_B"]
    assert meta["scored_rows"] == 16281 and meta["flagged_rows"] == 0
    assert abs(meta["accuracy_vs_label"] - materialized(lineage["B"])["holdout_metrics"]["accuracy"]) < 0.001


def test_predict_has_no_train_serve_skew(lineage, bundled_raw, tmp_path):
    """The training rows through `census-assets predict` get the in-pipeline model's predictions."""
    storage = lineage["after_B"]
    source = tmp_path / "train.parquet"
    bundled_raw.to_parquet(source, index=False)
    output = tmp_path / "scored.parquet"
    done = cli("predict", "--input", str(source), "--output", str(output), "--storage", str(storage))
    assert done.returncode == 0, done.stderr
    scored = pd.read_parquet(output)
    assert len(scored) == len(bundled_raw)
    assert list(scored.columns[: len(bundled_raw.columns)]) == list(bundled_raw.columns)

    # The pipeline's own artifacts: features.parquet and the model lgbm_model.txt of run B.
    model = load_published(open_store(str(storage)), ArtifactKey("lgbm_model"), codec_for(TrainedModel))
    X, _ = split_target(pd.read_parquet(storage / "features.parquet"))
    kept = bundled_raw.dropna().drop_duplicates().index  # the rows training kept, in order
    assert np.array_equal(scored[PROBABILITY].to_numpy()[kept], model.predict_proba(X))
    assert scored[PROBABILITY].notna().all()  # duplicates dropped by training are scored too


def test_rollback_moves_only_the_pointer_and_predict_follows(lineage, bundled_raw, tmp_path):
    storage = copy_storage(lineage["after_B"], tmp_path / "storage")
    version_a, version_b = lineage["version_A"], lineage["version_B"]
    models_before = {k: v for k, v in registry_snapshot(storage).items() if k.startswith("models/")}

    done = cli("rollback", "--version", version_a, "--reason", "test", "--storage", str(storage))
    assert done.returncode == 0, done.stderr
    assert f"production now {version_a} (was {version_b})" in done.stdout
    assert registry(storage).production()["version"] == version_a
    assert {k: v for k, v in registry_snapshot(storage).items() if k.startswith("models/")} == models_before
    assert [r["action"] for r in registry(storage).history()] == ["promote", "promote", "rollback"]
    listed = cli("history", "--storage", str(storage))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[1:3] for line in lines[:-1]] == [
        ["promote", version_a], ["promote", version_b], ["rollback", version_a]
    ]
    assert lines[-1] == f"production: {version_a}"

    rows = tmp_path / "rows.csv"
    bundled_raw.head(200).to_csv(rows, index=False)
    output = tmp_path / "scored.csv"
    done = cli("predict", "--input", str(rows), "--output", str(output), "--storage", str(storage))
    assert done.returncode == 0 and version_a in done.stdout, done.stderr
    reg = registry(storage)
    expected = {
        v: score(bundled_raw.head(200), m.predict_proba, m.vocabulary).frame[PROBABILITY].to_numpy()
        for v in (version_a, version_b)
        if (m := reg.load(v))
    }
    got = pd.read_csv(output)[PROBABILITY].to_numpy()
    assert np.allclose(got, expected[version_a], rtol=0, atol=1e-12)
    assert not np.allclose(got, expected[version_b], atol=1e-3)



def test_rollback_job_moves_the_pointer_and_shows_it_on_production_model(lineage, tmp_path):
    storage = copy_storage(lineage["after_B"], tmp_path / "storage")
    job = definitions(storage).resolve_job_def("rollback_production")

    def rollback(version):
        config = {"ops": {"rollback_production_model": {"config": {"version": version, "reason": "ui"}}}}
        return job.execute_in_process(run_config=config, raise_on_error=False)

    result = rollback(lineage["version_A"])
    assert result.success
    [event] = result.asset_materializations_for_node("rollback_production_model")
    assert event.asset_key == dg.AssetKey("production_model")
    assert event.metadata["action"].value == "rollback" and event.metadata["promotions"].value == 3
    assert registry(storage).production()["version"] == lineage["version_A"]

    before = registry_snapshot(storage)
    refused = rollback("nope")
    assert not refused.success and "never promoted" in step_failure_message(refused, "rollback_production_model")
    assert registry_snapshot(storage) == before


def bad_inputs(tmp_path, rows: pd.DataFrame) -> dict:
    paths = {name: tmp_path / f"{name}.csv" for name in ("missing_column", "text_age", "header_only", "empty")}
    rows.drop(columns="occupation").to_csv(paths["missing_column"], index=False)
    rows.assign(age="forty").to_csv(paths["text_age"], index=False)
    rows.head(0).to_csv(paths["header_only"], index=False)
    paths["empty"].write_bytes(b"")
    return paths


@pytest.mark.parametrize(
    "name, message",
    [
        ("missing_column", "missing required column(s): occupation"),
        ("text_age", "column 'age' must be integer, got object, e.g. 'forty'"),
        ("header_only", "the table has no rows"),
        ("empty", "is empty (not even a header row)"),
    ],
)
def test_predict_refuses_bad_input_clearly(lineage, bundled_raw, tmp_path, capsys, name, message):
    path = bad_inputs(tmp_path, bundled_raw.head(20))[name]
    output = tmp_path / "out.csv"
    code = census_cli.main(
        ["predict", "--input", str(path), "--output", str(output), "--storage", str(lineage["after_B"])]
    )
    assert code == 2 and message in capsys.readouterr().err
    assert not output.exists()  # nothing written on error


def test_predict_flags_unseen_categories_or_refuses_them_with_strict(lineage, bundled_raw, tmp_path, capsys):
    rows = bundled_raw.head(5).copy()
    rows.loc[1, "occupation"] = " Astronaut"
    path, output = tmp_path / "rows.parquet", tmp_path / "out.parquet"
    rows.to_parquet(path, index=False)
    storage = ["--storage", str(lineage["after_B"])]
    assert census_cli.main(["predict", "--input", str(path), "--output", str(output), *storage]) == 0
    assert "unseen occupation categories" in capsys.readouterr().err
    scored = pd.read_parquet(output)
    assert scored["scoring_flag"].tolist() == ["", "unseen occupation=Astronaut", "", "", ""]
    assert scored[PROBABILITY].notna().all()

    strict = tmp_path / "strict.parquet"
    assert census_cli.main(["predict", "--input", str(path), "--output", str(strict), "--strict", *storage]) == 2
    assert "Astronaut" in capsys.readouterr().err and not strict.exists()


def test_cli_errors_without_a_model_or_with_an_unknown_version(lineage, bundled_raw, tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    bundled_raw.head(5).to_csv(rows, index=False)
    empty = ["--storage", str(tmp_path / "nothing")]
    assert census_cli.main(["predict", "--input", str(rows), "--output", str(tmp_path / "o.csv"), *empty]) == 2
    assert "no production model" in capsys.readouterr().err
    assert census_cli.main(["rollback", "--version", "nope", "--storage", str(lineage["after_B"])]) == 2
    assert "never promoted" in capsys.readouterr().err
    assert census_cli.main(["predict", "--input", str(rows), "--output", str(tmp_path / "o.xlsx"), *empty]) == 2
    assert "cannot tell the format" in capsys.readouterr().err


@pytest.fixture(scope="module")
def drift_runs(lineage, sources, tmp_path_factory):
    """After model B: a run on ages +15, then one on an unshifted copy of the same data.

    A tolerance of 1.0 and a threshold of 0.5 take champion/challenger out of the way (a model
    fitted on shifted ages scores below 0.8 on the real held-out rows): only drift can block.
    """
    storage = copy_storage(lineage["after_B"], tmp_path_factory.mktemp("drift") / "storage")
    instance = dg.DagsterInstance.ephemeral()
    out = {"storage": storage, "instance": instance}
    out["pointer_before"] = (storage / "production.json").read_bytes()
    out["shifted"] = run(storage, sources["shifted"], threshold=0.5, tolerance=1.0, instance=instance)
    out["pointer_after_shifted"] = (storage / "production.json").read_bytes()
    out["unshifted"] = run(storage, sources["unshifted"], threshold=0.5, tolerance=1.0, instance=instance)
    return out


def test_shifted_data_fails_the_drift_check_and_blocks_promotion(drift_runs, lineage):
    result = drift_runs["shifted"]
    found = check_evaluations(result)
    assert not found["drift_within_limit"].passed and not found["drift_warning"].passed
    assert "age" in found["drift_within_limit"].description
    assert found["challenger_beats_champion"].passed  # so drift alone blocked it
    assert "lgbm_model" in materialized(result)  # drift blocks promotion, not training
    assert "production_model" not in materialized(result)
    assert drift_runs["pointer_after_shifted"] == drift_runs["pointer_before"]
    meta = materialized(result)["drift"]
    assert meta["psi age"] > 0.25 and meta["worst_feature"] == "age"
    assert meta["by_feature"].splitlines()[2].split("|")[1].strip() == "age"  # the worst row first
    assert meta["reference_version"] == lineage["version_B"]


def test_unshifted_data_passes_and_is_promoted(drift_runs, lineage):
    result = drift_runs["unshifted"]
    found = check_evaluations(result)
    assert found["drift_within_limit"].passed and found["drift_warning"].passed
    meta = materialized(result)
    assert meta["drift"]["max_psi"] < 0.01
    assert result.success
    # What was promoted: the model this run trained, with its CV accuracy, after model B.
    store = open_store(str(drift_runs["storage"]))
    trained = load_committed(store, ArtifactKey("lgbm_model"), codec_for(TrainedModel), (result.run_id,))
    pointer = Registry(store).production()
    assert pointer["version"] == model_version(trained) == meta["production_model"]["version"]
    assert pointer["action"] == "promote" and pointer["run_id"] == result.run_id
    assert pointer["previous_version"] == lineage["version_B"]
    assert pointer["metrics"]["cv_accuracy"] == pytest.approx(meta["cv_accuracy"]["accuracy_mean"])
    assert meta["holdout_metrics"]["model_version"] == pointer["version"]  # evaluated before promotion
    assert Registry(store).history()[-1] == pointer


def test_the_same_model_again_is_not_a_new_promotion(drift_runs):
    storage = drift_runs["storage"]
    before = registry_snapshot(storage)
    # Decided again against the champion holdout_metrics compares with: now the model itself.
    result = run(storage, threshold=0.5, tolerance=1.0, selection=["holdout_metrics", "production_model"])
    assert result.success, failure_messages(result)
    assert materialized(result)["production_model"]["already_in_production"] is True
    assert registry_snapshot(storage) == before


def test_promotion_refuses_a_model_older_than_its_training_table(drift_runs, sources, tmp_path):
    """The drift reference is fitted on clean_census at promotion: it must be the model's own."""
    storage = copy_storage(drift_runs["storage"], tmp_path / "storage")
    instance = drift_runs["instance"]  # knows when lgbm_model and clean_census were materialised
    assert run(storage, sources["shifted"], instance=instance, selection=["raw_census", "clean_census"]).success
    before = registry_snapshot(storage)
    result = run(storage, threshold=0.5, tolerance=1.0, instance=instance, selection=["production_model"])
    assert not result.success
    assert "materialised after lgbm_model" in step_failure_message(result, "production_model")
    assert registry_snapshot(storage) == before


def test_run_failure_sensor_posts_a_clear_alert(drift_runs):
    hook = Recorder()
    try:
        context = failure_context(drift_runs["shifted"], drift_runs["instance"], AlertNotifier(webhook_url=hook.url))
        census_run_failure_alert(context)
    finally:
        hook.close()
    [alert] = hook.alerts
    assert alert["run_id"] == drift_runs["shifted"].run_id
    assert "drift:drift_within_limit" in alert["failed_checks"]
    assert "PSI above 0.25 for age" in alert["failed_checks"]["drift:drift_within_limit"]
    assert census_run_failure_alert.default_status == dg.DefaultSensorStatus.RUNNING


def test_run_failure_sensor_without_webhook_logs_and_names_the_error(tmp_path, caplog):
    instance = dg.DagsterInstance.ephemeral()
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"age": [1]}).to_csv(bad, index=False)
    result = run(tmp_path / "storage", bad, instance=instance)
    assert not result.success
    context = failure_context(result, instance, AlertNotifier())
    with caplog.at_level("INFO", logger="census_assets.alerts"):
        census_run_failure_alert(context)
    text = caplog.text
    assert "census run failed" in text and "raw_census" in text and "missing required column" in text
    assert "logged only" in text


def test_schedule_and_source_sensor_drive_the_whole_graph(tmp_path, bundled_raw):
    defs = definitions(tmp_path / "storage")
    job = defs.resolve_job_def(census_pipeline.name)
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"raw_census", "lgbm_model", "holdout_metrics", "drift", "production_model", "scored_census"} <= keys
    job_checks = {k.name for k in job.asset_layer.asset_graph.asset_check_keys}
    assert {"challenger_beats_champion", "drift_within_limit"} <= job_checks

    [request] = weekly_retrain.evaluate_tick(dg.build_schedule_context()).run_requests
    # A schedule's request names no job: it launches the schedule's own job.
    assert weekly_retrain.job_name == census_pipeline.name and request.job_name is None

    source = tmp_path / "census.csv"
    bundled_raw.head(50).to_csv(source, index=False)
    context = dg.build_sensor_context(cursor=None, resources={"source": CensusSource(uri=str(source))})
    [request] = census_source_changed.evaluate_tick(context).run_requests
    assert census_source_changed.job_name == census_pipeline.name


def with_condition(defs: dg.Definitions, asset: str, condition) -> dg.Definitions:
    return dg.Definitions(
        assets=dg.map_asset_specs(
            lambda spec: spec.replace_attributes(automation_condition=condition)
            if spec.key == dg.AssetKey(asset)
            else spec,
            list(defs.assets),
        ),
        asset_checks=list(defs.asset_checks),
        resources=defs.resources,
    )


def test_automation_does_not_request_the_model_after_a_failed_gate(tmp_path, bundled_raw):
    # A small source: the gate and the conditions do not care about size.
    source = tmp_path / "small.parquet"
    bundled_raw.head(1000).to_parquet(source, index=False)
    storage = tmp_path / "storage"
    gated = definitions(storage, source, threshold=0.99)
    model_spec = next(iter(gated.resolve_assets_def("lgbm_model").specs))
    assert model_spec.automation_condition == GATED_EAGER
    # The same graph with eager() alone on lgbm_model, to show the condition is what stops it.
    eager_only = with_condition(gated, "lgbm_model", dg.AutomationCondition.eager())
    instance = dg.DagsterInstance.ephemeral()
    # A first tick before anything ran, as the automation sensor would have made.
    cursors = {
        name: dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
        for name, defs in (("gated", gated), ("eager_only", eager_only))
    }

    result = run(storage, source, threshold=0.99, instance=instance)
    assert not check_evaluations(result)["cv_accuracy_meets_threshold"].passed
    assert "lgbm_model" not in materialized(result)

    tick = dg.evaluate_automation_conditions(defs=gated, instance=instance, cursor=cursors["gated"])
    for asset in ("lgbm_model", "holdout_metrics", "production_model", "scored_census"):
        assert tick.get_num_requested(dg.AssetKey(asset)) == 0, asset
    tick = dg.evaluate_automation_conditions(defs=eager_only, instance=instance, cursor=cursors["eager_only"])
    assert tick.get_num_requested(dg.AssetKey("lgbm_model")) == 1


@pytest.mark.gcp
def test_lifecycle_on_gcs(gcs_emulator, bundled_raw, tmp_path, capsys):
    """Promotion, drift, scoring and rollback with the artifacts and the registry on gs://
    (fake-gcs-server on loopback), on small samples so two models are quick to fit."""
    from google.cloud import storage as gcs

    gcs.Client().create_bucket("census-lifecycle")
    base = "gs://census-lifecycle/census"
    samples = {}
    for seed in (0, 1):
        samples[seed] = tmp_path / f"sample{seed}.parquet"
        bundled_raw.sample(4000, random_state=seed).to_parquet(samples[seed], index=False)

    first = run(base, samples[0], threshold=0.5, tolerance=1.0)
    assert first.success, [e.step_key for e in first.all_events if e.is_step_failure]
    second = run(base, samples[1], threshold=0.5, tolerance=1.0)
    assert second.success and materialized(second)["drift"]["max_psi"] < 0.1
    reg = registry(base)
    versions = [record["version"] for record in reg.history()]
    assert len(versions) == 2 and versions[0] != versions[1]
    assert reg.versions() == sorted(versions) and reg.production()["version"] == versions[1]
    assert reg.production()["path"] == f"{base}/models/{versions[1]}"
    assert materialized(second)["scored_census"]["model_version"] == versions[1]

    rows = tmp_path / "rows.csv"
    bundled_raw.head(20).to_csv(rows, index=False)
    storage = ["--storage", base]
    assert census_cli.main(["rollback", "--version", versions[0], *storage]) == 0
    assert reg.production()["version"] == versions[0]
    assert census_cli.main(["predict", "--input", str(rows), "--output", str(tmp_path / "o.csv"), *storage]) == 0
    assert f"with model {versions[0]}" in capsys.readouterr().out
    assert [r["action"] for r in reg.history()] == ["promote", "promote", "rollback"]
