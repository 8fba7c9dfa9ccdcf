"""Google Cloud for real, against emulators on loopback: a BigQuery source, GCS artifacts, the
BigQuery feature table, GCS faults and bad input. Emulators and their quirks: harness/emulators.py."""

import base64
import json
import time

import dagster as dg
import lightgbm as lgb
import pandas as pd
import pytest
from google.cloud import bigquery, storage

from census_assets.assets.feature_table import warehouse_column_names
from census_assets.definitions import build_definitions, build_resources
from census_assets.resources.source import CensusSource
from census_assets.settings import GCP_DEFAULT_SOURCE, SettingsError, load_environment
from census_assets.sources.bigquery import BigQueryNameError, parse_table_uri
from census_assets.storage.errors import PermanentStorageError
from census_assets.storage.gcp import service_account_info
from census_assets.storage.objects import open_store
from census_assets.storage.registry import MANIFEST, POINTER
from census_assets_tests.harness.emulators import BQ_PROJECT
from census_assets_tests.harness.runner import (
    TRAINING_CHAIN,
    failure_messages,
    materialized,
    run_graph,
    step_failure_message,
)

pytestmark = pytest.mark.gcp

BUCKET = "census-test"
PUBLIC_TABLE = GCP_DEFAULT_SOURCE.removeprefix("bq://")  # loaded into the emulator as-is
GCP_ENV = {
    "CENSUS_DEPLOYMENT": "gcp",
    "GCP_PROJECT": BQ_PROJECT,
    "CENSUS_GCS_BUCKET": BUCKET,
    "CENSUS_BQ_DATASET": "census_features",
    "CENSUS_GCS_RETRY_DEADLINE": "10",
}
# As any other tool reads them; the endpoint comes from STORAGE_EMULATOR_HOST (at each call).
READ_OPTIONS = {"token": "anon", "skip_instance_cache": True}
ARTIFACTS = ["raw_census.parquet", "clean_census.parquet", "features.parquet", "cv_accuracy.json", "lgbm_model.txt"]


CENSUS_GRAPH = [*TRAINING_CHAIN, "feature_table"]
# With the model's lifecycle (the registry on GCS); no batch scoring.
WHOLE_GRAPH = [*CENSUS_GRAPH, "holdout_metrics", "drift", "production_model", "scored_census"]


def gcs_files():
    """A plain reader, as any other tool would use (the endpoint comes from STORAGE_EMULATOR_HOST)."""
    import gcsfs  # slow to import: only the tests against the emulator need it

    return gcsfs.GCSFileSystem(token="anon", skip_instance_cache=True, use_listings_cache=False)


@pytest.fixture(scope="module")
def bigquery_client(bq_emulator):
    return bigquery.Client(project=BQ_PROJECT)


@pytest.fixture(scope="module")
def bucket(gcs_emulator):
    return storage.Client().create_bucket(BUCKET)


