"""The new model judged against the production model on the same rows, and drift of the latest data from
the production model's."""

import math

import dagster as dg
import pandas as pd

from census_assets.assets.audit import audit_holdout, training_data_facts
from census_assets.assets.drift_metadata import drift_metadata
from census_assets.assets.labelled_rows import load_labelled_rows, source_rows, split_of
from census_assets.assets.specs import spec
from census_assets.core import drift as drift_core
from census_assets.core.cleaning import clean
from census_assets.core.comparison import CHALLENGER, CHAMPION, evaluate_on_rows
from census_assets.core.evaluation_window import EvaluationPlan, LabelledBatch, plan_evaluation
from census_assets.core.file_formats import parquet_frame
from census_assets.core.promotion import model_version
from census_assets.core.schema import SchemaError, validate_source
from census_assets.core.training import TrainedModel
from census_assets.failures import refuse, refusing_permanent_errors
from census_assets.metadata import markdown_table
from census_assets.resources.audit import AuditSettings
from census_assets.resources.evaluation import EvaluationSettings
from census_assets.resources.source import CensusSource
from census_assets.resources.storage import ArtifactStorage
from census_assets.sources.common import BUNDLED_HOLDOUT, SourceError, bundled_file
from census_assets.storage.registry import Registry

HOLDOUT_NAME = "bundled adult.test"
WINDOW_NAME = "evaluation window"
REFERENCE_PROFILE = "reference_profile.json"
# Written by production_model into each registry version: its metrics and what it trained on.
TRAINING_METRICS = "training_metrics.json"


def read_holdout() -> pd.DataFrame:
    """The bundled adult.test table, raw, in the source schema."""
    return validate_source(parquet_frame(bundled_file(BUNDLED_HOLDOUT)))


def trained_batches(registry: Registry, version: str) -> tuple[LabelledBatch, ...]:
    """The labelled batches a registry version was trained on (none for a version made before
    labelled batches reached training)."""
    recorded = registry.read_json(version, TRAINING_METRICS).get("training_batches", [])
    return tuple(LabelledBatch.from_dict(batch) for batch in recorded)


def _plottable(metrics: dict[str, float]) -> dict[str, float]:
    # Dagster plots float metadata over time; NaN (the AUC of a one-class group) is left out.
    return {name: value for name, value in metrics.items() if not math.isnan(value)}


def refuse_if_refitted(context: dg.AssetExecutionContext, *upstreams: str) -> None:
    """Each of `upstreams` must be the table lgbm_model learnt from, i.e. not materialised again
    since the model was (a re-materialised raw_census may hold another split, a re-materialised
    clean_census other rows)."""
    keys = [dg.AssetKey(name) for name in (*upstreams, "lgbm_model")]
    # One query for all; an asset never materialised on this instance is absent from the answer.
    latest = context.instance.get_latest_materialization_events(keys)
    model = latest.get(keys[-1])
    for key in keys[:-1]:
        upstream = latest.get(key)
        if model and upstream and upstream.timestamp > model.timestamp:
            raise refuse(
                f"{key.to_user_string()} was materialised after lgbm_model, so it is not the data the model "
                "was trained on: materialise lgbm_model (and holdout_metrics) again before promoting"
            )


def evaluation_rows(
    plan: EvaluationPlan, store, evaluation: EvaluationSettings, source: CensusSource
) -> tuple[pd.DataFrame, str]:
    """The raw rows both models are judged on, and their name."""
    if plan.use_window:
        return pd.concat([source_rows(load_labelled_rows(store, batch)) for batch in plan.batches]), WINDOW_NAME
    if evaluation.bundled_holdout:
        return read_holdout(), HOLDOUT_NAME
    try:
        return evaluation.read_own_holdout(source), evaluation.holdout
    except (SchemaError, SourceError) as error:
        raise refuse(f"CENSUS_HOLDOUT {evaluation.holdout}: {error}") from error


def _per_group(report: dict) -> dict[str, float]:
    return {
        f"{metric} {column}={value}": metrics[metric]
        for column, values in report["groups"].items()
        for value, metrics in values.items()
        for metric in ("accuracy", "accuracy_ci_low", "accuracy_ci_high", "roc_auc", "log_loss")
    }


def _group_table(reports: dict[str, dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"model": role, "group": f"{column}={value}", **{k: round(v, 4) for k, v in metrics.items()}}
            for role, report in reports.items()
            for column, values in report["groups"].items()
            for value, metrics in values.items()
        ]
    )


