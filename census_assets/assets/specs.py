"""Every asset's spec, decided here and nowhere else: its group, owners, run pool, retry policy,
kinds, code version, automation condition and where it is stored; then, once the deployment is
known, what the deployment adds (the model's freshness policy, `gcs`/`bigquery` kinds).

An asset's decorator takes `**spec("<name>")`; `census_assets.definitions` calls
`for_deployment(assets, environment)` once. To add an asset: one row in SPECS.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import dagster as dg

from census_assets.resources.warehouse import WAREHOUSE_IO_MANAGER
from census_assets.settings import Environment

TRAINING_GROUP = "census"
LIFECYCLE_GROUP = "model_lifecycle"
BATCH_GROUP = "batch_scoring"
OWNERS = ["team:ml-platform"]

# Run-granularity concurrency pools and their limits (census_assets.automation.run_coordinator
# writes them before a run is queued): runs that write the training graph's storage queue behind
# each other; batch-scoring runs share a pool of their own.
TRAINING_POOL = "census_training"
SCORING_POOL = "census_scoring"
POOL_LIMITS: dict[str, int] = {TRAINING_POOL: 1, SCORING_POOL: 2}

# The whole training graph for `dagster asset materialize --select` (the batch-scoring assets are
# partitioned: they run per batch, from the inbox sensor or a backfill).
TRAINING_SELECTION = f"group:{TRAINING_GROUP} or group:{LIFECYCLE_GROUP}"

# Storage and source reads can fail transiently; deterministic errors opt out (census_assets.failures).
STORAGE_RETRY = dg.RetryPolicy(max_retries=3, delay=1.0, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

# eager() alone ignores blocking checks: after a failed gate it would still request the asset
# below it on the next tick. Requiring the upstream blocking checks to have passed stops that.
GATED_EAGER = dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()


@dataclass(frozen=True)
class Role:
    """What an asset is to the pipeline: its group, pool and how it is kept up to date."""

    group: str
    pool: str | None
    automation: dg.AutomationCondition | None


# raw_census follows the source (schedule or sensor); everything below it follows it eagerly.
SOURCE_READ = Role(TRAINING_GROUP, TRAINING_POOL, None)
TRAINING = Role(TRAINING_GROUP, TRAINING_POOL, GATED_EAGER)
LIFECYCLE = Role(LIFECYCLE_GROUP, TRAINING_POOL, GATED_EAGER)
# Batch scoring follows the inbox sensor (docs/batches.md), batch_performance the labels sensor
# (docs/lifecycle.md); the summaries only read the instance.
BATCH_SCORING = Role(BATCH_GROUP, SCORING_POOL, None)
BATCH_REPORT = Role(BATCH_GROUP, None, None)

@dataclass(frozen=True)
class Spec:
    role: Role
    kinds: frozenset[str]
    io_manager_key: str = "io_manager"  # the census IO manager (census_assets.io_manager)
    code_version: str = "1"  # bump when a change of logic makes earlier materialisations stale


SPECS: dict[str, Spec] = {
    "raw_census": Spec(SOURCE_READ, frozenset({"pandas", "parquet"})),
    "clean_census": Spec(TRAINING, frozenset({"pandas", "parquet"})),
    "features": Spec(TRAINING, frozenset({"pandas", "parquet"})),
    "cv_accuracy": Spec(TRAINING, frozenset({"lightgbm", "scikit-learn"})),
    "lgbm_model": Spec(TRAINING, frozenset({"lightgbm"})),
    "feature_table": Spec(TRAINING, frozenset({"bigquery", "pandas"}), io_manager_key=WAREHOUSE_IO_MANAGER),
    "holdout_metrics": Spec(LIFECYCLE, frozenset({"lightgbm", "pandas"})),
    "drift": Spec(LIFECYCLE, frozenset({"pandas"})),
    "production_model": Spec(LIFECYCLE, frozenset({"lightgbm", "json"})),
    "scored_census": Spec(LIFECYCLE, frozenset({"lightgbm", "pandas", "parquet"})),
    "scored_batch": Spec(BATCH_SCORING, frozenset({"lightgbm", "pandas", "parquet"})),
    "batch_summary": Spec(BATCH_REPORT, frozenset({"pandas", "parquet"})),
    "batch_performance": Spec(BATCH_REPORT, frozenset({"pandas", "parquet"})),
    "performance_summary": Spec(BATCH_REPORT, frozenset({"pandas", "parquet"})),
}
# The asset whose freshness policy says the weekly retrain ran (CENSUS_FRESHNESS_*_HOURS).
RETRAINED_ASSET = "lgbm_model"


def spec(name: str) -> dict[str, Any]:
    """The keyword arguments of `@dg.asset` for `name`."""
    entry = SPECS[name]
    return dict(
        name=name,
        group_name=entry.role.group,
        owners=OWNERS,
        retry_policy=STORAGE_RETRY,
        pool=entry.role.pool,
        automation_condition=entry.role.automation,
        kinds=set(entry.kinds),
        io_manager_key=entry.io_manager_key,
        code_version=entry.code_version,
    )


def stored_in_artifacts(key: dg.AssetKey) -> bool:
    """Whether the census IO manager writes this asset (so a gs:// storage shows it as `gcs`)."""
    entry = SPECS.get(key.to_user_string())
    return entry is not None and entry.io_manager_key == "io_manager"


def for_deployment(assets: list, environment: Environment) -> list:
    """What the deployment adds to the specs: lgbm_model's freshness policy (a late or stalled
    weekly retrain), and kinds that say where data lives (`gcs` on every stored asset when the
    storage is gs://; on the source `gcs` or `bigquery` after CENSUS_SOURCE, and `bigquery` on
    raw_census when the source is bq://)."""
    freshness = dg.FreshnessPolicy.time_window(
        fail_window=timedelta(seconds=environment.freshness_fail_seconds),
        warn_window=timedelta(seconds=environment.freshness_warn_seconds),
    )

    def finish(asset_spec: dg.AssetSpec) -> dg.AssetSpec:
        name, kinds = asset_spec.key.to_user_string(), set(asset_spec.kinds)
        source_stage = name in ("census_source", "raw_census")
        if environment.storage_url.startswith("gs://") and stored_in_artifacts(asset_spec.key):
            kinds.add("gcs")
        if environment.source.startswith("gs://") and name == "census_source":
            kinds.add("gcs")
        if environment.source.startswith("bq://") and source_stage:
            kinds.add("bigquery")
        changes: dict[str, Any] = {"kinds": kinds} if kinds != set(asset_spec.kinds) else {}
        if name == RETRAINED_ASSET:
            changes["freshness_policy"] = freshness
        return asset_spec.replace_attributes(**changes) if changes else asset_spec

    return dg.map_asset_specs(finish, assets)
