"""The summary across batches, without Dagster: one row per partition and the drift chart
(the `batch_summary` asset reads the records from the instance)."""

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from census_assets.core.reporting import chart_png

SUMMARY_COLUMNS = (
    "partition", "status", "model_version", "current", "updated_at", "rows", "scored_rows",
    "flagged_rows", "positive_rate", "estimated_accuracy", "max_psi", "worst_feature", "failure",
)  # fmt: skip


def summary_table(records: Sequence[Mapping], production_version: str | None) -> pd.DataFrame:
    """One row per partition, newest first: status (scored / failed / in progress / not scored),
    the version that scored it and whether that is production's, the figures of its latest
    materialization, and the reason its latest attempt failed."""
    rows = []
    for record in records:
        version = record.get("model_version") or ""
        rows.append(
            {
                "partition": record["partition"],
                "status": record.get("status", "not scored"),
                "model_version": version,
                "current": bool(version) and version == production_version,
                "updated_at": record.get("updated_at") or "",
                "rows": float(record.get("rows", np.nan)),
                "scored_rows": float(record.get("scored_rows", np.nan)),
                "flagged_rows": float(record.get("flagged_rows", np.nan)),
                "positive_rate": float(record.get("positive_rate", np.nan)),
                "estimated_accuracy": float(record.get("estimated_accuracy", np.nan)),
                "max_psi": float(record.get("max_psi", np.nan)),
                "worst_feature": record.get("worst_feature") or "",
                "failure": record.get("failure") or "",
            }
        )
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return table.sort_values(["updated_at", "partition"], ascending=[False, True], kind="stable").reset_index(drop=True)


def behind_production(records: Sequence[Mapping], production_version: str) -> list[str]:
    """The partitions whose scores are another model's than `production_version`: scored (their
    latest attempt succeeded) by another version. The summary's count and `census-assets rescore`
    both ask here."""
    return [
        record["partition"]
        for record in records
        if record.get("status") == "scored" and record.get("model_version") not in (None, "", production_version)
    ]


def drift_chart_png(scored: pd.DataFrame, warn_psi: float, fail_psi: float) -> bytes:
    """Max PSI of each scored batch against the time it was scored, with the warn and fail limits."""
    ordered = scored.sort_values("updated_at")
    times = pd.to_datetime(ordered["updated_at"], utc=True)

    def draw(figure, axes) -> None:
        axes.plot(times, ordered["max_psi"], marker="o", linestyle="-", color="#4f43dd", label="max PSI")
        axes.axhline(warn_psi, color="#e0a100", linestyle="--", label=f"warn {warn_psi:g}")
        axes.axhline(fail_psi, color="#d1304a", linestyle="--", label=f"fail {fail_psi:g}")
        axes.set_ylabel("max PSI over features")
        axes.set_title("scored_batch: drift per batch", fontsize=10)
        axes.legend(fontsize=7, loc="upper left")
        figure.autofmt_xdate()

    return chart_png(3.0, draw)
