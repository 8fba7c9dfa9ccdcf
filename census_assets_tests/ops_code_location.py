"""A tiny code location for the run-queue tests: assets in the same pools as census_assets.

`census_training` (limit 1) and `census_scoring` (limit 2) are the pools of the instance's
run-granularity concurrency (dagster.yaml); each asset sleeps OPS_TEST_SLEEP seconds so that
overlapping runs would be seen. Load it with `-f census_assets_tests/ops_code_location.py`.
"""

import os
import time

import dagster as dg

TRAINING_POOL = "census_training"
SCORING_POOL = "census_scoring"


def _pause() -> None:
    time.sleep(float(os.environ.get("OPS_TEST_SLEEP", "3")))


@dg.asset(pool=TRAINING_POOL, group_name="ops_training")
def ops_train_source() -> None:
    _pause()


@dg.asset(pool=TRAINING_POOL, group_name="ops_training", deps=[ops_train_source])
def ops_train_model() -> None:
    _pause()


@dg.asset(pool=SCORING_POOL, group_name="ops_scoring")
def ops_batch_scores() -> None:
    _pause()


@dg.asset(group_name="ops_free")
def ops_unpooled() -> None:
    _pause()


defs = dg.Definitions(assets=[ops_train_source, ops_train_model, ops_batch_scores, ops_unpooled])
