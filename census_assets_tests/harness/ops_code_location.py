"""A tiny code location for the run-queue tests: a batch-scoring stand-in in the `census_scoring`
pool. The real batch-scoring asset needs a production model and an inbox file per run; the queue
only looks at the pool, so an asset that sleeps shows it as well.

The pools are instance-wide: `census_scoring` here is the same pool as in census_assets, and runs of
both locations share the instance's run queue (dagster.yaml, run granularity). The asset sleeps
OPS_TEST_SLEEP seconds so that overlapping runs are seen. Load it with
`-f census_assets_tests/ops_code_location.py`.
"""

import os
import time

import dagster as dg

from census_assets.assets.specs import SCORING_POOL


@dg.asset(pool=SCORING_POOL, group_name="ops_scoring")
def ops_batch_scores() -> None:
    time.sleep(float(os.environ.get("OPS_TEST_SLEEP", "3")))


defs = dg.Definitions(assets=[ops_batch_scores])
