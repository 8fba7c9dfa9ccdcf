"""A drift report in Dagster metadata: written by the assets that measure drift (`drift`,
`scored_batch`), read back by their checks. The checks read the one `drift_report` entry, never
the per-feature entries, which are there for the UI (one float per feature, so the UI plots
each across materializations and partitions)."""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from census_assets.core.drift import DriftReport

DRIFT_REPORT = "drift_report"


def drift_metadata(report: DriftReport) -> dict[str, Any]:
    """max PSI, its feature, the largest unseen-category share, `psi <feature>` and
    `unseen_share <feature>` for each feature, and the whole report as JSON."""
    return {
        "max_psi": float(report.max_psi),
        "worst_feature": report.worst_feature or "",
        "max_unseen_share": float(report.max_unseen_share),
        **{f"psi {name}": float(value) for name, value in report.psi.items()},
        **{f"unseen_share {name}": float(value) for name, value in report.unseen_share.items()},
        DRIFT_REPORT: dg.MetadataValue.json(report.to_dict()),
    }


def drift_report_from(metadata: Mapping[str, Any]) -> DriftReport | None:
    """The report `drift_metadata` recorded (metadata values or MetadataValue entries), or None
    when there is none (a materialization from before the report was recorded)."""
    entry = metadata.get(DRIFT_REPORT)
    value = getattr(entry, "value", entry)
    if not isinstance(value, Mapping):
        return None
    return DriftReport(
        psi={name: float(v) for name, v in value["psi"].items()},
        unseen_share={name: float(v) for name, v in value["unseen_share"].items()},
        rows=int(value["rows"]),
    )
