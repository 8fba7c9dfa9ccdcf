"""Asset checks of holdout_metrics' audit (assets/audit.py): the blocking group gate, and the
fairness and calibration warnings on the challenger."""

import dagster as dg

from census_assets.assets.evaluation import holdout_metrics
from census_assets.core.calibration import calibration_warning
from census_assets.core.fairness import disparity_warnings
from census_assets.resources.audit import AuditSettings


def group_gate_result(holdout: dict) -> dg.AssetCheckResult:
    """Passes without a champion; otherwise the verdict holdout_metrics recorded."""
    gate = holdout["audit"]["group_gate"]
    if gate is None:
        return dg.AssetCheckResult(
            passed=True, severity=dg.AssetCheckSeverity.ERROR, description="no production model yet: nothing to compare"
        )
    return dg.AssetCheckResult(
        passed=gate["passed"],
        severity=dg.AssetCheckSeverity.ERROR,
        description=gate["message"],
        metadata={
            "groups_worse": ", ".join(gate["failed"]) or "none",
            "groups_too_small": ", ".join(gate["too_small"]) or "none",
            "min_group_rows": gate["min_group_rows"],
            "group_tolerance": gate["group_tolerance"],
        },
    )


def fairness_result(holdout: dict, settings: AuditSettings) -> dg.AssetCheckResult:
    between = holdout["audit"]["challenger"]["between_groups"]
    lines = disparity_warnings(
        between, settings.max_demographic_parity_difference, settings.max_equalized_odds_difference
    )
    return dg.AssetCheckResult(
        passed=not lines,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(lines) or "every between-group difference is within its limit",
        metadata={
            **{f"demographic_parity_difference {c}": v["demographic_parity_difference"] for c, v in between.items()},
            **{
                f"equalized_odds_difference {c}": v["equalized_odds_difference"]
                for c, v in between.items()
                if v["equalized_odds_difference"] is not None
            },
            "max_demographic_parity_difference": settings.max_demographic_parity_difference,
            "max_equalized_odds_difference": settings.max_equalized_odds_difference,
        },
    )


def calibration_result(holdout: dict, settings: AuditSettings) -> dg.AssetCheckResult:
    report = holdout["audit"]["challenger"]["calibration"]
    warning = calibration_warning(report, settings.calibration_limit)
    ece = report["overall"]["ece"]
    return dg.AssetCheckResult(
        passed=warning is None,
        severity=dg.AssetCheckSeverity.WARN,
        description=warning or f"expected calibration error {ece:.4f} <= {settings.calibration_limit:.4f}",
        metadata={"expected_calibration_error": ece, "limit": settings.calibration_limit},
    )


@dg.asset_check(asset=holdout_metrics, blocking=True)
def no_group_worse_than_champion(holdout_metrics: dict) -> dg.AssetCheckResult:
    """For each group with at least min_group_rows evaluation rows: the upper bound of the 95%
    interval of challenger − champion accuracy >= −group_tolerance. Blocks production_model."""
    return group_gate_result(holdout_metrics)


@dg.asset_check(asset=holdout_metrics)
def fairness_within_limits(holdout_metrics: dict, audit: AuditSettings) -> dg.AssetCheckResult:
    """The challenger's demographic-parity and equalised-odds differences within their limits (WARN)."""
    return fairness_result(holdout_metrics, audit)


@dg.asset_check(asset=holdout_metrics)
def calibration_within_limit(holdout_metrics: dict, audit: AuditSettings) -> dg.AssetCheckResult:
    """The challenger's expected calibration error within its limit (WARN)."""
    return calibration_result(holdout_metrics, audit)


AUDIT_CHECKS = [no_group_worse_than_champion, fairness_within_limits, calibration_within_limit]