@dg.asset(**spec("holdout_metrics"))
def holdout_metrics(
    context: dg.AssetExecutionContext,
    lgbm_model: TrainedModel,
    cv_accuracy: dict,
    raw_census: pd.DataFrame,
    model_registry: dg.ResourceParam[Registry],
    evaluation: EvaluationSettings,
    source: CensusSource,
    storage: ArtifactStorage,
    audit: AuditSettings,
) -> dg.Output[dict]:
    """The new model (challenger) and the production model (champion) on the same evaluation rows:
    the evaluation window that raw_census kept out of training, when enough of its rows are left
    once the batches either model trained on are taken out (evaluation.min_evaluation_rows);
    otherwise the held-out table (CENSUS_HOLDOUT, by default the bundled adult.test). Cleaned and
    encoded as in training, each model with its own vocabulary.

    Accuracy with its 95% interval, ROC AUC, log loss, confusion matrix, overall and per group
    (CENSUS_GROUP_COLUMNS), for both models; challenger - champion accuracy with its paired
    bootstrap interval, which decides promotion (checks/lifecycle.py).
    """
    refuse_if_refitted(context, "raw_census")
    split = split_of(raw_census)
    store = storage.store()
    with refusing_permanent_errors():
        pointer = model_registry.pointer()
        champion = model_registry.load(pointer["version"]) if pointer else None
        champion_batches = trained_batches(model_registry, pointer["version"]) if pointer else ()
        trained_on = {batch.identity for batch in (*split.training, *champion_batches)}
        plan = plan_evaluation(split.window, trained_on, evaluation.min_evaluation_rows)
        rows, name = evaluation_rows(plan, store, evaluation, source)
    cleaned = clean(rows)
    same_rows = evaluate_on_rows(cleaned, lgbm_model, champion, evaluation.group_columns)
    audit_fields, audit_metadata = audit_holdout(
        same_rows,
        cleaned,
        lgbm_model,
        name,
        training_data_facts(context.instance, raw_census, source.uri),
        list(cv_accuracy["scores"]),
        context.run.run_id,
        audit.min_group_rows,
        audit.group_tolerance,
        audit.calibration_limit,
    )
    report = dict(same_rows.reports[CHALLENGER])
    overall = report["overall"]
    report.update(
        model_version=model_version(lgbm_model),
        cv_accuracy=float(cv_accuracy["mean"]),
        split=name,
        unseen_categories=same_rows.unseen,
        evaluation_rows={
            "kind": "window" if plan.use_window else "holdout",
            "rows": len(same_rows.y),
            "batches": [batch.to_dict() for batch in plan.batches] if plan.use_window else [],
            "left_out": [batch.to_dict() for batch in plan.left_out],
            "left_out_rows": plan.left_out_rows,
            "description": plan.describe(),
        },
        champion={"version": pointer["version"], **same_rows.reports[CHAMPION]} if pointer else None,
        comparison=same_rows.comparison.to_dict() if same_rows.comparison else None,
        training_batches=[batch.to_dict() for batch in split.training],
        **audit_fields,
    )
    confusion = pd.DataFrame(
        {
            "": ["actual 0", "actual 1"],
            "predicted 0": [int(overall["true_negative"]), int(overall["false_negative"])],
            "predicted 1": [int(overall["false_positive"]), int(overall["true_positive"])],
        }
    )
    comparison = same_rows.comparison
    return dg.Output(
        report,
        metadata={
            **_plottable(overall),
            **_plottable(_per_group(report)),
            "cv_accuracy": report["cv_accuracy"],
            "holdout_minus_cv_accuracy": overall["accuracy"] - report["cv_accuracy"],
            "model_version": report["model_version"],
            "split": name,
            "evaluation_rows": plan.describe(),
            "evaluation_rows_left_out": float(plan.left_out_rows),
            "champion_version": pointer["version"] if pointer else "none: no production model yet",
            **(comparison.figures() if comparison else {}),
            "confusion_matrix": markdown_table(confusion),
            "per_group": markdown_table(_group_table(same_rows.reports)),
            "unseen_categories": dg.MetadataValue.json(same_rows.unseen),
            **audit_metadata,
        },
    )


@dg.asset(**spec("drift"))
def drift(
    raw_census: pd.DataFrame, model_registry: dg.ResourceParam[Registry]
) -> dg.Output[dict]:
    """How far the latest raw_census is from the data the production model was trained on.

    PSI per feature (numeric on the training deciles, categorical on the model's vocabulary) and
    the share of unseen categories. Empty when no model has been promoted yet.
    """
    with refusing_permanent_errors():
        pointer = model_registry.pointer()
        reference = model_registry.read_json(pointer["version"], REFERENCE_PROFILE) if pointer else None
    if pointer is None:
        result = {"reference_version": None, "psi": {}, "unseen_share": {}, "rows": len(raw_census)}
        return dg.Output(result, metadata={"reference_version": "none: no production model yet"})
    profile = drift_core.ReferenceProfile.from_dict(reference)
    report = drift_core.compare(profile, clean(raw_census))
    result = {"reference_version": pointer["version"], **report.to_dict()}
    return dg.Output(
        result,
        metadata={
            "reference_version": pointer["version"],
            "reference_rows": profile.rows,
            **drift_metadata(report),
            "by_feature": markdown_table(
                pd.DataFrame(
                    {
                        "feature": list(report.psi),
                        "psi": list(report.psi.values()),
                        "unseen_share": [report.unseen_share.get(name, 0.0) for name in report.psi],
                    }
                ).sort_values("psi", ascending=False)
            ),
        },
    )


def drift_report(drift_result: dict) -> drift_core.DriftReport | None:
    if drift_result["reference_version"] is None:
        return None
    return drift_core.DriftReport(drift_result["psi"], drift_result["unseen_share"], drift_result["rows"])
