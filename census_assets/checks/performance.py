"""The checks of live performance, per batch:

- `performance_within_limit` (ERROR) on batch_performance: the realized accuracy against the
  accuracy threshold and the scoring model's own evaluation accuracy minus `max_accuracy_drop`;
  its failure alerts and starts a decay episode (automation/labels.py);
- `estimated_accuracy_within_limit` (WARN) on scored_batch: before any label arrives, the accuracy
  the scores expect of themselves against the threshold.

Each judges the figures its asset recorded in its latest materialization of the partition.
"""

import dagster as dg

from census_assets.assets.batches import scored_batch
from census_assets.assets.labelled_batches import PERFORMANCE_KEY, latest_materializations, metadata_of
from census_assets.assets.performance import batch_performance
from census_assets.checks.batches import partitioned_check
from census_assets.core.evaluation import ESTIMATION_ASSUMPTION
from census_assets.core.monitoring import judge_performance
from census_assets.resources.lifecycle import LifecycleSettings
from census_assets.resources.training import TrainingSettings

INTERVAL = ("accuracy", "accuracy_ci_low", "accuracy_ci_high")


def _latest(context: dg.AssetCheckExecutionContext, asset_key: dg.AssetKey) -> dict | None:
    record = latest_materializations(context.instance, asset_key, [context.partition_key]).get(context.partition_key)
    return metadata_of(record) if record is not None else None


@partitioned_check(batch_performance)
def performance_within_limit(
    context: dg.AssetCheckExecutionContext, training: TrainingSettings, lifecycle: LifecycleSettings
) -> dg.AssetCheckResult:
    """Fails iff the upper bound of the batch's 95% accuracy interval is below the accuracy
    threshold, or below the evaluation accuracy recorded for the model that scored the batch minus
    lifecycle.max_accuracy_drop."""
    metadata = _latest(context, PERFORMANCE_KEY)
    if metadata is None:
        return dg.AssetCheckResult(
            passed=True, description=f"batch {context.partition_key} has no measured labels yet: nothing to judge"
        )
    nan = float("nan")
    reference = metadata.get("reference_accuracy")
    verdict = judge_performance(
        metadata.get("accuracy", nan),
        metadata.get("accuracy_ci_high", nan),
        reference,
        training.accuracy_threshold,
        lifecycle.max_accuracy_drop,
    )
    if not verdict.passed:
        context.log.error(f"batch {context.partition_key}: performance: {verdict.message}")
    return dg.AssetCheckResult(
        passed=verdict.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=verdict.message,
        metadata={
            **{name: metadata[name] for name in INTERVAL if name in metadata},
            "labelled_rows": metadata.get("labelled_rows", 0.0),
            "reference_accuracy": reference if reference is not None else "none recorded",
            "threshold": training.accuracy_threshold,
            "max_accuracy_drop": lifecycle.max_accuracy_drop,
            "model_version": metadata.get("model_version", ""),
        },
    )


@partitioned_check(scored_batch)
def estimated_accuracy_within_limit(
    context: dg.AssetCheckExecutionContext, training: TrainingSettings
) -> dg.AssetCheckResult:
    """Warns when the accuracy a batch's scores expect of themselves is below the accuracy
    threshold: a batch the model is unsure about, seen before any label arrives. The estimate sees
    input shift, not label shift (batch_performance measures that, once labels come back)."""
    metadata = _latest(context, scored_batch.key)
    estimate = (metadata or {}).get("estimated_accuracy")
    if estimate is None:
        return dg.AssetCheckResult(passed=True, description="no estimate recorded for this batch")
    passed = estimate >= training.accuracy_threshold
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"estimated accuracy {estimate:.4f} {'>=' if passed else '<'} threshold "
        f"{training.accuracy_threshold:.4f} ({ESTIMATION_ASSUMPTION})",
        metadata={
            "estimated_accuracy": estimate,
            "threshold": training.accuracy_threshold,
            "model_version": metadata.get("model_version", ""),
        },
    )


PERFORMANCE_CHECKS = [performance_within_limit, estimated_accuracy_within_limit]
