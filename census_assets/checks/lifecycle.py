"""Asset checks of the model lifecycle: champion/challenger and drift.

Blocking checks stop production_model in the same run; the automation condition
`eager() & all_deps_blocking_checks_passed()` keeps later ticks from requesting it either.
"""

import dagster as dg

from census_assets.assets.evaluation import drift, drift_report, holdout_metrics
from census_assets.core import drift as drift_core
from census_assets.core.promotion import decide_from_evaluation
from census_assets.resources.lifecycle import LifecycleSettings
from census_assets.resources.training import TrainingSettings


@dg.asset_check(asset=holdout_metrics, blocking=True)
def challenger_beats_champion(
    context: dg.AssetCheckExecutionContext,
    holdout_metrics: dict,
    training: TrainingSettings,
    lifecycle: LifecycleSettings,
) -> dg.AssetCheckResult:
    """On the same evaluation rows: the lower bound of the 95% paired-bootstrap interval of
    challenger - champion accuracy >= -champion_tolerance, and the challenger's accuracy >= the
    accuracy threshold. Blocks production_model."""
    decision = decide_from_evaluation(holdout_metrics, training.accuracy_threshold, lifecycle.champion_tolerance)
    if not decision.promote:
        context.log.error(f"champion/challenger: not promoting: {decision.message}")
    comparison = decision.comparison
    return dg.AssetCheckResult(
        passed=decision.promote,
        severity=dg.AssetCheckSeverity.ERROR,
        description=decision.message,
        metadata={
            "challenger_version": holdout_metrics["model_version"],
            "challenger_accuracy": decision.challenger_accuracy,
            "champion_version": decision.champion_version or "none",
            **(comparison.figures() if comparison else {}),
            "evaluation_rows": holdout_metrics["evaluation_rows"]["description"],
            "threshold": training.accuracy_threshold,
            "tolerance": lifecycle.champion_tolerance,
        },
    )


def _drift_result(drift_result: dict, lifecycle: LifecycleSettings, level: str) -> dg.AssetCheckResult:
    """`level` is what this check reports: "fail" for the blocking gate, "warn" for the warning."""
    limit = lifecycle.drift_fail_psi if level == "fail" else lifecycle.drift_warn_psi
    severity = dg.AssetCheckSeverity.ERROR if level == "fail" else dg.AssetCheckSeverity.WARN
    report = drift_report(drift_result)
    if report is None:
        return dg.AssetCheckResult(
            passed=True, severity=severity, description="no production model yet: nothing to compare"
        )
    verdict = drift_core.judge(report, lifecycle.drift_warn_psi, lifecycle.drift_fail_psi)
    # The gate fails only at "fail"; the warning fails at "warn" or worse.
    failed = verdict.level == "fail" or (level == "warn" and verdict.level == "warn")
    return dg.AssetCheckResult(
        passed=not failed,
        severity=severity,
        description=verdict.message,
        metadata={
            "limit": limit,
            "max_psi": report.max_psi,
            "worst_feature": report.worst_feature or "",
            "features_above_limit": ", ".join(report.features_above(limit)) or "none",
            "max_unseen_share": report.max_unseen_share,
            "reference_version": drift_result["reference_version"],
        },
    )


@dg.asset_check(asset=drift, blocking=True)
def drift_within_limit(drift: dict, lifecycle: LifecycleSettings) -> dg.AssetCheckResult:
    """No feature's PSI above drift_fail_psi (default 0.25). Blocks promotion, not training."""
    return _drift_result(drift, lifecycle, "fail")


@dg.asset_check(asset=drift)
def drift_warning(drift: dict, lifecycle: LifecycleSettings) -> dg.AssetCheckResult:
    """Warns (WARN severity, non-blocking) when any feature's PSI is above drift_warn_psi (0.1)."""
    return _drift_result(drift, lifecycle, "warn")


LIFECYCLE_CHECKS = [challenger_beats_champion, drift_within_limit, drift_warning]
