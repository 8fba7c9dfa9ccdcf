"""The batch jobs, requested by the inbox and re-score sensors: `score_batches` (one partition of
scored_batch and its drift check a run) and `summarize_batches` (batch_summary); what their runs
are tagged with, and which of them are still in flight."""

from collections.abc import Sequence

import dagster as dg

from census_assets.assets.batches import batch_summary, scored_batch

# Runs a sensor requests per tick at most: a tick stays short however many batches are due; the
# rest wait in the sensor's cursor for the following ticks.
MAX_RUNS_PER_TICK = 100
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
RESCORE_REQUEST_TAG = "census/rescore_request"
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
BATCH_JOBS = [score_batches, summarize_batches]


def runs_in_flight(instance: dg.DagsterInstance, jobs: Sequence[str]) -> int:
    return sum(instance.get_runs_count(dg.RunsFilter(job_name=job, statuses=IN_FLIGHT)) for job in jobs)
