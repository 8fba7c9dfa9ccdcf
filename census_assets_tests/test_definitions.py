"""The code location loads; jobs, schedule and sensor resolve; the sensor follows the source."""

import hashlib

import dagster as dg

from census_assets import defs
from census_assets.automation.schedules import weekly_retrain
from census_assets.automation.sensors import census_source_changed
from census_assets.definitions import build_definitions
from census_assets.resources.source import CensusSource
from census_assets.settings import load_environment
from census_assets.sources.common import BUNDLED_TRAIN, bundled_file


def test_definitions_load_and_resolve():
    dg.Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    assert {k.to_user_string() for k in repository.asset_graph.get_all_asset_keys()} >= {
        "raw_census", "clean_census", "features", "cv_accuracy", "lgbm_model"
    }
    job = defs.resolve_job_def("census_pipeline")
    assert job.executor_def.name == "in_process"
    assert defs.resolve_schedule_def("weekly_retrain").cron_schedule == "0 3 * * 1"
    assert defs.resolve_sensor_def("census_source_changed").job_name == "census_pipeline"
    checks = repository.asset_graph.asset_check_keys
    assert dg.AssetCheckKey(dg.AssetKey("cv_accuracy"), "cv_accuracy_meets_threshold") in checks


def test_automations_are_off_by_default():
    assert weekly_retrain.default_status == dg.DefaultScheduleStatus.STOPPED
    assert census_source_changed.default_status == dg.DefaultSensorStatus.STOPPED


def test_multiprocess_executor_is_a_setting():
    settings = load_environment({"CENSUS_EXECUTOR": "multiprocess"})
    assert build_definitions(settings).resolve_job_def("census_pipeline").executor_def.name == "multiprocess"


def test_weekly_schedule_requests_the_pipeline():
    context = dg.build_schedule_context(scheduled_execution_time=None)
    [request] = list(weekly_retrain.evaluate_tick(context).run_requests)
    # A schedule's request names no job: it launches the schedule's own job.
    assert request.job_name is None and weekly_retrain.job_name == "census_pipeline"


def evaluate_sensor(path, cursor):
    context = dg.build_sensor_context(cursor=cursor, resources={"source": CensusSource(uri=str(path))})
    return census_source_changed.evaluate_tick(context)


def test_sensor_fires_on_a_changed_file_and_not_on_an_unchanged_one(tmp_path, bundled_raw):
    source = tmp_path / "census.csv"
    bundled_raw.head(100).to_csv(source, index=False)
    first = evaluate_sensor(source, cursor=None)
    assert len(first.run_requests) == 1 and first.cursor

    unchanged = evaluate_sensor(source, cursor=first.cursor)
    assert unchanged.run_requests == [] and "unchanged" in unchanged.skip_message

    source.touch()  # a new modification time with the same bytes is not a change
    assert evaluate_sensor(source, cursor=first.cursor).run_requests == []

    bundled_raw.head(101).to_csv(source, index=False)
    changed = evaluate_sensor(source, cursor=first.cursor)
    assert len(changed.run_requests) == 1 and changed.cursor != first.cursor
    assert changed.run_requests[0].run_key == changed.cursor


def test_sensor_skips_with_a_reason_when_the_source_is_missing(tmp_path):
    result = evaluate_sensor(tmp_path / "gone.csv", cursor=None)
    assert result.run_requests == [] and "source file not found" in result.skip_message


def test_bundled_source_fingerprint_is_the_content_hash_of_the_shipped_table():
    shipped = hashlib.sha256(bundled_file(BUNDLED_TRAIN).read_bytes()).hexdigest()
    assert CensusSource().fingerprint() == f"sha256:{shipped}"


def test_kinds_show_where_the_data_lives():
    def kinds(env: dict) -> dict:
        graph = build_definitions(load_environment(env)).get_repository_def().asset_graph
        return {key.to_user_string(): graph.get(key).kinds for key in graph.get_all_asset_keys()}

    local = kinds({})
    assert not any("gcs" in k or "bigquery" in k for name, k in local.items() if name != "feature_table")
    cloud = kinds({"CENSUS_STORAGE_URL": "gs://bucket/census", "CENSUS_SOURCE": "bq://p.d.t", "GCP_PROJECT": "p"})
    assert {"gcs", "bigquery", "pandas", "parquet"} <= cloud["raw_census"]
    assert {"gcs", "lightgbm"} <= cloud["lgbm_model"] and "bigquery" not in cloud["lgbm_model"]
    assert "gcs" not in cloud["feature_table"]  # published to BigQuery, not stored on GCS
