"""scored_census: the held-out split scored by the production model, as `census-assets predict` scores."""

import dagster as dg
import pandas as pd

from census_assets.assets.evaluation import read_holdout
from census_assets.assets.promotion import production_model
from census_assets.assets.specs import spec
from census_assets.core.labels import LABEL_COLUMN, is_target
from census_assets.core.scoring import FLAG, PREDICTION, PROBABILITY
from census_assets.failures import refusing_permanent_errors
from census_assets.metadata import frame_metadata
from census_assets.predict import score_with_production
from census_assets.storage.registry import Registry


@dg.asset(**spec("scored_census"), deps=[production_model])
def scored_census(model_registry: dg.ResourceParam[Registry]) -> dg.Output[pd.DataFrame]:
    """The held-out split scored by the production model, through the same path as `census-assets predict`."""
    holdout = read_holdout()
    with refusing_permanent_errors():  # the deployment path itself: the pipeline scores as `predict` does
        pointer, scored = score_with_production(holdout, model_registry)
    frame = scored.frame
    labelled = frame[PREDICTION].notna()
    actual = pd.Series(is_target(holdout[LABEL_COLUMN]), index=holdout.index)
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
