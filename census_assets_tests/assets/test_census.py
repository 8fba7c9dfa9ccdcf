"""The training graph in-process (harness.runner): pass branch, failing gate, gate re-check, bad input."""

import json
import shutil

import dagster as dg
import lightgbm as lgb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from census_assets.core.features import Vocabulary
from census_assets_tests.harness.runner import TRAINING_CHAIN, run_graph, step_failure_message

ARTIFACTS = {
    "raw_census.parquet",
    "clean_census.parquet",
    "features.parquet",
    "cv_accuracy.json",
    "lgbm_model.txt",
    "lgbm_model.json",
    "lgbm_model.vocabulary.json",
    "lgbm_model.importance.png",
}
ASSETS = TRAINING_CHAIN
# Published copies (above), each asset's manifest, the run-scoped files, the pointers, the run
# leases, the locks.
LAYOUT = ARTIFACTS | {f"{asset}.manifest.json" for asset in ASSETS} | {"runs", "pointers", "leases", ".locks"}


def snapshot(directory) -> dict:
    """File name -> bytes of every artifact, to prove a failed run changed nothing."""
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir()) if path.is_file()}


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """One passing run of the whole graph; tests copy its storage before changing anything."""
    storage = tmp_path_factory.mktemp("good") / "storage"
    result = run_graph({"CENSUS_STORAGE_URL": str(storage)}, selection=TRAINING_CHAIN)
    return result, storage


@pytest.fixture
def previous_storage(good_run, tmp_path):
    """A copy of a good run's storage: the 'last good' artifacts a failed run must not touch."""
    copy = tmp_path / "storage"
    shutil.copytree(good_run[1], copy)
    return copy


def test_pass_branch_materialises_everything(good_run):
    result, storage = good_run
    assert result.success
    assert {p.name for p in storage.iterdir()} == LAYOUT
    [run_dir] = (storage / "runs").iterdir()
    assert run_dir.name == result.run_id
    assert {p.name for p in run_dir.iterdir()} == ARTIFACTS | {f"{asset}.manifest.json" for asset in ASSETS}
    assert {p.name for p in (storage / "pointers").iterdir()} == {f"{asset}.json" for asset in ASSETS}
    [lease] = (storage / "leases").iterdir()
    assert lease.name == result.run_id  # the run's own: one record inside per process that worked for it
    assert [p.suffix for p in lease.iterdir()] == [".json"]
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"raw_census", "clean_census", "features", "cv_accuracy", "lgbm_model"}
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["threshold"].value == 0.8


def test_cv_accuracy_matches_the_reference(good_run):
    summary = json.loads((good_run[1] / "cv_accuracy.json").read_text())
    assert summary["mean"] == pytest.approx(0.830, abs=0.005)
    assert len(summary["scores"]) == 15 and summary["rows"] == 32537


def test_model_loads_with_plain_lightgbm_and_predicts(good_run):
    storage = good_run[1]
    booster = lgb.Booster(model_file=str(storage / "lgbm_model.txt"))
    features = pd.read_parquet(storage / "features.parquet")
    X = features.drop(columns=["never_married"]).to_numpy()
    accuracy = ((booster.predict(X) > 0.5) == features["never_married"]).mean()
    assert accuracy > 0.83  # training accuracy is at least the CV accuracy
    dump = json.loads((storage / "lgbm_model.json").read_text())
    assert dump["feature_names"] == booster.feature_name()
    vocabulary = Vocabulary.from_dict(json.loads((storage / "lgbm_model.vocabulary.json").read_text()))
    assert vocabulary.feature_names == booster.feature_name()


def test_feature_vocabulary_is_stored_in_the_parquet_file(good_run):
    metadata = pq.read_schema(good_run[1] / "features.parquet").metadata
    attrs = json.loads(metadata[b"PANDAS_ATTRS"])
    assert "Unknown" in attrs["vocabulary"]["workclass"]


def test_metadata_describes_each_asset(good_run):
    result = good_run[0]
    by_asset = {
        e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()
    }
    assert by_asset["raw_census"]["dagster/row_count"].value == 32561
    assert by_asset["clean_census"]["dagster/row_count"].value == 32537
    assert by_asset["features"]["feature_count"].value == 94
    assert by_asset["features"]["unseen_category_rows"].value == 0
    assert isinstance(by_asset["cv_accuracy"]["accuracy_mean"].value, float)
    assert by_asset["lgbm_model"]["size_bytes"].value > 0
    assert "path" in by_asset["lgbm_model"]


def test_failing_gate_keeps_the_previous_model(previous_storage):
    before = snapshot(previous_storage)
    result = run_graph(
        {"CENSUS_STORAGE_URL": str(previous_storage), "CENSUS_ACCURACY_THRESHOLD": "0.99"}, selection=TRAINING_CHAIN
    )
    assert not result.success
    [check] = result.get_asset_check_evaluations()
    assert not check.passed
    assert check.metadata["threshold"].value == 0.99
    assert check.metadata["accuracy"].value == pytest.approx(0.830, abs=0.005)
    assert "below the threshold 0.9900" in check.description
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "lgbm_model" not in materialized and "cv_accuracy" in materialized
    after = snapshot(previous_storage)
    for name in ("lgbm_model.txt", "lgbm_model.json", "lgbm_model.vocabulary.json"):
        assert after[name] == before[name]