@pytest.fixture(scope="module")
def public_table(bigquery_client, bundled_raw):
    """The census table where production reads it, in the BigQuery emulator."""
    dataset = PUBLIC_TABLE.rsplit(".", 1)[0]
    bigquery_client.create_dataset(dataset, exists_ok=True)
    bigquery_client.load_table_from_dataframe(bundled_raw, PUBLIC_TABLE).result()
    return PUBLIC_TABLE


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The same graph on the bundled table in a local folder: what the GCS run must match."""
    storage_dir = tmp_path_factory.mktemp("local") / "storage"
    return run_graph({"CENSUS_STORAGE_URL": str(storage_dir)}, selection=CENSUS_GRAPH), storage_dir


@pytest.fixture(scope="module")
def gcp_run(public_table, bucket):
    return run_graph(GCP_ENV, selection=WHOLE_GRAPH)


def test_local_deployment_skips_the_feature_table(local_run):
    result, _ = local_run
    assert result.success, failure_messages(result)
    assert "feature_table" not in materialized(result)
    assert "lgbm_model" in materialized(result)
    assert not any(e.is_step_failure for e in result.all_events)


def test_gcp_run_materialises_everything_from_bigquery(gcp_run, bigquery_client):
    assert gcp_run.success, failure_messages(gcp_run)
    assert set(materialized(gcp_run)) == {
        "raw_census", "clean_census", "features", "cv_accuracy", "lgbm_model", "feature_table",
        "holdout_metrics", "drift", "production_model", "scored_census",
    }  # fmt: skip
    events = gcp_run.get_asset_materialization_events()
    [raw] = [e.materialization for e in events if e.asset_key.path == ["raw_census"]]
    table = bigquery_client.get_table(PUBLIC_TABLE)
    assert raw.metadata["bigquery_num_rows"].value == 32561
    assert raw.metadata["bigquery_last_modified"].value == table.modified.isoformat()
    assert raw.tags["dagster/data_version"] == f"bq:{PUBLIC_TABLE}@{table.modified.isoformat()}/32561"
    # The query was billed to GCP_PROJECT, not to the project that owns the table.
    jobs = list(bigquery_client.list_jobs(project=BQ_PROJECT))
    assert any(PUBLIC_TABLE in (job.query or "") for job in jobs if job.job_type == "query")


def test_gcs_artifacts_match_the_local_run_with_plain_tools(gcp_run, local_run):
    storage_dir = local_run[1]
    fs = gcs_files()
    base = f"gs://{BUCKET}/census_assets"
    assert set(ARTIFACTS) <= {path.rsplit("/", 1)[1] for path in fs.ls(base)}
    # The model registry lives beside them: the promoted version's pointer names its files.
    pointer = json.loads(fs.cat(f"{base}/{POINTER}"))
    assert pointer["path"].startswith(f"{base}/models/") and fs.exists(f"{pointer['path']}/{MANIFEST}")
    for name in ("raw_census", "clean_census", "features"):
        remote = pd.read_parquet(f"{base}/{name}.parquet", storage_options=READ_OPTIONS)
        pd.testing.assert_frame_equal(remote, pd.read_parquet(storage_dir / f"{name}.parquet"))
    remote_cv = json.loads(fs.cat(f"{base}/cv_accuracy.json"))
    local_cv = json.loads((storage_dir / "cv_accuracy.json").read_text())
    assert remote_cv["scores"] == local_cv["scores"] and len(remote_cv["scores"]) == 15
    booster = lgb.Booster(model_str=fs.cat(f"{base}/lgbm_model.txt").decode())
    local_booster = lgb.Booster(model_file=str(storage_dir / "lgbm_model.txt"))
    X = pd.read_parquet(storage_dir / "features.parquet").drop(columns=["never_married"])
    assert (booster.predict(X) == local_booster.predict(X)).all()


def test_feature_table_is_queryable_in_bigquery(gcp_run, bigquery_client, local_run):
    features = pd.read_parquet(local_run[1] / "features.parquet")
    mapping = warehouse_column_names(features.columns)
    table = f"{BQ_PROJECT}.{GCP_ENV['CENSUS_BQ_DATASET']}.feature_table"
    sums = ", ".join(f"SUM({column}) AS {column}" for column in mapping.values())
    row = bigquery_client.query(f"SELECT COUNT(*) AS n, {sums} FROM `{table}`").to_dataframe(
        create_bqstorage_client=False
    )
    assert int(row["n"].iloc[0]) == len(features) == 32537
    expected = features.rename(columns=mapping).sum()
    got = row.drop(columns="n").iloc[0].rename(str.lower)
    pd.testing.assert_series_equal(
        got.astype("int64"), expected.rename(str.lower).astype("int64"), check_names=False
    )


def test_gcs_503s_are_retried_and_the_run_completes(bucket, fault_proxy, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fault_proxy.url)
    fault_proxy.failed, fault_proxy.fail_next = 0, 3
    env = {"CENSUS_STORAGE_URL": f"gs://{BUCKET}/faults", "CENSUS_GCS_RETRY_DEADLINE": "10"}
    result = run_graph(env, selection=["raw_census", "clean_census"])
    assert result.success
    assert fault_proxy.failed == 3 and fault_proxy.fail_next == 0
    # Retried inside the write, not by re-running the step.
    assert sum(e.event_type_value == "STEP_RESTARTED" for e in result.all_events) == 0
    assert len(pd.read_parquet(f"gs://{BUCKET}/faults/clean_census.parquet", storage_options=READ_OPTIONS)) == 32537


@pytest.mark.parametrize("status", [429, 500, 502, 504])
def test_other_transient_statuses_are_retried(bucket, fault_proxy, monkeypatch, status):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fault_proxy.url)
    store = open_store(f"gs://{BUCKET}/statuses", retry_deadline=10)
    fault_proxy.failed, fault_proxy.fail_next, fault_proxy.fail_status = 0, 2, status
    try:
        store.write(f"{status}.json", b"{}")
        fault_proxy.fail_next = 2
        assert store.read(f"{status}.json") == b"{}"
    finally:
        fault_proxy.fail_status = 503
    assert fault_proxy.failed == 4


def test_gcs_outage_beyond_the_retry_budget_fails_clearly_and_keeps_objects(bucket, fault_proxy, monkeypatch):
    env = {"CENSUS_STORAGE_URL": f"gs://{BUCKET}/outage", "CENSUS_GCS_RETRY_DEADLINE": "1"}
    assert run_graph(env, selection=["raw_census"]).success
    blob = bucket.blob("outage/raw_census.parquet")
    blob.reload()
    before = (blob.generation, blob.md5_hash)

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fault_proxy.url)
    fault_proxy.down = True
    started = time.monotonic()
    try:
        result = run_graph(env, selection=["raw_census"])
    finally:
        fault_proxy.down = False
    assert not result.success
    message = step_failure_message(result, "raw_census")
    assert "GCS unavailable" in message and "CENSUS_GCS_RETRY_DEADLINE" in message and "503" in message
    assert fault_proxy.failed >= 2 and time.monotonic() - started < 60
    blob.reload()
    assert (blob.generation, blob.md5_hash) == before


def test_source_table_missing_a_column_fails_naming_it(bigquery_client, bundled_raw, tmp_path):
    bigquery_client.create_dataset(f"{BQ_PROJECT}.bad_inputs", exists_ok=True)
    name = f"{BQ_PROJECT}.bad_inputs.no_education"
    bigquery_client.load_table_from_dataframe(bundled_raw.drop(columns="education").head(100), name).result()
    result = run_graph({"CENSUS_SOURCE": f"bq://{name}", "CENSUS_STORAGE_URL": str(tmp_path)}, selection=["raw_census"])
    assert not result.success
    assert "missing required column(s): education" in step_failure_message(result, "raw_census")
    assert not list(tmp_path.iterdir())


def test_source_fingerprint_follows_the_bigquery_table(bigquery_client, bundled_raw):
    """The source sensor's fingerprint of a bq:// source: the table's last change and row count."""
    name = f"{BQ_PROJECT}.bad_inputs.growing"
    bigquery_client.create_dataset(f"{BQ_PROJECT}.bad_inputs", exists_ok=True)
    bigquery_client.load_table_from_dataframe(bundled_raw.head(10), name).result()
    source = CensusSource(uri=f"bq://{name}", project=BQ_PROJECT)
    before = source.fingerprint()
    assert before == source.fingerprint() and before.endswith("/10")
    bigquery_client.load_table_from_dataframe(bundled_raw.iloc[10:15], name).result()  # appends
    assert source.fingerprint().endswith("/15")


def test_table_name_with_injection_characters_is_refused(bigquery_client, public_table, tmp_path):
    source = f"bq://{BQ_PROJECT}.bad_inputs.t`; DROP TABLE `{public_table}`; --"
    result = run_graph({"CENSUS_SOURCE": source, "CENSUS_STORAGE_URL": str(tmp_path)}, selection=["raw_census"])
    assert not result.success
    assert "is not a valid BigQuery identifier" in step_failure_message(result, "raw_census")
    assert bigquery_client.get_table(public_table).num_rows == 32561


def test_missing_bucket_fails_clearly_without_creating_it(gcs_emulator):
    result = run_graph({"CENSUS_STORAGE_URL": "gs://no-such-bucket/census"}, selection=["raw_census"])
    assert not result.success
    assert "GCS bucket 'no-such-bucket' does not exist" in step_failure_message(result, "raw_census")
    assert sum(e.is_step_failure for e in result.all_events) == 1  # not retried
    assert storage.Client().lookup_bucket("no-such-bucket") is None


@pytest.mark.parametrize(
    "uri,part",
    [
        ("bq://proj-123.ds.t; DROP TABLE x", "table"),
        ("bq://proj-123.ds`.t", "dataset"),
        ("bq://Proj_123.ds.t", "project"),
        ("bq://proj-123.ds.t'--", "table"),
        ("bq://proj-123.d s.t", "dataset"),
    ],
)
def test_bigquery_names_are_validated(uri, part):
    with pytest.raises(BigQueryNameError, match=f"{part} name .* is not a valid BigQuery identifier"):
        parse_table_uri(uri)


def test_valid_bigquery_names_parse():
    ref = parse_table_uri(GCP_DEFAULT_SOURCE)
    assert (ref.project, ref.dataset, ref.table) == ("bigquery-public-data", "ml_datasets", "census_adult_income")
    assert str(parse_table_uri("bq://example.com:my-proj.ds.t-1")) == "example.com:my-proj.ds.t-1"
    with pytest.raises(BigQueryNameError, match="must be bq://project.dataset.table"):
        parse_table_uri("bq://proj-123.table_only")


def test_warehouse_column_names_are_bigquery_identifiers():
    assert warehouse_column_names(["occupation_Adm-clerical", "native_country_Outlying-US(Guam-USVI-etc)", "1x"]) == {
        "occupation_Adm-clerical": "occupation_Adm_clerical",
        "native_country_Outlying-US(Guam-USVI-etc)": "native_country_Outlying_US_Guam_USVI_etc_",
        "1x": "_1x",
    }
    with pytest.raises(ValueError, match="both map to BigQuery column 'A_b'"):
        warehouse_column_names(["a-b", "A_b"])


def test_a_service_account_key_from_an_env_var_is_used_for_gcs(bucket, token_endpoint, monkeypatch):
    key = base64.b64encode(json.dumps(token_endpoint.service_account_key(BQ_PROJECT)).encode()).decode()
    monkeypatch.setenv("GCP_CREDENTIALS", key)
    env = {"CENSUS_STORAGE_URL": f"gs://{BUCKET}/keyed", "GCP_CREDENTIALS": key}
    resources = build_resources(load_environment(env))
    # Wired as an EnvVar: resolved when a step runs, shown in the UI by name only.
    assert isinstance(resources["io_manager"].storage.gcp_credentials, dg.EnvVar)
    assert isinstance(resources["source"].gcp_credentials, dg.EnvVar)
    assert run_graph(env, selection=["raw_census"]).success
    assert token_endpoint.grants >= 1
    assert bucket.blob("keyed/raw_census.parquet").exists()


def test_a_malformed_key_is_named():
    with pytest.raises(PermanentStorageError, match="GCP_CREDENTIALS is not a base64-encoded service-account JSON key"):
        service_account_info("not base64 at all")


@pytest.mark.parametrize("missing", ["GCP_PROJECT", "CENSUS_GCS_BUCKET", "CENSUS_BQ_DATASET"])
def test_gcp_settings_name_the_missing_variable(missing):
    env = {k: v for k, v in GCP_ENV.items() if k != missing}
    with pytest.raises(SettingsError, match=f"{missing} must be set when CENSUS_DEPLOYMENT=gcp"):
        load_environment(env)


def test_gcp_settings_defaults_and_conflicts():
    settings = load_environment(GCP_ENV)
    assert settings.source == GCP_DEFAULT_SOURCE
    assert settings.storage_url == f"gs://{BUCKET}/census_assets"
    with pytest.raises(SettingsError, match="CENSUS_STORAGE_URL='gs://other/p' disagrees"):
        load_environment({**GCP_ENV, "CENSUS_STORAGE_URL": "gs://other/p"})
    with pytest.raises(SettingsError, match="CENSUS_GCS_RETRY_DEADLINE='0' must be a positive"):
        load_environment({**GCP_ENV, "CENSUS_GCS_RETRY_DEADLINE": "0"})


def test_gcp_definitions_load_without_credentials(monkeypatch):
    """Clients are created lazily: loading the code location touches no cloud API."""
    import google.auth

    def no_credentials(*args, **kwargs):
        raise AssertionError("credentials looked up while loading definitions")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    defs = build_definitions(load_environment(GCP_ENV))
    assert defs.resolve_asset_graph().has(dg.AssetKey("feature_table"))
    assert defs.resources["warehouse_io_manager"].dataset == "census_features"
