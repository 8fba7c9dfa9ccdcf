"""The run queue's coordinator: Dagster's QueuedRunCoordinator that gives the run's pools their limits
before the run enters the queue, so the limits hold from the first launch on any instance.

Why a coordinator: in Dagster 1.13 a pool's limit is a row in the instance's database (dagster.yaml
cannot hold per-pool limits), and `default_limit` does not cover the first launch. Each pass of the
queue daemon reads which pools have a limit row (`get_concurrency_keys`) before its pool counter
writes the default row for a pool it sees queued for the first time, and a pool missing from that
read is not limited: every run queued before the first pass that saw the pool starts at once (two
training runs launched together on a fresh instance both run). `default_limit` would also give
`census_scoring` 1 instead of 2. `submit_run` runs in whatever process creates the run (webserver,
daemon, `dagster job launch`) before the run is QUEUED, and the daemon reads the queued runs before
the pool limits, so every pass that sees the run sees its pool's limit.

Nothing is written when the code location is imported: only when a run is submitted, and only what
is missing. An operator's own limit (`dagster instance concurrency set`, the UI's Concurrency page)
is never changed; a limit Dagster wrote from `default_limit` is replaced by the census one.

Loaded by every process that loads the instance (dagster.yaml's `run_coordinator`), so this module
imports nothing beyond Dagster and the pool limits (declared with the pools in
census_assets.assets.specs).
"""

from collections.abc import Iterable, Mapping

import dagster as dg
from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext
from dagster._core.storage.event_log.base import PoolLimit
from sqlalchemy.exc import IntegrityError

from census_assets.assets.specs import POOL_LIMITS


def limits_to_write(existing: Iterable[PoolLimit], wanted: Mapping[str, int]) -> dict[str, int]:
    """The wanted limits of pools that have none yet, or only the one Dagster wrote from
    `default_limit`; a limit someone set stays as it is."""
    set_by_someone = {limit.name for limit in existing if not limit.from_default}
    return {pool: limit for pool, limit in wanted.items() if pool not in set_by_someone}


def pools_without_limit(existing: Iterable[PoolLimit], pools: Iterable[str]) -> set[str]:
    """Pools with no limit row at all (the ones the daemon's first pass would leave unlimited)."""
    return set(pools) - {limit.name for limit in existing}


class PoolLimitsRunCoordinator(QueuedRunCoordinator):
    """QueuedRunCoordinator (same configuration) that makes sure, before queuing a run, that the
    census pools have their limits (POOL_LIMITS) and that any other pool of the run has the
    instance's `default_limit` row."""

    def submit_run(self, context: SubmitRunContext) -> dg.DagsterRun:
        self.ensure_pool_limits(context.dagster_run)
        return super().submit_run(context)

    def ensure_pool_limits(self, run: dg.DagsterRun) -> None:
        storage = self._instance.event_log_storage
        existing = storage.get_pool_limits()
        for pool, limit in limits_to_write(existing, POOL_LIMITS).items():
            try:
                storage.set_concurrency_slots(pool, limit)
            except IntegrityError:
                pass  # another process inserted the pool's row at the same moment: it has a limit
        run_pools = (run.run_op_concurrency.all_pools or set()) if run.run_op_concurrency else set()
        if self._instance.global_op_concurrency_default_limit is not None:
            # Dagster's own initialisation, done before the run is queued instead of during the pass.
            for pool in pools_without_limit(existing, run_pools - POOL_LIMITS.keys()):
                storage.initialize_concurrency_limit_to_default(pool)