def test_model_alone_refuses_a_stored_accuracy_below_threshold(previous_storage):
    before = snapshot(previous_storage)
    result = run_graph(
        {"CENSUS_STORAGE_URL": str(previous_storage), "CENSUS_ACCURACY_THRESHOLD": "0.99"},
        selection=["lgbm_model"],
    )
    assert not result.success
    message = step_failure_message(result, "lgbm_model")
    assert "refusing to fit lgbm_model" in message and "0.9900" in message and "0.83" in message
    assert snapshot(previous_storage) == before


def write_source(tmp_path, frame: pd.DataFrame, name="source.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False) if name.endswith(".csv") else frame.to_parquet(path)
    return str(path)


@pytest.mark.parametrize(
    "break_source,expected",
    [
        (lambda df: df.drop(columns=["occupation"]), "missing required column(s): occupation"),
        (lambda df: df.head(0), "the table has no rows"),
        (
            lambda df: df.astype({"age": str}).assign(age=lambda d: d["age"].where(d.index != 5, "forty")),
            "column 'age' must be integer",
        ),
    ],
    ids=["missing-column", "empty-table", "non-numeric-age"],
)
def test_bad_input_fails_at_raw_census_and_overwrites_nothing(
    previous_storage, bundled_raw, tmp_path, break_source, expected
):
    before = snapshot(previous_storage)
    source = write_source(tmp_path, break_source(bundled_raw.head(200)))
    result = run_graph({"CENSUS_STORAGE_URL": str(previous_storage), "CENSUS_SOURCE": source}, selection=TRAINING_CHAIN)
    assert not result.success
    message = step_failure_message(result, "raw_census")
    assert expected in message and source in message
    assert snapshot(previous_storage) == before


def test_all_na_source_is_refused_at_raw_census(previous_storage, bundled_raw, tmp_path):
    before = snapshot(previous_storage)
    source = write_source(tmp_path, bundled_raw.head(20).assign(occupation=None), "na.parquet")
    result = run_graph({"CENSUS_STORAGE_URL": str(previous_storage), "CENSUS_SOURCE": source}, selection=TRAINING_CHAIN)
    assert "cleaning would drop all 20 rows (missing: occupation" in step_failure_message(result, "raw_census")
    assert snapshot(previous_storage) == before  # refused before anything was committed


def test_missing_source_file_is_named(previous_storage, tmp_path):
    missing = str(tmp_path / "nowhere.parquet")
    result = run_graph(
        {"CENSUS_STORAGE_URL": str(previous_storage), "CENSUS_SOURCE": missing}, selection=TRAINING_CHAIN
    )
    assert f"source file not found: {missing}" in step_failure_message(result, "raw_census")


def test_unseen_category_is_counted_in_feature_metadata(bundled_raw, tmp_path):
    batch = bundled_raw.head(300).copy()
    batch.loc[:9, "occupation"] = " Astronaut"
    source = write_source(tmp_path, batch, "unseen.parquet")
    result = run_graph(
        {"CENSUS_STORAGE_URL": str(tmp_path / "storage"), "CENSUS_SOURCE": source},
        selection=["raw_census", "clean_census", "features"],
    )
    assert result.success
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.path == ["features"]]
    metadata = event.materialization.metadata
    assert metadata["unseen_category_rows"].value == 10
    assert metadata["unseen_categories"].value == {"occupation=Astronaut": 10}
    assert metadata["feature_count"].value == 94


def features_run(tmp_path, source: str, vocabulary: str) -> dg.ExecuteInProcessResult:
    return run_graph(
        {"CENSUS_STORAGE_URL": str(tmp_path / "storage"), "CENSUS_SOURCE": source},
        selection=["raw_census", "clean_census", "features"],
        run_config={"ops": {"features": {"config": {"vocabulary": vocabulary}}}},
    )


def test_features_can_fit_the_vocabulary_on_the_batch(tmp_path, bundled_raw):
    # Only two workclasses and one country in this batch: a fitted vocabulary has just their dummies.
    batch = bundled_raw[bundled_raw["workclass"].str.strip().isin(["Private", "State-gov"])]
    batch = batch[batch["native_country"].str.strip() == "United-States"].head(500)
    result = features_run(tmp_path, write_source(tmp_path, batch, "batch.parquet"), "fit")
    assert result.success
    frame = result.output_for_node("features")
    assert [c for c in frame.columns if c.startswith("workclass_")] == ["workclass_Private", "workclass_State-gov"]
    assert [c for c in frame.columns if c.startswith("native_country_")] == ["native_country_United-States"]
    assert Vocabulary.from_dict(frame.attrs["vocabulary"]).categories["workclass"] == ("Private", "State-gov")
    bundled = features_run(tmp_path / "b", write_source(tmp_path, batch, "batch2.parquet"), "bundled")
    assert len(bundled.output_for_node("features").columns) > len(frame.columns)


def test_an_unknown_vocabulary_setting_is_refused(tmp_path, bundled_raw):
    result = features_run(tmp_path, write_source(tmp_path, bundled_raw.head(300), "s.parquet"), "guess")
    assert "features.vocabulary must be 'bundled' or 'fit', got 'guess'" in step_failure_message(result, "features")
