"""The code location: assets, checks, jobs, schedules, sensors, and resources chosen in one place."""

import dagster as dg

from census_assets.assets.census import census_assets, raw_census
from census_assets.assets.feature_table import (
    WAREHOUSE_IO_MANAGER,
    FeatureWarehouse,
    UnpublishedIOManager,
    feature_table,
)
from census_assets.assets.lifecycle import LifecycleSettings, lifecycle_assets, rollback_production
from census_assets.automation import (
    GATED_EAGER,
    AlertNotifier,
    census_automation,
    census_pipeline,
    census_run_failure_alert,
    census_source_changed,
    weekly_retrain,
)
from census_assets.checks import cv_accuracy_meets_threshold
from census_assets.distributed import DaskResource
from census_assets.lifecycle_checks import lifecycle_checks
from census_assets.resources import CensusSource, TrainingSettings
from census_assets.settings import GCP_CREDENTIALS, Settings, load_settings
from census_assets.storage import CensusIOManager

EXECUTORS = {"in_process": dg.in_process_executor, "multiprocess": dg.multiprocess_executor}


def executor_for(name: str) -> dg.ExecutorDefinition:
    """`k8s`: every step in its own Kubernetes pod (dagster-k8s, the `k8s` extra; docs/scale.md)."""
    if name == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    return EXECUTORS[name]


def gcp_key(settings: Settings) -> dg.EnvVar | None:
    """A service-account key from GCP_CREDENTIALS, resolved when a step runs (the UI shows only the
    variable's name); None: Google's application default credentials."""
    return dg.EnvVar(GCP_CREDENTIALS) if settings.gcp_key_in_env else None


def warehouse_io_manager(settings: Settings) -> dg.ConfigurableIOManager:
    """gcp: feature_table goes to BigQuery (queries and loads billed to GCP_PROJECT); local: none."""
    if settings.deployment != "gcp":
        return UnpublishedIOManager()
    from dagster_gcp_pandas import BigQueryPandasIOManager  # seconds to import: only when used

    return BigQueryPandasIOManager(
        project=settings.gcp_project, dataset=settings.bq_dataset, gcp_credentials=gcp_key(settings)
    )


def build_resources(settings: Settings) -> dict:
    return {
        "io_manager": CensusIOManager(
            base_url=settings.storage_url,
            gcs_retry_deadline=settings.gcs_retry_deadline,
            gcp_credentials=gcp_key(settings),
        ),
        "source": CensusSource(
            uri=settings.source, project=settings.gcp_project, gcp_credentials=gcp_key(settings)
        ),
        "warehouse": FeatureWarehouse(project=settings.gcp_project, dataset=settings.bq_dataset),
        WAREHOUSE_IO_MANAGER: warehouse_io_manager(settings),
        "training": TrainingSettings(
            accuracy_threshold=settings.accuracy_threshold, workers=settings.workers
        ),
        "lifecycle": LifecycleSettings(),
        "notifier": AlertNotifier(webhook_url=settings.alert_webhook_url),
        "dask": DaskResource(
            address=settings.dask_address, distributed_fit_min_rows=settings.dask_fit_min_rows
        ),
    }


def with_automation(assets: list) -> list:
    """Every asset below the source follows its upstream eagerly, never past a failed blocking
    check; raw_census itself follows the source (schedule or sensor)."""
    return dg.map_asset_specs(
        lambda spec: spec
        if spec.key == raw_census.key
        else spec.replace_attributes(automation_condition=GATED_EAGER),
        assets,
    )


def with_deployment_kinds(assets: list, settings: Settings) -> list:
    """Kinds that depend on where data lives, so the UI shows it: `gcs` on every asset the IO
    manager stores when the storage is gs://, `bigquery` on raw_census when the source is bq://."""

    def add_kinds(spec: dg.AssetSpec) -> dg.AssetSpec:
        kinds = set(spec.kinds)
        if settings.storage_url.startswith("gs://") and spec.key != feature_table.key:
            kinds.add("gcs")
        if settings.source.startswith("bq://") and spec.key == raw_census.key:
            kinds.add("bigquery")
        return spec if kinds == set(spec.kinds) else spec.replace_attributes(kinds=kinds)

    return dg.map_asset_specs(add_kinds, assets)


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=with_deployment_kinds(
            with_automation([*census_assets, feature_table, *lifecycle_assets]), settings
        ),
        asset_checks=[cv_accuracy_meets_threshold, *lifecycle_checks],
        jobs=[census_pipeline, rollback_production],
        schedules=[weekly_retrain],
        sensors=[census_source_changed, census_automation, census_run_failure_alert],
        resources=build_resources(settings),
        # The graph is a chain: one process avoids paying a Python start-up per step.
        executor=executor_for(settings.executor),
    )


defs = build_definitions(load_settings())
