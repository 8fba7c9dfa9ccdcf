"""holdout_metrics' audit on the Dagster side: the challenger's per-group rates, calibration, reasons
and model card computed on the evaluation rows (core.audit, core.model_card), with what the UI
shows of them; the facts of the training data a card records."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from census_assets.core.audit import audit_same_rows
from census_assets.core.calibration import ECE_LIMIT
from census_assets.core.comparison import SameRowsEvaluation
from census_assets.core.explanations import importance_chart_png
from census_assets.core.fairness import GROUP_TOLERANCE, MIN_GROUP_ROWS
from census_assets.core.fingerprints import content_fingerprint
from census_assets.core.model_card import card_charts, pipeline_card
from census_assets.core.promotion import model_version
from census_assets.core.training import TrainedModel
from census_assets.metadata import markdown_table, model_card_value, png_markdown
from census_assets.storage.manifests import utc_now

RATE_COLUMNS = ("accuracy", "true_positive_rate", "false_positive_rate", "selection_rate")


def training_data_facts(instance: dg.DagsterInstance, raw_census: pd.DataFrame, source_uri: str) -> dict:
    """What a card records of the data a model was trained from: the source, a fingerprint of the
    raw table's content, its rows, and the committed raw_census snapshot (its run-scoped file)."""
    event = instance.get_latest_materialization_event(dg.AssetKey("raw_census"))
    metadata = event.asset_materialization.metadata if event else {}
    snapshot = metadata.get("run_path")
    content = pd.util.hash_pandas_object(raw_census, index=False).to_numpy().tobytes()
    return {
        "source": source_uri,
        "fingerprint": content_fingerprint(content),
        "rows": len(raw_census),
        "snapshot": snapshot.value if snapshot is not None else None,
        "snapshot_run": event.run_id if event else None,
    }


def audit_holdout(
    same_rows: SameRowsEvaluation,
    cleaned: pd.DataFrame,
    challenger: TrainedModel,
    rows_from: str,
    training_data: dict,
    cv_scores: list[float],
    run_id: str,
    min_group_rows: int = MIN_GROUP_ROWS,
    group_tolerance: float = GROUP_TOLERANCE,
    ece_limit: float = ECE_LIMIT,
) -> tuple[dict, dict]:
    """(fields for holdout_metrics' output: "audit", "training_data", "model_card"; its metadata)."""
    audit = audit_same_rows(same_rows, cleaned, challenger, rows_from, min_group_rows, group_tolerance)
    card = pipeline_card(
        model=challenger,
        version=model_version(challenger),
        created=utc_now(),
        run_id=run_id,
        training_data=training_data,
        cv_scores=cv_scores,
        audit=audit,
        ece_limit=ece_limit,
    )
    return {"audit": audit, "training_data": training_data, "model_card": card}, audit_metadata(audit, card)


def _rates_table(section: dict) -> pd.DataFrame:
    rows = []
    for record in section["groups"]:
        row = {"group": "all rows" if record["column"] == "all" else f"{record['column']}={record['group']}",
               "rows": record["rows"]}
        for rate in RATE_COLUMNS:
            value, low, high = (record[rate], record[f"{rate}_low"], record[f"{rate}_high"])
            row[rate] = "–" if value is None else f"{value:.4f} [{low:.4f}, {high:.4f}]"
        rows.append(row)
    return pd.DataFrame(rows)


def audit_metadata(audit: dict, card: dict) -> dict:
    """What holdout_metrics shows of the audit: the group gate, the challenger's rates per group with
    their intervals, the between-group differences, calibration (figures and reliability diagrams),
    the importance by mean |contribution| (chart) and the model card."""
    challenger = audit["challenger"]
    calibration = challenger["calibration"]
    gate = audit["group_gate"]
    between = challenger["between_groups"]
    charts = card_charts(card)
    metadata = {
        "group_gate": gate["message"] if gate else "no champion: nothing to compare with",
        "per_group_rates": markdown_table(_rates_table(challenger)),
        "brier_score": calibration["overall"]["brier"],
        "expected_calibration_error": calibration["overall"]["ece"],
        "importance_by_contribution": png_markdown(
            importance_chart_png(pd.DataFrame(audit["importance"]), title="holdout_metrics: mean |contribution|"),
            "importance by mean absolute contribution",
        ),
        "model_card": model_card_value(card),
    }
    for column, values in between.items():
        metadata[f"demographic_parity_difference {column}"] = values["demographic_parity_difference"]
        if values["equalized_odds_difference"] is not None:
            metadata[f"equalized_odds_difference {column}"] = values["equalized_odds_difference"]
    for column, groups in calibration["groups"].items():
        for value, result in groups.items():
            if result["ece"] is not None:
                metadata[f"expected_calibration_error {column}={value}"] = result["ece"]
    for (column, name), png in zip(card["reliability_diagrams"].items(), charts.values()):
        metadata[f"reliability_diagram {column}"] = png_markdown(png, name)
    return metadata
