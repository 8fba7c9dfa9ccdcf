"""The accuracy gate: a blocking check on cv_accuracy."""

import dagster as dg

from census_assets.assets.census import cv_accuracy
from census_assets.core.training import gate_failure
from census_assets.resources.training import TrainingSettings


@dg.asset_check(asset=cv_accuracy, blocking=True)
def cv_accuracy_meets_threshold(
    context: dg.AssetCheckExecutionContext, cv_accuracy: dict, training: TrainingSettings
) -> dg.AssetCheckResult:
    """The mean CV accuracy is at least the threshold (CENSUS_ACCURACY_THRESHOLD); blocks lgbm_model."""
    accuracy, threshold = float(cv_accuracy["mean"]), training.accuracy_threshold
    reason = gate_failure(accuracy, threshold)
    if reason is not None:
        # Dagster's own failure message names only the check; the run log says why.
        context.log.error(f"accuracy gate failed: {reason}; lgbm_model will not be materialised")
    return dg.AssetCheckResult(
        passed=reason is None,
        severity=dg.AssetCheckSeverity.ERROR,
        description=reason or f"CV accuracy {accuracy:.4f} passes the threshold {threshold:.4f}",
        metadata={"accuracy": accuracy, "threshold": threshold, "margin": accuracy - threshold},
    )
