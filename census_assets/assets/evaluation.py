"""The new model judged: held-out metrics, and drift of the latest data from the production model's."""

import math

import dagster as dg
import pandas as pd

from census_assets.assets.specs import spec
from census_assets.core import drift as drift_core
from census_assets.core.cleaning import clean
from census_assets.core.evaluation import GROUP_COLUMNS, holdout_report
from census_assets.core.features import encode, split_target
from census_assets.core.promotion import model_version
from census_assets.core.schema import validate_source
from census_assets.core.training import TrainedModel
from census_assets.failures import refusing_permanent_errors
from census_assets.metadata import markdown_table
from census_assets.sources.common import BUNDLED_HOLDOUT, bundled_file
from census_assets.storage.registry import Registry

HOLDOUT_NAME = "bundled adult.test"
REFERENCE_PROFILE = "reference_profile.json"


def read_holdout() -> pd.DataFrame:
    """The bundled adult.test table, raw, in the source schema."""
    return validate_source(pd.read_parquet(bundled_file(BUNDLED_HOLDOUT)))


def _plottable(metrics: dict[str, float]) -> dict[str, float]:
    # Dagster plots float metadata over time; NaN (the AUC of a one-class group) is left out.
    return {name: value for name, value in metrics.items() if not math.isnan(value)}


@dg.asset(**spec("holdout_metrics"))
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
