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
    score_batches,
    summarize_batches,
)
from census_assets.automation.folder_ticks import list_folder, read_state, summary_request, tick_result
from census_assets.core.inbox import plan_tick
from census_assets.resources.inbox import BatchInbox
from census_assets.settings import INBOX_INTERVAL_SECONDS, setting
from census_assets.storage.registry import Registry


def inbox_tick(context: dg.SensorEvaluationContext, inbox: BatchInbox, model_registry: Registry):
    state = read_state(context, "inbox")
    listing = list_folder(inbox, "inbox")
    if isinstance(listing, dg.SkipReason):
        return listing
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
    production_changed = production != previous and previous is not None
    if not run_requests:
        # batch_summary again once the scoring since the last one has finished, or at once when
        # production changed (the summary then shows which batches are behind).
        summary = summary_request(
            context.instance, next_state, watched=scored_batch.key, working_jobs=[score_batches.name, ASSET_JOB],
            summary_job=summarize_batches.name, run_key=f"summary@{{activity}}/{production or 'none'}",
            now=production_changed,
        )  # fmt: skip
        if summary:
            run_requests.append(summary)
            if production_changed:
                context.log.warning(
                    f"production changed from {previous} to {production}: scored batches are behind it; "
                    "re-score them with `census-assets rescore` (docs/batches.md)"
                )
    return tick_result(
        context, folder="inbox", source=inbox, listing=listing, kind="batch", description=plan.describe(),
        run_requests=run_requests, state=next_state,
        dynamic_partitions_requests=[batch_partitions.build_add_request(new_keys)] if new_keys else [],
    )  # fmt: skip


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
