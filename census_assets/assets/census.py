"""The training assets: raw_census -> clean_census -> features -> cv_accuracy -> lgbm_model,
thin Dagster wrappers around census_assets.core."""

import time

import dagster as dg
import pandas as pd
from pydantic import Field

from census_assets.assets.labelled_batches import (
    labelled_metadata,
    labelled_training,
    source_version,
    with_labelled_rows,
)
from census_assets.assets.source import census_source
from census_assets.assets.specs import spec
from census_assets.core.cleaning import CleaningError, clean
from census_assets.core.features import VOCABULARY_ATTR, Vocabulary, encode
from census_assets.core.reporting import feature_importance, importance_chart_png
from census_assets.core.schema import SchemaError, validate_source
from census_assets.core.training import TrainedModel, compact_split, gate_failure
from census_assets.core.validation import SourceValidationError, validate_training_source
from census_assets.failures import refuse
from census_assets.metadata import frame_metadata, markdown_table, png_markdown, table_value
from census_assets.resources.dask import DaskResource
from census_assets.resources.evaluation import EvaluationSettings
from census_assets.resources.source import CensusSource
from census_assets.resources.storage import ArtifactStorage
from census_assets.resources.training import TrainingSettings
from census_assets.sources.common import BUNDLED_VOCABULARY, SourceError, bundled_file


class FeaturesConfig(dg.Config):
    vocabulary: str = Field(
        default="bundled",
        description="`bundled`: the fixed vocabulary shipped with the package (same columns for every "
        "batch); `fit`: fit the vocabulary on this batch (for a table with other categories)",
    )


# Downstream of the observed source: a new source data version makes raw_census stale in the UI.
@dg.asset(**spec("raw_census"), deps=[census_source])
def raw_census(
    context: dg.AssetExecutionContext,
    source: CensusSource,
    training: TrainingSettings,
    evaluation: EvaluationSettings,
    storage: ArtifactStorage,
) -> dg.Output[pd.DataFrame]:
    """The US Census Adult table as the source has it, validated against the census schema and
    against what the later steps need (rows left after cleaning, both target classes, enough rows
    per class for the CV, possible values), so bad data is refused here, before anything is written.

    Plus the labelled batches outside the evaluation window (docs/lifecycle.md): their committed
    inputs with their true labels. The window is kept out, and the split goes with the table to
    holdout_metrics. With no labelled batch the table is the source's alone."""
    try:
        # A BigQuery table's last change and row count version the data (before it is read).
        info = source.table_info()
        table = validate_source(source.read())
        validate_training_source(table, training.n_splits)
    except (SchemaError, SourceError, SourceValidationError) as error:
        raise refuse(f"{source.uri}: {error}") from error
    labelled = labelled_training(context.instance, storage.store(), evaluation.evaluation_window_rows)
    data_version = dg.DataVersion(info.version) if info else None
    if labelled.any:
        table = with_labelled_rows(table, labelled)
        base = info.version if info else source_version(context.instance)
        data_version = dg.DataVersion(f"{base}+labels:{labelled.revisions()}")
    return dg.Output(
        table,
        metadata={
            "source": source.uri,
            **(info.metadata() if info else {}),
            **labelled_metadata(labelled),
            **frame_metadata(table),
        },
        data_version=data_version,
    )


