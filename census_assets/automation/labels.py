"""The label loop's automation, both sensors off by default:

- `census_labels` lists CENSUS_LABELS_URL every tick, as the inbox sensor lists the inbox (the same
  rules: content fingerprints, two stable ticks locally, refused entries named with their reason;
  core.inbox). Each new or changed label file of a batch that has been scored becomes one run of
  `measure_performance` (its partition of batch_performance and the check); a label file whose batch
  has no scores yet waits. Once no such run is in flight, `summarize_performance` runs.
- `census_performance_decay` requests retraining (`census_pipeline`) once per decay episode: an
  episode starts at the first failure of performance_within_limit after the latest promotion and
  ends at the next promotion (or rollback). If its retraining ends without moving production, it
  alerts once and requests nothing more until production moves. The run's tags say why.
"""

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import ClassVar

import dagster as dg

from census_assets.alerts.delivery import deliver
from census_assets.alerts.payloads import Alert
from census_assets.assets.batches import scored_batch
from census_assets.assets.labelled_batches import PERFORMANCE_KEY
from census_assets.assets.performance import batch_performance, performance_summary
from census_assets.automation.batch_jobs import ASSET_JOB, MAX_RUNS_PER_TICK
from census_assets.automation.folder_ticks import list_folder, read_state, summary_request, tick_result
from census_assets.automation.jobs import census_pipeline
from census_assets.checks.performance import performance_within_limit
from census_assets.core.batch_names import partition_key
from census_assets.core.inbox import plan_tick
from census_assets.core.monitoring import DecayState, plan_decay
from census_assets.resources.labels import LabelFolder
from census_assets.resources.notifier import AlertNotifier
from census_assets.settings import INBOX_INTERVAL_SECONDS, setting
from census_assets.storage.registry import Registry

# Run tags: which label file a measuring run measures, and why a retraining run was requested.
LABEL_FILE_TAG = "census/label_file"
LABEL_CONTENT_TAG = "census/label_content"
RETRAIN_REASON_TAG = "census/retrain_reason"
DECAY_EPISODE_TAG = "census/decay_episode"
DECAY_BATCH_TAG = "census/decayed_batch"
DECAY_CHECK_TAG = "census/failed_check"
DECAY_DETAIL_TAG = "census/decay"
TAG_TEXT_LIMIT = 200
DECAY_INTERVAL_SECONDS = 60
EVENT_BATCH = 1000
TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"  # a promotion record's time (census_assets.storage.manifests.utc_now)
FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)

measure_performance = dg.define_asset_job(
    "measure_performance",
    selection=dg.AssetSelection.assets(batch_performance),  # with performance_within_limit; partitioned like it
    description="Measure one batch's labels against its first scores (a partition of batch_performance), then "
    "check the accuracy.",
)
summarize_performance = dg.define_asset_job(
    "summarize_performance",
    selection=dg.AssetSelection.assets(performance_summary),
    description="performance_summary: realized and estimated accuracy, scoring model and drift per batch.",
)
LABEL_JOBS = [measure_performance, summarize_performance]


# ---- census_labels -------------------------------------------------------------------------------


def labels_tick(context: dg.SensorEvaluationContext, labels: LabelFolder):
    state = read_state(context, "labels")
    listing = list_folder(labels, "labels folder")
    if isinstance(listing, dg.SkipReason):
        return listing
    scored = context.instance.get_latest_storage_id_by_partition(
        scored_batch.key, dg.DagsterEventType.ASSET_MATERIALIZATION
    )
    ready = [entry for entry in listing.files if partition_key(entry.name) in scored]
    unscored = sorted(entry.name for entry in listing.files if partition_key(entry.name) not in scored)
    plan = plan_tick(state, ready, complete_when_listed=labels.complete_when_listed, max_requests=MAX_RUNS_PER_TICK)
    run_requests = [
        dg.RunRequest(
            run_key=request.run_key,
            job_name=measure_performance.name,
            partition_key=request.key,
            tags={LABEL_FILE_TAG: request.name, LABEL_CONTENT_TAG: request.fingerprint},
        )
        for request in plan.requests
    ]
    next_state = plan.state
    # performance_summary again once the measuring since the last one has finished.
    if not run_requests and (
        summary := summary_request(
            context.instance, next_state, watched=PERFORMANCE_KEY,
            working_jobs=[measure_performance.name, ASSET_JOB], summary_job=summarize_performance.name,
            run_key="performance_summary@{activity}",
        )  # fmt: skip
    ):
        run_requests.append(summary)
    description = plan.describe().replace("batch run(s)", "measuring run(s)")
    if unscored:
        description += f"; {len(unscored)} waiting for their batch to be scored ({', '.join(unscored[:10])})"
    return tick_result(
        context, folder="labels", source=labels, listing=listing, kind="label", description=description,
        run_requests=run_requests, state=next_state,
    )  # fmt: skip


def build_labels_sensor(
    minimum_interval_seconds: int = setting(INBOX_INTERVAL_SECONDS).default_value,
) -> dg.SensorDefinition:
    """The sensor, looking as often as the inbox sensor (CENSUS_INBOX_INTERVAL_SECONDS)."""

    @dg.sensor(
        name="census_labels",
        jobs=LABEL_JOBS,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Measures each new or changed label file in CENSUS_LABELS_URL against its batch's first "
        "scores (a partition of batch_performance); summarises performance when measuring is idle.",
    )
    def census_labels(context: dg.SensorEvaluationContext, labels: LabelFolder):
        """Lists the labels folder; files unchanged on two ticks (local) or listed (GCS) are requested."""
        return labels_tick(context, labels)

    return census_labels


