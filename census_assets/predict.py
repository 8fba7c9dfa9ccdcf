"""Scoring with the production model, without Dagster: the one code path used by
`census-assets predict`, the `scored_census` asset and the partitioned `scored_batch` asset."""

from __future__ import annotations

import pandas as pd

from census_assets.artifacts import load_production
from census_assets.core.registry import Registry
from census_assets.core.scoring import Scored, score

__all__ = ["score_with_production"]


def score_with_production(raw: pd.DataFrame, registry: Registry, strict: bool = False) -> tuple[dict, Scored]:
    """(the production pointer record, the scored rows)

    Raises RegistryError (no or invalid production pointer), StorageError/OSError (storage),
    SchemaError (raw is not in the census schema) and ScoringError (strict and flagged rows).
    """
    pointer, model = load_production(registry)
    return pointer, score(raw, model.predict_proba, model.vocabulary, strict=strict)
