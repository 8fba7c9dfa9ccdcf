"""Scoring with the production model, without Dagster: the one code path used by
`census-assets predict`, the `scored_census` asset and the partitioned `scored_batch` asset."""

from __future__ import annotations

import dataclasses

import pandas as pd

from census_assets.core.explanations import explain_frame
from census_assets.core.scoring import Scored, score, training_ranges
from census_assets.storage.registry import Registry

__all__ = ["score_with_production"]


def score_with_production(
    raw: pd.DataFrame, registry: Registry, strict: bool = False, explain: int = 0
) -> tuple[dict, Scored]:
    """(the production pointer record, the scored rows)

    Categories the model's vocabulary lacks, numeric values outside the ranges the model saw in
    training (read from the model) and values no person can have are scored and flagged in
    `scoring_flag`, or refused with `strict=True` (ScoringError). With `explain` K > 0 the scored
    frame also carries each row's K reasons (core.explanations.explain_frame), from the same model.

    Raises RegistryError (no or invalid production pointer), StorageError/OSError (storage),
    SchemaError (raw is not in the census schema) and ScoringError.
    """
    pointer, model = registry.load_production()
    ranges = training_ranges(model.booster)
    scored = score(raw, model.predict_proba, model.vocabulary, strict=strict, ranges=ranges)
    if explain:
        scored = dataclasses.replace(scored, frame=explain_frame(model, scored.frame, explain))
    return pointer, scored
