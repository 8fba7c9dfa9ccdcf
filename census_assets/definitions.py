"""The code location: assets, checks, jobs, schedules, sensors, and resources chosen in one place."""

import dagster as dg

from census_assets.alerts.sensors import asset_health_alert_sensor, run_failure_alert_sensor
from census_assets.assets.batches import BATCH_ASSETS
from census_assets.assets.census import TRAINING_ASSETS
from census_assets.assets.evaluation import drift, holdout_metrics
from census_assets.assets.feature_table import feature_table
from census_assets.assets.performance import PERFORMANCE_ASSETS
from census_assets.assets.promotion import production_model
from census_assets.assets.scoring import scored_census
from census_assets.assets.source import census_source
from census_assets.assets.specs import for_deployment
from census_assets.automation.batch_jobs import BATCH_JOBS
from census_assets.automation.inbox import build_inbox_sensor
from census_assets.automation.jobs import census_pipeline, rollback_production
from census_assets.automation.labels import LABEL_JOBS, build_decay_sensor, build_labels_sensor
from census_assets.automation.rescore import build_rescore_sensor
from census_assets.automation.schedules import weekly_retrain
from census_assets.automation.sensors import census_automation, census_source_changed
from census_assets.checks.audit import AUDIT_CHECKS
from census_assets.checks.batches import BATCH_CHECKS
from census_assets.checks.lifecycle import LIFECYCLE_CHECKS
from census_assets.checks.performance import PERFORMANCE_CHECKS
from census_assets.checks.training import cv_accuracy_meets_threshold
from census_assets.io_manager import CensusIOManager
from census_assets.resources.audit import AuditSettings
from census_assets.resources.dask import DaskResource
from census_assets.resources.evaluation import EvaluationSettings
from census_assets.resources.inbox import BatchInbox
from census_assets.resources.labels import LabelFolder
from census_assets.resources.lifecycle import LifecycleSettings
from census_assets.resources.notifier import AlertNotifier
from census_assets.resources.source import CensusSource
from census_assets.resources.storage import ArtifactStorage, ModelRegistry
from census_assets.resources.training import TrainingSettings
from census_assets.resources.warehouse import WAREHOUSE_IO_MANAGER, FeatureWarehouse, UnpublishedIOManager
from census_assets.settings import (
    ALERT_WEBHOOK_URL,
    GCP_CREDENTIALS,
    SLACK_TOKEN,
    Environment,
    load_environment,
)

LIFECYCLE_ASSETS = [holdout_metrics, drift, production_model, scored_census]
EXECUTORS = {"in_process": dg.in_process_executor, "multiprocess": dg.multiprocess_executor}


def executor_for(name: str) -> dg.ExecutorDefinition:
    """`k8s`: every step in its own Kubernetes pod (dagster-k8s, the `k8s` extra; docs/scale.md)."""
    if name == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    return EXECUTORS[name]


def gcp_key(environment: Environment) -> dg.EnvVar | None:
    """A service-account key from GCP_CREDENTIALS, resolved when a step runs (the UI shows only the
    variable's name); None: Google's application default credentials."""
    return dg.EnvVar(GCP_CREDENTIALS) if environment.gcp_key_in_env else None


def warehouse_io_manager(environment: Environment) -> dg.ConfigurableIOManager:
    """gcp: feature_table goes to BigQuery (queries and loads billed to GCP_PROJECT); local: none."""
    if environment.deployment != "gcp":
        return UnpublishedIOManager()
    from dagster_gcp_pandas import BigQueryPandasIOManager  # seconds to import: only when used

    return BigQueryPandasIOManager(
        project=environment.gcp_project, dataset=environment.bq_dataset, gcp_credentials=gcp_key(environment)
    )


def notifier(environment: Environment) -> AlertNotifier:
    """The webhook URL and the Slack token are secrets: EnvVars, resolved where the alert sensors run,
    so the UI shows only the variables' names."""
    return AlertNotifier(
        webhook_url=dg.EnvVar(ALERT_WEBHOOK_URL) if environment.alert_webhook_url else "",
        slack_channel=environment.slack_channel,
        slack_token=dg.EnvVar(SLACK_TOKEN) if environment.slack_channel else "",
    )


def build_resources(environment: Environment) -> dict:
    storage = ArtifactStorage(
        url=environment.storage_url,
        gcs_retry_deadline=environment.gcs_retry_deadline,
        gcp_credentials=gcp_key(environment),
    )
    return {
        "io_manager": CensusIOManager(storage=storage),
        "model_registry": ModelRegistry(storage=storage),
        "source": CensusSource(
            uri=environment.source, project=environment.gcp_project, gcp_credentials=gcp_key(environment)
        ),
        "warehouse": FeatureWarehouse(project=environment.gcp_project, dataset=environment.bq_dataset),
        WAREHOUSE_IO_MANAGER: warehouse_io_manager(environment),
        "training": TrainingSettings(
            accuracy_threshold=environment.accuracy_threshold, workers=environment.workers
        ),
        "lifecycle": LifecycleSettings(),
        "audit": AuditSettings(),
        "inbox": BatchInbox(url=environment.inbox, storage=storage),
        "labels": LabelFolder(url=environment.labels, storage=storage),
        "evaluation": EvaluationSettings(holdout=environment.holdout, group_columns=environment.group_columns),
        # The artifact storage itself, for assets that read what other assets committed (labelled batches).
        "storage": storage,
        "notifier": notifier(environment),
        "dask": DaskResource(
            address=environment.dask_address, distributed_fit_min_rows=environment.dask_fit_min_rows
        ),
    }


def build_definitions(environment: Environment) -> dg.Definitions:
    return dg.Definitions(
        assets=for_deployment(
            [census_source, *TRAINING_ASSETS, feature_table, *LIFECYCLE_ASSETS, *BATCH_ASSETS, *PERFORMANCE_ASSETS],
            environment,
        ),
        asset_checks=[
            cv_accuracy_meets_threshold, *LIFECYCLE_CHECKS, *AUDIT_CHECKS, *BATCH_CHECKS, *PERFORMANCE_CHECKS
        ],
        jobs=[census_pipeline, rollback_production, *BATCH_JOBS, *LABEL_JOBS],
        schedules=[weekly_retrain],
        sensors=[
            census_source_changed,
            census_automation,
            run_failure_alert_sensor(environment.alert_interval_seconds),
            asset_health_alert_sensor(environment.alert_interval_seconds),
            build_inbox_sensor(environment.inbox_interval_seconds),
            build_rescore_sensor(environment.inbox_interval_seconds),
            build_labels_sensor(environment.inbox_interval_seconds),
            # It looks for failed checks, as the asset-health alert sensor does, and as often.
            build_decay_sensor(environment.alert_interval_seconds),
        ],
        resources=build_resources(environment),
        # The graph is a chain: one process avoids paying a Python start-up per step.
        executor=executor_for(environment.executor),
    )


defs = build_definitions(load_environment())
