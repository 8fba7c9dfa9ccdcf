"""Settings shared by every asset module: groups, owners, run pools, the retry policy, and the
failures that opt out of it."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from census_assets.storage.errors import PermanentStorageError

TRAINING_GROUP = "census"
LIFECYCLE_GROUP = "model_lifecycle"
BATCH_GROUP = "batch_scoring"
OWNERS = ["team:ml-platform"]
# The whole training graph for `dagster asset materialize --select` (the batch-scoring assets are
# partitioned: they run per batch, from the inbox sensor or a backfill).
TRAINING_SELECTION = f"group:{TRAINING_GROUP} or group:{LIFECYCLE_GROUP}"

# Run-granularity concurrency pools (dagster.yaml): runs that write the training graph's storage
# queue behind each other; batch-scoring runs share a pool of their own.
TRAINING_POOL = "census_training"
SCORING_POOL = "census_scoring"

# Storage and source reads can fail transiently; deterministic errors opt out through `refuse`.
STORAGE_RETRY = dg.RetryPolicy(max_retries=3, delay=1.0, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

TRAINING_ASSET = dict(group_name=TRAINING_GROUP, owners=OWNERS, retry_policy=STORAGE_RETRY, pool=TRAINING_POOL)
LIFECYCLE_ASSET = dict(group_name=LIFECYCLE_GROUP, owners=OWNERS, retry_policy=STORAGE_RETRY, pool=TRAINING_POOL)
# No pool here: scored_batch takes SCORING_POOL; batch_summary only reads the instance.
BATCH_ASSET = dict(group_name=BATCH_GROUP, owners=OWNERS, retry_policy=STORAGE_RETRY)


def refuse(message: str) -> dg.Failure:
    """A failure that retrying cannot fix: bad input, a corrupt artifact or a failed gate."""
    return dg.Failure(description=message, allow_retries=False)


@contextmanager
def refusing_permanent_errors() -> Iterator[None]:
    """Registry and storage errors that retrying cannot fix (a bad pointer, a corrupt file, a full
    disk) fail the step once, with the message that names the object."""
    try:
        yield
    except PermanentStorageError as error:  # RegistryError included
        raise refuse(str(error)) from error
