"""What the two folder-watching sensors (`census_inbox`, `census_labels`) do alike on every tick:
read their cursor (or start afresh), list their folder (or skip with the reason), request their
summary job once the work since the last summary has finished, and report the tick with the
entries the listing refused. What each tick decides is core.inbox's plan_tick."""

from collections.abc import Sequence

import dagster as dg

from census_assets.automation.batch_jobs import runs_in_flight
from census_assets.core.inbox import InboxListing, InboxState, describe_refused
from census_assets.resources.inbox import LISTING_DEADLINE_S, BatchInbox


def read_state(context: dg.SensorEvaluationContext, folder: str) -> InboxState:
    try:
        return InboxState.from_cursor(context.cursor)
    except (ValueError, KeyError, TypeError) as error:
        context.log.warning(f"unreadable {folder} cursor ({error}): starting afresh (run keys prevent repeats)")
        return InboxState()


def list_folder(source: BatchInbox, folder: str) -> InboxListing | dg.SkipReason:
    try:
        return source.list_batches(deadline=LISTING_DEADLINE_S)
    except Exception as error:  # a missing folder, GCS unreachable or forbidden: say so, try next tick
        return dg.SkipReason(f"cannot list the {folder} {source.url}: {type(error).__name__}: {error}")


def activity(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> int:
    """Grows whenever a partition of the asset is planned (a run created) or materialized."""
    kinds = (dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    latest = [instance.get_latest_storage_id_by_partition(asset_key, kind) for kind in kinds]
    return max((storage_id for by_partition in latest for storage_id in by_partition.values()), default=0)


def summary_request(
    instance: dg.DagsterInstance,
    state: InboxState,
    *,
    watched: dg.AssetKey,
    working_jobs: Sequence[str],
    summary_job: str,
    run_key: str,
    now: bool = False,
) -> dg.RunRequest | None:
    """The summary job again once the runs that changed `watched` since the last summary have
    finished (or at once when `now`), never while a summary is in flight. run_key may hold
    `{activity}`."""
    grown = activity(instance, watched)
    if not now and (grown <= state.summarised or runs_in_flight(instance, working_jobs)):
        return None
    if runs_in_flight(instance, [summary_job]):
        return None
    state.summarised = grown
    return dg.RunRequest(job_name=summary_job, run_key=run_key.format(activity=grown))


def tick_result(
    context: dg.SensorEvaluationContext,
    *,
    folder: str,
    source: BatchInbox,
    listing: InboxListing,
    kind: str,
    description: str,
    run_requests: list[dg.RunRequest],
    state: InboxState,
    dynamic_partitions_requests: Sequence[dg.AddDynamicPartitionsRequest] = (),
) -> dg.SensorResult:
    """The tick's result; refused entries are named in the log, and in the skip reason when the
    tick requests nothing, while the other files go on."""
    if listing.refused:
        refused = describe_refused(listing.refused)
        context.log.warning(f"{folder} {source.url}: {refused}")
        description = f"{description}; {refused}"
    files = f"{len(listing.files)} {kind} file(s)"
    context.log.info(f"{folder} {source.url}: {files}; {description}")
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=list(dynamic_partitions_requests),
        cursor=state.to_cursor(),
        skip_reason=None if run_requests else f"{files}: {description}",
    )
