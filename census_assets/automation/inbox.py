"""The inbox sensor, `census_inbox` (off by default): lists CENSUS_INBOX_URL every tick; each new
or changed batch file becomes a partition of `scored_batch` (DynamicPartitionsDefinition
`census_batches`) and one queued run of `score_batches`. The run queue starts at most the
`census_scoring` pool's limit of them at a time (POOL_LIMITS in assets/specs.py, written by the
run coordinator), so a thousand files are a thousand queued runs, never a thousand processes.
Once no scoring run is queued or running, the sensor requests `summarize_batches`
(batch_summary), and again when the production model changes.

What a tick decides is census_assets.core.inbox; entries the listing refuses (a name that is not
UTF-8, a symbolic link, not a regular file) are named with their reason in the tick's log, and in
its skip reason when it requests nothing, while the other files go on being scored.
"""

import dagster as dg

from census_assets.assets.batches import census_batches as batch_partitions
from census_assets.assets.batches import scored_batch
from census_assets.automation.batch_jobs import (
    ASSET_JOB,
    CONTENT_TAG,
    FILE_TAG,
    MAX_RUNS_PER_TICK,
    runs_in_flight,
    score_batches,
    summarize_batches,
)
from census_assets.core.inbox import InboxState, describe_refused, plan_tick
from census_assets.resources.inbox import LISTING_DEADLINE_S, BatchInbox
from census_assets.settings import INBOX_INTERVAL_SECONDS, setting
from census_assets.storage.registry import Registry


def scoring_activity(instance: dg.DagsterInstance) -> int:
    """Grows whenever a scored_batch partition is planned (a run created) or materialized."""
    kinds = (dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    latest = [instance.get_latest_storage_id_by_partition(scored_batch.key, kind) for kind in kinds]
    return max((storage_id for by_partition in latest for storage_id in by_partition.values()), default=0)


def summary_request(
    instance: dg.DagsterInstance, state: InboxState, production: str | None, previous_production: str | None
) -> dg.RunRequest | None:
    """batch_summary again once the scoring that happened since the last one has finished, or at
    once when production changed (the summary then shows which batches are behind)."""
    activity = scoring_activity(instance)
    changed = production != previous_production and previous_production is not None
    if not changed and (activity <= state.summarised or runs_in_flight(instance, [score_batches.name, ASSET_JOB])):
        return None
    if runs_in_flight(instance, [summarize_batches.name]):
        return None
    state.summarised = activity
    return dg.RunRequest(job_name=summarize_batches.name, run_key=f"summary@{activity}/{production or 'none'}")


def inbox_tick(context: dg.SensorEvaluationContext, inbox: BatchInbox, model_registry: Registry):
    try:
        state = InboxState.from_cursor(context.cursor)
    except (ValueError, KeyError, TypeError) as error:
        context.log.warning(f"unreadable inbox cursor ({error}): starting afresh (run keys prevent repeats)")
        state = InboxState()
    try:
        listing = inbox.list_batches(deadline=LISTING_DEADLINE_S)
    except Exception as error:  # a missing folder, GCS unreachable or forbidden: say so, try next tick
        return dg.SkipReason(f"cannot list the inbox {inbox.url}: {type(error).__name__}: {error}")
    plan = plan_tick(
        state, listing.files, complete_when_listed=inbox.complete_when_listed, max_requests=MAX_RUNS_PER_TICK
    )
    existing = set(context.instance.get_dynamic_partitions(batch_partitions.name))
    new_keys = sorted({request.key for request in plan.requests} - existing)
    run_requests = [
        dg.RunRequest(
            run_key=request.run_key,
            job_name=score_batches.name,
            partition_key=request.key,
            tags={FILE_TAG: request.name, CONTENT_TAG: request.fingerprint},
        )
        for request in plan.requests
    ]
    previous = state.production
    try:
        pointer = model_registry.pointer()
        production = pointer["version"] if pointer else None
    except Exception as error:  # an unreadable pointer must not stop batches from being taken
        context.log.warning(f"cannot read the production pointer: {type(error).__name__}: {error}")
        production = previous
    next_state = plan.state
    next_state.production = production
    if not run_requests and (summary := summary_request(context.instance, next_state, production, previous)):
        run_requests.append(summary)
        if production != previous and previous is not None:
            context.log.warning(
                f"production changed from {previous} to {production}: scored batches are behind it; "
                "re-score them with `census-assets rescore` (docs/batches.md)"
            )
    description = plan.describe()
    if listing.refused:
        refused = describe_refused(listing.refused)
        context.log.warning(f"inbox {inbox.url}: {refused}")
        description = f"{description}; {refused}"
    context.log.info(f"inbox {inbox.url}: {len(listing.files)} batch file(s); {description}")
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[batch_partitions.build_add_request(new_keys)] if new_keys else [],
        cursor=next_state.to_cursor(),
        skip_reason=None if run_requests else f"{len(listing.files)} batch file(s): {description}",
    )


def build_inbox_sensor(
    minimum_interval_seconds: int = setting(INBOX_INTERVAL_SECONDS).default_value,
) -> dg.SensorDefinition:
    """The sensor, looking every `minimum_interval_seconds` (CENSUS_INBOX_INTERVAL_SECONDS)."""

    @dg.sensor(
        name="census_inbox",
        jobs=[score_batches, summarize_batches],
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Scores each new or changed batch file in CENSUS_INBOX_URL as a partition of scored_batch; "
        "summarises the batches when scoring is idle.",
    )
    def census_inbox(
        context: dg.SensorEvaluationContext, inbox: BatchInbox, model_registry: dg.ResourceParam[Registry]
    ):
        """Lists the inbox; files unchanged on two ticks (local) or listed (GCS) are requested."""
        return inbox_tick(context, inbox, model_registry)

    return census_inbox
