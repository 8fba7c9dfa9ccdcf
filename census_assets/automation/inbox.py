"""The inbox sensor, the batch jobs, and the re-score of every batch after a production change.

`census_inbox` (off by default) lists CENSUS_INBOX_URL every tick; each new or changed batch file
becomes a partition of `scored_batch` (DynamicPartitionsDefinition `census_batches`) and one
queued run of `score_batches`. The run queue starts at most the `census_scoring` pool's limit of
them at a time (dagster.yaml: 2), so a thousand files are a thousand queued runs, never a thousand
processes. Once no scoring run is queued or running, the sensor requests `summarize_batches`
(batch_summary), and again when the production model changes.

Re-scoring is manual (docs/batches.md): `census-assets rescore` launches a backfill of the batches
scored by another model than production's (or every batch with --all).
"""


import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from census_assets.assets.batches import batch_records, batch_summary, scored_batch
from census_assets.assets.batches import census_batches as batch_partitions
from census_assets.core.batches import InboxState, plan_tick
from census_assets.io_manager import CensusIOManager
from census_assets.resources.inbox import LISTING_DEADLINE_S, BatchInbox

# Runs requested per tick at most: a tick stays short however many files arrive at once; the
# rest are requested on the following ticks (they wait, stable, in the cursor).
MAX_RUNS_PER_TICK = 100
DEFAULT_INTERVAL_SECONDS = 30
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# Run tags: what a scoring run was asked to score (the partition is Dagster's own tag).
FILE_TAG = "census/inbox_file"
CONTENT_TAG = "census/content"
RESCORE_TAG = "census/rescore_to"
ASSET_JOB = "__ASSET_JOB"  # the UI's "Materialize" and backfills of scored_batch run under it

score_batches = dg.define_asset_job(
    "score_batches",
    selection=dg.AssetSelection.assets(scored_batch),  # with its drift check; partitioned like it
    description="Score one inbox batch (a partition of scored_batch) with the production model, then check its drift.",
)
summarize_batches = dg.define_asset_job(
    "summarize_batches",
    selection=dg.AssetSelection.assets(batch_summary),
    description="batch_summary: every batch's status, rows, model version and drift.",
)


def scoring_activity(instance: dg.DagsterInstance) -> int:
    """Grows whenever a scored_batch partition is planned (a run created) or materialized."""
    kinds = (dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    latest = [instance.get_latest_storage_id_by_partition(scored_batch.key, kind) for kind in kinds]
    return max((storage_id for by_partition in latest for storage_id in by_partition.values()), default=0)


def runs_in_flight(instance: dg.DagsterInstance, jobs: Sequence[str]) -> int:
    return sum(instance.get_runs_count(dg.RunsFilter(job_name=job, statuses=IN_FLIGHT)) for job in jobs)


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


def inbox_tick(context: dg.SensorEvaluationContext, inbox: BatchInbox, io_manager: CensusIOManager):
    try:
        state = InboxState.from_cursor(context.cursor)
    except (ValueError, KeyError, TypeError) as error:
        context.log.warning(f"unreadable inbox cursor ({error}): starting afresh (run keys prevent repeats)")
        state = InboxState()
    try:
        files = inbox.list_batches(deadline=LISTING_DEADLINE_S)
    except Exception as error:  # a missing folder, GCS unreachable or forbidden: say so, try next tick
        return dg.SkipReason(f"cannot list the inbox {inbox.url}: {type(error).__name__}: {error}")
    plan = plan_tick(
        state, files, complete_when_listed=inbox.complete_when_listed, max_requests=MAX_RUNS_PER_TICK
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
        pointer = io_manager.registry().pointer()
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
    context.log.info(f"inbox {inbox.url}: {len(files)} batch file(s); {description}")
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[batch_partitions.build_add_request(new_keys)] if new_keys else [],
        cursor=next_state.to_cursor(),
        skip_reason=None if run_requests else f"{len(files)} batch file(s): {description}",
    )


def build_inbox_sensor(minimum_interval_seconds: int = DEFAULT_INTERVAL_SECONDS) -> dg.SensorDefinition:
    @dg.sensor(
        name="census_inbox",
        jobs=[score_batches, summarize_batches],
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Scores each new or changed batch file in CENSUS_INBOX_URL as a partition of scored_batch; "
        "summarises the batches when scoring is idle.",
    )
    def census_inbox(
        context: dg.SensorEvaluationContext, inbox: BatchInbox, io_manager: dg.ResourceParam[CensusIOManager]
    ):
        """Lists the inbox; files unchanged on two ticks (local) or listed (GCS) are requested."""
        return inbox_tick(context, inbox, io_manager)

    return census_inbox


census_inbox = build_inbox_sensor()
BATCH_JOBS = [score_batches, summarize_batches]


# ---- re-scoring ----------------------------------------------------------------------------------

# `dagster job backfill --partitions` takes one argument; keep each well under Linux's 128 KiB.
MAX_PARTITION_ARGUMENT = 100_000


def partitions_to_rescore(instance: dg.DagsterInstance, production: str, everything: bool) -> list[str]:
    """The batches scored by another model than `production` (every batch with `everything`)."""
    if everything:
        return list(instance.get_dynamic_partitions(batch_partitions.name))
    return [
        record["partition"]
        for record in batch_records(instance)
        if record.get("model_version") and record["model_version"] != production
    ]


def backfill_commands(partitions: Sequence[str], production: str, location: Sequence[str]) -> list[list[str]]:
    """`dagster job backfill` commands that queue one run of score_batches per partition."""
    dagster = Path(sys.executable).with_name("dagster")
    executable = [str(dagster)] if dagster.exists() else [sys.executable, "-m", "dagster"]
    chunks: list[list[str]] = [[]]
    for key in partitions:  # keys are [A-Za-z0-9_.-]: no comma can split one
        if chunks[-1] and sum(len(k) + 1 for k in chunks[-1]) + len(key) > MAX_PARTITION_ARGUMENT:
            chunks.append([])
        chunks[-1].append(key)
    return [
        [
            *executable, "job", "backfill", *location, "-j", score_batches.name,
            "--partitions", ",".join(chunk), "--tags", json.dumps({RESCORE_TAG: production}), "--noprompt",
        ]  # fmt: skip
        for chunk in chunks
        if chunk
    ]


def rescore(
    production: str, everything: bool, location: Sequence[str], dry_run: bool = False, echo=print
) -> list[str]:
    """Queue re-scoring runs on the persistent instance (DAGSTER_HOME); the daemon's run queue
    starts them. Returns the partitions."""
    if not os.environ.get("DAGSTER_HOME"):
        raise RuntimeError("re-scoring queues runs on the Dagster instance: set DAGSTER_HOME to the deployment's")
    with dg.DagsterInstance.get() as instance:
        partitions = partitions_to_rescore(instance, production, everything)
    if not partitions:
        echo(f"every scored batch is already scored by production {production}: nothing to re-score")
        return []
    echo(f"re-scoring {len(partitions)} batch(es) with production {production}: {', '.join(partitions[:20])}"
         + (" ..." if len(partitions) > 20 else ""))  # fmt: skip
    for command in backfill_commands(partitions, production, location):
        if dry_run:
            echo(" ".join(command))
            continue
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"dagster job backfill failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        launched = [line for line in done.stdout.splitlines() if "Launched backfill" in line]
        echo(launched[-1].strip() if launched else "backfill launched")
    return partitions