@dg.asset(**spec("clean_census"))
def clean_census(raw_census: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """NA and duplicate rows dropped, strings stripped, '?' -> 'Unknown', unused columns dropped."""
    try:
        table = clean(raw_census)
    except CleaningError as error:
        raise refuse(str(error)) from error
    return dg.Output(
        table,
        metadata={"rows_dropped": len(raw_census) - len(table), **frame_metadata(table)},
    )


@dg.asset(**spec("features"))
def features(config: FeaturesConfig, clean_census: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """One-hot features on a fixed vocabulary, age_bins and the never_married target.

    The vocabulary travels inside the Parquet file (key-value metadata), so any later batch is
    encoded to the same columns in the same order; unseen categories set no dummy and are counted.
    """
    if config.vocabulary == "fit":
        vocabulary = Vocabulary.fit(clean_census)
    elif config.vocabulary == "bundled":
        vocabulary = Vocabulary.load(bundled_file(BUNDLED_VOCABULARY))
    else:
        raise refuse(f"features.vocabulary must be 'bundled' or 'fit', got {config.vocabulary!r}")
    batch = encode(clean_census, vocabulary)
    unseen = {f"{column}={value}": count for column, values in batch.unseen.items() for value, count in values.items()}
    return dg.Output(
        batch.frame,
        metadata={
            "feature_count": len(vocabulary.feature_names),
            "positive_rate": float(batch.frame["never_married"].mean()),
            "unseen_category_rows": batch.unseen_rows,
            "unseen_categories": dg.MetadataValue.json(unseen),
            "vocabulary_source": config.vocabulary,
            **frame_metadata(batch.frame),
        },
    )


@dg.asset(**spec("cv_accuracy"))
def cv_accuracy(features: pd.DataFrame, training: TrainingSettings, dask: DaskResource) -> dg.Output[dict]:
    """Mean accuracy of LightGBM over RepeatedStratifiedKFold (5 splits x 3 repeats)."""
    X, y = compact_split(features)  # uint8 dummies stay one byte a cell (docs/scale.md)
    # On a Dask cluster when CENSUS_DASK_ADDRESS is set: the same folds, one task each.
    result = dask.cross_validate(X, y, training.protocol, training.workers or None)
    folds = pd.DataFrame(
        {"fold": range(1, len(result.scores) + 1), "accuracy": result.scores, "fit_seconds": result.fit_seconds}
    )
    summary = {
        "mean": result.mean,
        "std": result.std,
        "scores": result.scores,
        "fit_seconds": result.fit_seconds,
        "wall_seconds": result.wall_seconds,
        "protocol": training.protocol.__dict__,
        "rows": int(len(y)),
    }
    return dg.Output(
        summary,
        metadata={
            "accuracy_mean": result.mean,
            "accuracy_std": result.std,
            "accuracy_min": min(result.scores),
            "accuracy_max": max(result.scores),
            "threshold": training.accuracy_threshold,
            "fold_scores": markdown_table(folds),
            "cv_wall_seconds": result.wall_seconds,
            "fit_seconds_total": float(sum(result.fit_seconds)),
            "parallel_fits": result.workers,
            "threads_per_fit": result.threads_per_fit,
            "compute": dask.address or "local",
        },
    )


@dg.asset(**spec("lgbm_model"))
def lgbm_model(
    features: pd.DataFrame,
    cv_accuracy: dict,
    training: TrainingSettings,
    dask: DaskResource,
) -> dg.Output[TrainedModel]:
    """The final LightGBM model on all rows, fitted only when the CV accuracy passes the gate.

    The blocking check guards runs that include cv_accuracy; this re-check guards a run that
    selects lgbm_model alone against a stored accuracy below the threshold.
    """
    if (reason := gate_failure(cv_accuracy["mean"], training.accuracy_threshold)) is not None:
        raise refuse(f"refusing to fit lgbm_model: {reason}")
    vocabulary = Vocabulary.from_dict(features.attrs[VOCABULARY_ATTR])
    X, y = compact_split(features)
    started = time.perf_counter()
    # DaskLGBMClassifier on the cluster above CENSUS_DASK_FIT_MIN_ROWS rows, else a local fit.
    booster = dask.fit_final(X, y, vocabulary.feature_names, training.model_seed)
    seconds = time.perf_counter() - started
    names = booster.feature_name()
    importance = feature_importance(booster)
    chart = importance_chart_png(importance)
    return dg.Output(
        TrainedModel(booster, vocabulary, importance_chart=chart),
        metadata={
            "cv_accuracy": float(cv_accuracy["mean"]),
            "trees": booster.num_trees(),
            "features": len(names),
            "training_rows": int(len(y)),
            "fit_seconds": seconds,
            "trained_on": dask.address if dask.fits_on_cluster(len(y)) else "local",
            "feature_importance_top20": table_value(importance.round({"gain": 2, "gain_share": 4})),
            "feature_importance_chart": png_markdown(chart, "feature importance, top 20 by gain"),
        },
    )


TRAINING_ASSETS = [raw_census, clean_census, features, cv_accuracy, lgbm_model]