# ---- census_performance_decay --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DecayNotPromotedAlert(Alert):
    kind: ClassVar[str] = "performance_decay_not_promoted"
    production_version: str
    retraining_run_id: str | None
    episode: str


@dataclass(frozen=True)
class CheckFailure:
    storage_id: int
    timestamp: float
    partition: str
    description: str


def performance_failures(instance: dg.DagsterInstance, after: int) -> tuple[list[CheckFailure], int]:
    """The failed performance_within_limit evaluations after event storage id `after`, oldest
    first, and the last storage id read."""
    storage, failures = instance.event_log_storage, []
    while True:
        batch = storage.get_logs_for_all_runs_by_log_id(
            after_cursor=after, dagster_event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=EVENT_BATCH
        )
        for storage_id, entry in sorted(batch.items()):
            evaluation = entry.dagster_event.event_specific_data
            if (
                evaluation is not None
                and evaluation.asset_key == PERFORMANCE_KEY
                and evaluation.check_name == performance_within_limit.check_key.name
                and not evaluation.passed
            ):
                failures.append(
                    CheckFailure(storage_id, entry.timestamp, evaluation.partition or "", evaluation.description or "")
                )
        after = max(batch, default=after)
        if len(batch) < EVENT_BATCH:
            return failures, after


def retraining_outcome(instance: dg.DagsterInstance, episode: str) -> tuple[bool, str | None]:
    """(whether the episode's retraining run has ended, its run id)."""
    runs = instance.get_runs(dg.RunsFilter(tags={DECAY_EPISODE_TAG: episode}), limit=1)
    return (bool(runs) and runs[0].status in FINISHED), (runs[0].run_id if runs else None)


def decay_tick(context: dg.SensorEvaluationContext, model_registry: Registry, notifier: AlertNotifier):
    try:
        state = DecayState.from_cursor(context.cursor)
    except (ValueError, TypeError) as error:
        context.log.warning(f"unreadable decay cursor ({error}): starting afresh (run keys prevent repeats)")
        state = DecayState()
    # The events are read before the pointer: a promotion landing in between is then seen together
    # with the failures that follow it, and every failure read on an earlier tick precedes it.
    failures, scanned = performance_failures(context.instance, state.scanned)
    try:
        pointer = model_registry.pointer()
    except Exception as error:  # an unreadable pointer: decide nothing, read these events again next tick
        return dg.SkipReason(f"cannot read the production pointer: {type(error).__name__}: {error}")
    promoted_at = datetime.strptime(pointer["time"], TIME_FORMAT).replace(tzinfo=UTC).timestamp() if pointer else 0.0
    failure = next((f for f in failures if f.timestamp > promoted_at), None)
    finished, run_id = retraining_outcome(context.instance, state.episode) if state.episode else (False, None)
    plan = plan_decay(
        replace(state, scanned=scanned),
        pointer.get("record") if pointer else None,
        str(failure.storage_id) if failure else None,
        finished,
    )
    requests = []
    if plan.request:
        requests.append(
            dg.RunRequest(
                run_key=plan.request,
                tags={
                    RETRAIN_REASON_TAG: "performance_decay",
                    DECAY_EPISODE_TAG: plan.request,
                    DECAY_CHECK_TAG: f"{PERFORMANCE_KEY.to_user_string()}:{performance_within_limit.check_key.name}",
                    DECAY_BATCH_TAG: failure.partition,
                    DECAY_DETAIL_TAG: failure.description[:TAG_TEXT_LIMIT],
                },
            )
        )
        context.log.warning(f"performance decay on batch {failure.partition}: {failure.description}; retraining")
    if plan.alert:
        deliver(
            context,
            notifier,
            [
                DecayNotPromotedAlert(
                    severity="ERROR",
                    summary=f"performance decay: the retraining it requested (run {run_id}) ended without a "
                    f"promotion; production stays {pointer['version']}; nothing more is requested until a promotion",
                    production_version=pointer["version"],
                    retraining_run_id=run_id,
                    episode=plan.state.episode,
                )
            ],
        )
    status = f"episode {plan.state.episode}" if plan.state.episode else "no decay since the latest promotion"
    return dg.SensorResult(
        run_requests=requests, cursor=plan.state.to_cursor(), skip_reason=None if requests else status
    )


def build_decay_sensor(minimum_interval_seconds: int = DECAY_INTERVAL_SECONDS) -> dg.SensorDefinition:
    @dg.sensor(
        name="census_performance_decay",
        job=census_pipeline,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Requests retraining (census_pipeline) once per decay episode: the first failure of "
        "performance_within_limit after the latest promotion; alerts once if that retraining does not promote.",
    )
    def census_performance_decay(
        context: dg.SensorEvaluationContext, model_registry: dg.ResourceParam[Registry], notifier: AlertNotifier
    ):
        return decay_tick(context, model_registry, notifier)

    return census_performance_decay
