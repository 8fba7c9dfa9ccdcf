"""The model's life after training: held-out metrics, drift, promotion, scoring.

Thin Dagster wrappers around census_assets.core.{evaluation,drift,registry,scoring}. The model
registry lives in the IO manager's storage (local or gs://), reached through its ArtifactStore.
"""

import math

import dagster as dg
import pandas as pd

from census_assets.assets.census import OWNERS, STORAGE_RETRY, refuse
from census_assets.cli import load_production
from census_assets.core import drift as drift_core
from census_assets.core.cleaning import clean
from census_assets.core.evaluation import GROUP_COLUMNS, holdout_report
from census_assets.core.features import TARGET_VALUE, encode, split_target
from census_assets.core.registry import (
    POINTER,
    Registry,
    RegistryError,
    decide_promotion,
    model_version,
)
from census_assets.core.schema import validate_source
from census_assets.core.scoring import FLAG, PREDICTION, PROBABILITY, score
from census_assets.core.training import TrainedModel
from census_assets.metadata import frame_metadata, markdown_table
from census_assets.resources import TrainingSettings
from census_assets.sources import BUNDLED_HOLDOUT, bundled_file
from census_assets.storage import CensusIOManager, codec_for

GROUP = "model_lifecycle"
HOLDOUT_NAME = "bundled adult.test"
REFERENCE_PROFILE = "reference_profile.json"
TRAINING_METRICS = "training_metrics.json"
lifecycle_asset = dict(group_name=GROUP, owners=OWNERS, retry_policy=STORAGE_RETRY)
MODEL_CODEC = codec_for(TrainedModel)


class LifecycleSettings(dg.ConfigurableResource):
    """Champion/challenger tolerance and the drift limits (PSI per feature)."""

    champion_tolerance: float = 0.0
    """A challenger is promoted when its CV accuracy >= the champion's minus this."""
    drift_warn_psi: float = 0.1
    """PSI above this on any feature: the non-blocking drift warning fails (WARN)."""
    drift_fail_psi: float = 0.25
    """PSI above this on any feature: the blocking drift gate fails and promotion stops."""


def registry_of(io_manager: CensusIOManager) -> Registry:
    return Registry(io_manager.store())


def read_holdout() -> pd.DataFrame:
    """The bundled adult.test table, raw, in the source schema."""
    return validate_source(pd.read_parquet(bundled_file(BUNDLED_HOLDOUT)))


def _plottable(metrics: dict[str, float]) -> dict[str, float]:
    # Dagster plots float metadata over time; NaN (the AUC of a one-class group) is left out.
    return {name: value for name, value in metrics.items() if not math.isnan(value)}


@dg.asset(**lifecycle_asset, kinds={"lightgbm", "pandas"}, code_version="1")
def holdout_metrics(lgbm_model: TrainedModel, cv_accuracy: dict) -> dg.Output[dict]:
    """The new model on the held-out split (adult.test), cleaned and encoded as in training.

    Accuracy, ROC AUC, log loss, confusion matrix, overall and per sex and race group.
    """
    cleaned = clean(read_holdout())
    batch = encode(cleaned, lgbm_model.vocabulary)
    X, y = split_target(batch.frame)
    report = holdout_report(y, lgbm_model.predict_proba(X), {c: cleaned[c] for c in GROUP_COLUMNS})
    overall = report["overall"]
    report.update(
        model_version=model_version(lgbm_model),
        cv_accuracy=float(cv_accuracy["mean"]),
        split=HOLDOUT_NAME,
        unseen_categories=batch.unseen,
    )
    groups = pd.DataFrame(
        [
            {"group": f"{column}={value}", **{k: round(v, 4) for k, v in metrics.items()}}
            for column, values in report["groups"].items()
            for value, metrics in values.items()
        ]
    )
    confusion = pd.DataFrame(
        {
            "": ["actual 0", "actual 1"],
            "predicted 0": [int(overall["true_negative"]), int(overall["false_negative"])],
            "predicted 1": [int(overall["false_positive"]), int(overall["true_positive"])],
        }
    )
    per_group = {
        f"{metric} {column}={value}": metrics[metric]
        for column, values in report["groups"].items()
        for value, metrics in values.items()
        for metric in ("accuracy", "roc_auc", "log_loss")
    }
    return dg.Output(
        report,
        metadata={
            **_plottable(overall),
            **_plottable(per_group),
            "cv_accuracy": report["cv_accuracy"],
            "holdout_minus_cv_accuracy": overall["accuracy"] - report["cv_accuracy"],
            "model_version": report["model_version"],
            "split": HOLDOUT_NAME,
            "confusion_matrix": markdown_table(confusion),
            "per_group": markdown_table(groups),
            "unseen_categories": dg.MetadataValue.json(batch.unseen),
        },
    )


