"""The drift check of every scored batch: its PSI per feature against the production model's
training profile, judged with the `lifecycle` resource's limits (drift_warn_psi, drift_fail_psi).

It runs after scored_batch has stored its scores, in the same run and for the same partition, and
judges the drift report the asset recorded with them (assets/drift_metadata.py), so it judges
exactly what was stored.
"""

import warnings

import dagster as dg

from census_assets.assets.batches import census_batches, scored_batch
from census_assets.assets.drift_metadata import drift_report_from
from census_assets.core import drift as drift_core
from census_assets.resources.lifecycle import LifecycleSettings


def latest_materialization(instance: dg.DagsterInstance, partition: str) -> dg.EventLogRecord | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=scored_batch.key, asset_partitions=[partition]), limit=1
    ).records
    return records[0] if records else None


def partitioned_check(asset: dg.AssetsDefinition, **check_arguments):
    """A check of a batch asset evaluated per batch (partition). A check with its own partitions is a
    Dagster preview feature (1.13), whose warning is silenced here."""

    def decorate(function):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")
            return dg.asset_check(asset=asset, partitions_def=census_batches, **check_arguments)(function)

    return decorate


@partitioned_check(scored_batch)
def batch_drift(context: dg.AssetCheckExecutionContext, lifecycle: LifecycleSettings) -> dg.AssetCheckResult:
    """No feature's PSI above drift_fail_psi (ERROR) or drift_warn_psi (WARN) in this batch,
    against the training data of the model that scored it."""
    partition = context.partition_key
    record = latest_materialization(context.instance, partition)
    if record is None:
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN, description=f"batch {partition} was never scored"
        )
    metadata = record.asset_materialization.metadata
    version = getattr(metadata.get("model_version"), "value", "")
    report = drift_report_from(metadata)
    if report is None:
        return dg.AssetCheckResult(
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description="no drift report recorded with these scores (no scorable rows): nothing to compare",
            metadata={"model_version": version},
        )
    verdict = drift_core.judge(report, lifecycle.drift_warn_psi, lifecycle.drift_fail_psi)
    if verdict.level != "ok":
        context.log.warning(f"batch {partition}: drift: {verdict.message}")
    return dg.AssetCheckResult(
        passed=verdict.level == "ok",
        severity=dg.AssetCheckSeverity.ERROR if verdict.level == "fail" else dg.AssetCheckSeverity.WARN,
        description=verdict.message,
        metadata={
            "max_psi": report.max_psi,
            "worst_feature": report.worst_feature or "",
            "features_above_warn": ", ".join(report.features_above(lifecycle.drift_warn_psi)) or "none",
            "warn_psi": lifecycle.drift_warn_psi,
            "fail_psi": lifecycle.drift_fail_psi,
            "model_version": version,
            "scored_in_this_run": record.run_id == context.run.run_id,
        },
    )


BATCH_CHECKS = [batch_drift]
