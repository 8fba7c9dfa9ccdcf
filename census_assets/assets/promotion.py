"""production_model: lgbm_model promoted into the model registry when it beats the champion."""

import dagster as dg
import pandas as pd

from census_assets.assets.evaluation import REFERENCE_PROFILE, TRAINING_METRICS, drift_report, refuse_if_refitted
from census_assets.assets.specs import spec
from census_assets.core import drift as drift_core
from census_assets.core.model_card import human_parts_refusal, read_human_parts
from census_assets.core.promotion import PromotionDecision, decide_from_evaluation, model_version
from census_assets.core.rebuild import record_build
from census_assets.core.training import TrainedModel
from census_assets.failures import refuse, refusing_permanent_errors
from census_assets.metadata import markdown_table, model_card_value
from census_assets.resources.audit import AuditSettings
from census_assets.resources.lifecycle import LifecycleSettings
from census_assets.resources.training import TrainingSettings
from census_assets.sources.common import BUNDLED_SOURCE
from census_assets.storage.builds import build_files
from census_assets.storage.cards import CARD_JSON, promotion_card_files
from census_assets.storage.registry import POINTER, Registry


def promotion_problems(
    holdout: dict, drift_result: dict, training: TrainingSettings, lifecycle: LifecycleSettings
) -> tuple[list[str], PromotionDecision]:
    """Why the challenger must not be promoted (empty when it may), and the decision on the same rows."""
    decision = decide_from_evaluation(holdout, training.accuracy_threshold, lifecycle.champion_tolerance)
    problems = [] if decision.promote else [decision.message]
    report = drift_report(drift_result)
    if report is not None:
        verdict = drift_core.judge(report, lifecycle.drift_warn_psi, lifecycle.drift_fail_psi)
        if verdict.level == "fail":
            problems.append(f"drift: {verdict.message}")
    return problems, decision


@dg.asset(**spec("production_model"))
def production_model(
    context: dg.AssetExecutionContext,
    lgbm_model: TrainedModel,
    cv_accuracy: dict,
    holdout_metrics: dict,
    drift: dict,
    raw_census: pd.DataFrame,
    clean_census: pd.DataFrame,
    model_registry: dg.ResourceParam[Registry],
    training: TrainingSettings,
    lifecycle: LifecycleSettings,
    audit: AuditSettings,
) -> dg.MaterializeResult:
    """The champion: lgbm_model promoted under `models/<version>/`, pointed to by `production.json`.

    The blocking checks on holdout_metrics (challenger against champion on the same rows) and drift
    guard runs that include them; the same decision is re-made here so a run selecting
    production_model alone cannot promote a worse model, and the promotion is conditional on the
    champion holdout_metrics compared against. The registry version records what it was trained on
    and the promotion record the evidence. Nothing is ever deleted; rollback moves only the pointer.
    """
    with refusing_permanent_errors():
        version = model_version(lgbm_model)
        if holdout_metrics["model_version"] != version:
            raise refuse(
                f"lgbm_model is {version} but holdout_metrics evaluated {holdout_metrics['model_version']}: "
                "materialise holdout_metrics first"
            )
        refuse_if_refitted(context, "clean_census", "raw_census")
        champion = model_registry.pointer()
        problems, decision = promotion_problems(holdout_metrics, drift, training, lifecycle)
        gate = holdout_metrics["audit"]["group_gate"]
        if gate and not gate["passed"]:
            problems.append(f"group gate: {gate['message']}")
        if audit.require_model_card and (refusal := human_parts_refusal(read_human_parts())):
            problems.append(refusal)
        current = champion["version"] if champion else None
        if current != decision.champion_version:
            problems.append(
                f"the champion is {current or 'none'} but holdout_metrics compared against "
                f"{decision.champion_version or 'none'}: materialise holdout_metrics again"
            )
        if problems:
            raise refuse("not promoting lgbm_model: " + "; ".join(problems))
        overall = holdout_metrics["overall"]
        # holdout_*: on the evaluation rows (the window of labelled batches, else the held-out table).
        metrics = {
            "cv_accuracy": float(cv_accuracy["mean"]),
            "holdout_accuracy": overall["accuracy"],
            "holdout_roc_auc": overall["roc_auc"],
            "holdout_log_loss": overall["log_loss"],
        }
        evidence = {**decision.evidence(), "evaluation_rows": holdout_metrics["evaluation_rows"]}
        profile = drift_core.fit_reference(clean_census, lgbm_model.vocabulary)
        card = promotion_card_files(
            lgbm_model, version, context.run.run_id, holdout_metrics, cv_accuracy["scores"], drift, evidence,
            audit.calibration_limit,
        )
        newly_written = model_registry.publish(
            version,
            lgbm_model,
            {
                REFERENCE_PROFILE: profile.to_dict(),
                TRAINING_METRICS: {
                    **metrics,
                    "training_rows": len(clean_census),
                    # Never evaluation rows of a later comparison (holdout_metrics leaves them out).
                    "training_batches": holdout_metrics["training_batches"],
                    "evidence": evidence,
                },
                **card,
                # The raw rows and the record `census-assets reproduce` rebuilds the version from.
                **build_files(raw_census, record_build(lgbm_model, raw_census, BUNDLED_SOURCE, cleaned=clean_census)),
            },
        )
        # Retraining to the very same model is not a promotion: the pointer and history stay as they are.
        unchanged = champion is not None and champion["version"] == version
        # The swap is conditional on the champion decided against: a rollback or another promotion
        # landing in between fails this step (ChampionChangedError) instead of being overridden.
        record = champion if unchanged else model_registry.promote(
            version, metrics, run_id=context.run.run_id, expected_champion=decision.champion_version, evidence=evidence
        )
        return dg.MaterializeResult(
            metadata={
                **pointer_metadata(model_registry, record),
                "newly_written": newly_written,
                "already_in_production": unchanged,
                "decision": decision.message,
                "evidence": dg.MetadataValue.json(evidence),
                # The card as published (the diagrams are the ones card_files drew for it).
                "model_card": model_card_value(card[CARD_JSON]),
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