@dg.asset(**lifecycle_asset, kinds={"pandas"}, code_version="1")
def drift(
    raw_census: pd.DataFrame, io_manager: dg.ResourceParam[CensusIOManager]
) -> dg.Output[dict]:
    """How far the latest raw_census is from the data the production model was trained on.

    PSI per feature (numeric on the training deciles, categorical on the model's vocabulary) and
    the share of unseen categories. Empty when no model has been promoted yet.
    """
    registry = registry_of(io_manager)
    pointer = registry.pointer()
    if pointer is None:
        result = {"reference_version": None, "psi": {}, "unseen_share": {}, "rows": len(raw_census)}
        return dg.Output(result, metadata={"reference_version": "none: no production model yet"})
    profile = drift_core.ReferenceProfile.from_dict(registry.read_json(pointer["version"], REFERENCE_PROFILE))
    report = drift_core.compare(profile, clean(raw_census))
    result = {"reference_version": pointer["version"], **report.to_dict()}
    return dg.Output(
        result,
        metadata={
            "reference_version": pointer["version"],
            "reference_rows": profile.rows,
            "max_psi": report.max_psi,
            "worst_feature": report.worst_feature or "",
            "max_unseen_share": report.max_unseen_share,
            **{f"psi {name}": value for name, value in report.psi.items()},
            **{f"unseen_share {name}": value for name, value in report.unseen_share.items()},
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


def promotion_problems(
    cv_accuracy: dict,
    holdout: dict,
    drift_result: dict,
    registry: Registry,
    training: TrainingSettings,
    lifecycle: LifecycleSettings,
) -> tuple[list[str], str]:
    """Why the challenger must not be promoted (empty when it may), and the full reasoning."""
    decision = decide_promotion(
        float(cv_accuracy["mean"]),
        holdout["overall"]["accuracy"],
        registry.pointer(),
        training.accuracy_threshold,
        lifecycle.champion_tolerance,
    )
    problems = [] if decision.promote else [decision.message]
    report = drift_report(drift_result)
    if report is not None:
        verdict = drift_core.judge(report, lifecycle.drift_warn_psi, lifecycle.drift_fail_psi)
        if verdict.level == "fail":
            problems.append(f"drift: {verdict.message}")
    return problems, decision.message


def refuse_if_refitted_data(context: dg.AssetExecutionContext) -> None:
    """The drift reference is fitted on clean_census here: it must be the table lgbm_model learnt
    from, i.e. not materialised again since the model was."""
    latest = {
        name: context.instance.get_latest_materialization_event(dg.AssetKey(name))
        for name in ("clean_census", "lgbm_model")
    }
    if all(latest.values()) and latest["clean_census"].timestamp > latest["lgbm_model"].timestamp:
        raise refuse(
            "clean_census was materialised after lgbm_model, so it is not the data the model was "
            "trained on: materialise lgbm_model (and holdout_metrics) again before promoting"
        )


@dg.asset(**lifecycle_asset, kinds={"lightgbm", "json"}, code_version="1")
def production_model(
    context: dg.AssetExecutionContext,
    lgbm_model: TrainedModel,
    cv_accuracy: dict,
    holdout_metrics: dict,
    drift: dict,
    clean_census: pd.DataFrame,
    io_manager: dg.ResourceParam[CensusIOManager],
    training: TrainingSettings,
    lifecycle: LifecycleSettings,
) -> dg.MaterializeResult:
    """The champion: lgbm_model promoted under `models/<version>/`, pointed to by `production.json`.

    The blocking checks on holdout_metrics (champion/challenger) and drift guard runs that include
    them; the same decision is re-made here so a run selecting production_model alone cannot
    promote a worse model. Nothing is ever deleted; rollback moves only the pointer.
    """
    registry = registry_of(io_manager)
    version = model_version(lgbm_model)
    if holdout_metrics["model_version"] != version:
        raise refuse(
            f"lgbm_model is {version} but holdout_metrics evaluated {holdout_metrics['model_version']}: "
            "materialise holdout_metrics first"
        )
    refuse_if_refitted_data(context)
    problems, reasoning = promotion_problems(
        cv_accuracy, holdout_metrics, drift, registry, training, lifecycle
    )
    if problems:
        raise refuse("not promoting lgbm_model: " + "; ".join(problems))
    overall = holdout_metrics["overall"]
    metrics = {
        "cv_accuracy": float(cv_accuracy["mean"]),
        "holdout_accuracy": overall["accuracy"],
        "holdout_roc_auc": overall["roc_auc"],
        "holdout_log_loss": overall["log_loss"],
    }
    profile = drift_core.fit_reference(clean_census, lgbm_model.vocabulary)
    newly_written = registry.publish(
        version,
        lambda name: MODEL_CODEC.dump(registry.store, name, lgbm_model),
        {
            REFERENCE_PROFILE: profile.to_dict(),
            TRAINING_METRICS: {**metrics, "training_rows": len(clean_census)},
        },
    )
    current = registry.pointer()
    # Retraining to the very same model is not a promotion: the pointer and history stay as they are.
    unchanged = current is not None and current["version"] == version
    record = current if unchanged else registry.promote(version, metrics, run_id=context.run.run_id)
    return dg.MaterializeResult(
        metadata={
            **pointer_metadata(registry, record),
            "newly_written": newly_written,
            "already_in_production": unchanged,
            "decision": reasoning,
            **metrics,
        }
    )


def pointer_metadata(registry: Registry, record: dict) -> dict:
    """What production_model shows after a promotion or a rollback: the pointer and the history."""
    history = pd.DataFrame(registry.history())[["time", "action", "version", "previous_version"]]
    return {
        "version": record["version"],
        "action": record["action"],
        "path": dg.MetadataValue.path(record["path"]),
        "pointer": dg.MetadataValue.path(registry.store.url(POINTER)),
        "previous_version": record["previous_version"] or "",
        "promotion_history": markdown_table(history.tail(20)),
        "promotions": len(history),
    }


class RollbackConfig(dg.Config):
    version: str
    """A version from production_model's promotion_history (or `census-assets history`)."""
    reason: str = ""
    """Kept in the promotion history."""


@dg.op(tags={"kind": "lightgbm"})
def rollback_production_model(
    context: dg.OpExecutionContext, config: RollbackConfig, io_manager: dg.ResourceParam[CensusIOManager]
) -> None:
    """Points production.json at an earlier promoted version; writes nothing else."""
    registry = registry_of(io_manager)
    try:
        record = registry.rollback(config.version, reason=config.reason)
    except RegistryError as error:
        raise refuse(str(error)) from error
    # A materialization of production_model, so the UI shows the rollback in its history and
    # the assets below it (scored_census) follow it.
    context.log_event(
        dg.AssetMaterialization(
            asset_key=production_model.key,
            description=f"rolled back to {record['version']}: {config.reason or 'no reason given'}",
            metadata={**pointer_metadata(registry, record), **record["metrics"]},
        )
    )


@dg.job(description="Roll production back to an earlier promoted version (config: version, reason).")
def rollback_production():
    rollback_production_model()


@dg.asset(**lifecycle_asset, kinds={"lightgbm", "pandas", "parquet"}, code_version="1", deps=[production_model])
def scored_census(io_manager: dg.ResourceParam[CensusIOManager]) -> dg.Output[pd.DataFrame]:
    """The held-out split scored by the production model, through the same path as `census-assets predict`."""
    try:  # the deployment path itself, so the pipeline scores exactly as `predict` does
        pointer, model = load_production(registry_of(io_manager))
    except RegistryError as error:
        raise refuse(str(error)) from error
    holdout = read_holdout()
    scored = score(holdout, model.predict_proba, model.vocabulary)
    frame = scored.frame
    labelled = frame[PREDICTION].notna()
    actual = (holdout["marital_status"].str.strip() == TARGET_VALUE).astype(int)
    return dg.Output(
        frame,
        metadata={
            "model_version": pointer["version"],
            "scored_rows": int(labelled.sum()),
            "flagged_rows": int((frame[FLAG] != "").sum()),
            "rows_with_missing_values": scored.missing_rows,
            "predicted_positive_rate": float(frame.loc[labelled, PREDICTION].mean()),
            "mean_probability": float(frame[PROBABILITY].mean()),
            "accuracy_vs_label": float((frame.loc[labelled, PREDICTION] == actual[labelled]).mean()),
            **frame_metadata(frame),
        },
    )


lifecycle_assets = [holdout_metrics, drift, production_model, scored_census]
