"""Jobs: the whole graph, and the rollback of the production pointer."""

import warnings

import dagster as dg
from pydantic import Field

from census_assets.assets.promotion import pointer_metadata, production_model
from census_assets.assets.specs import TRAINING_GROUP
from census_assets.failures import refusing_permanent_errors
from census_assets.storage.registry import Registry

with warnings.catch_warnings():  # include_sources is beta in Dagster 1.13
    warnings.simplefilter("ignore", category=dg.BetaWarning)
    # The source's observation first, so raw_census's data version follows what it reads; then the
    # census group and everything downstream of it (held-out metrics, drift, promotion, scoring).
    TRAINING_GRAPH = dg.AssetSelection.groups(TRAINING_GROUP, include_sources=True).downstream()

census_pipeline = dg.define_asset_job(
    "census_pipeline",
    selection=TRAINING_GRAPH,
    description="The whole graph: source, clean, features, CV gate, model, evaluation, drift, promotion.",
)


class RollbackConfig(dg.Config):
    version: str = Field(
        description="A version from production_model's promotion_history (or `census-assets history`)."
    )
    reason: str = Field(default="", description="Kept in the promotion history.")


@dg.op(tags={"kind": "lightgbm"})
def rollback_production_model(
    context: dg.OpExecutionContext, config: RollbackConfig, model_registry: dg.ResourceParam[Registry]
) -> None:
    """Points production.json at an earlier promoted version; writes nothing else."""
    with refusing_permanent_errors():
        record = model_registry.rollback(config.version, reason=config.reason)
    # A materialization of production_model, so the UI shows the rollback in its history and
    # the assets below it (scored_census) follow it.
    context.log_event(
        dg.AssetMaterialization(
            asset_key=production_model.key,
            description=f"rolled back to {record['version']}: {config.reason or 'no reason given'}",
            metadata={**pointer_metadata(model_registry, record), **record["metrics"]},
        )
    )


@dg.job(description="Roll production back to an earlier promoted version (config: version, reason).")
def rollback_production():
    rollback_production_model()
