"""Re-scoring batches after a production change: `census-assets rescore` writes a request into the
artifact storage, and the `census_rescore` sensor turns it into one queued run of `score_batches`
per batch.

Why a request in storage and not a backfill: Dagster 1.13 has no public Python call that launches
runs on a deployment, and the CLI already reaches the storage (with CENSUS_STORAGE_URL and
GCP_CREDENTIALS) for every other command, while the webserver may be out of its reach or behind
authentication. The sensor runs where the instance is, so it decides which batches are behind
production when it handles the request, requests one run per partition (a partition that cannot
be scored, a key added by hand with a comma, fails its own run and nothing else), and the run
queue starts them within the `census_scoring` pool's limit. Run keys are per request and
partition, so a request is carried out once even if the sensor's cursor is lost.

The sensor is on by default: it launches nothing until an operator writes a request.
"""

from datetime import UTC, datetime

import dagster as dg

from census_assets.assets.batches import batch_records
from census_assets.assets.batches import census_batches as batch_partitions
from census_assets.automation.batch_jobs import (
    MAX_RUNS_PER_TICK,
    RESCORE_REQUEST_TAG,
    RESCORE_TAG,
    score_batches,
)
from census_assets.core.batch_summary import behind_production
from census_assets.core.rescore import RequestError, RescoreRequest, RescoreState
from census_assets.resources.inbox import LISTING_DEADLINE_S
from census_assets.resources.storage import ArtifactStorage
from census_assets.settings import INBOX_INTERVAL_SECONDS, setting
from census_assets.storage.errors import MissingArtifactError, PermanentStorageError
from census_assets.storage.objects import ObjectStore
from census_assets.storage.registry import Registry

REQUESTS = "requests/rescore"
SENSOR_NAME = "census_rescore"


def request_rescore(store: ObjectStore, everything: bool, now: datetime | None = None) -> list[str]:
    """`census-assets rescore`: write a request for the census_rescore sensor into the storage.
    Returns the lines to print; raises RegistryError when nothing is in production, StorageError
    when the storage cannot be written."""
    production = Registry(store).production()["version"]
    request = RescoreRequest.new(everything, production, now or datetime.now(UTC))
    name = f"{REQUESTS}/{request.id}.json"
    store.write(name, request.to_json())
    which = "every batch" if everything else f"the batches scored by another model than production {production}"
    return [
        f"re-score requested: {which} (request {request.id}, {store.url(name)})",
        f"the {SENSOR_NAME} sensor queues one run of {score_batches.name} per batch on its next tick "
        f"(every {INBOX_INTERVAL_SECONDS}, {setting(INBOX_INTERVAL_SECONDS).default_value} s by default); "
        "its ticks in the UI list them (needs the Dagster daemon)",
    ]


def _partitions(instance: dg.DagsterInstance, everything: bool, production: str) -> list[str]:
    if everything:
        return list(instance.get_dynamic_partitions(batch_partitions.name))
    return behind_production(batch_records(instance), production)


def _new_requests(store: ObjectStore, state: RescoreState, context) -> list[RescoreRequest]:
    """The requests not handled yet, oldest first; one that cannot be read is reported, marked
    handled and left alone."""
    try:
        listed, refused = store.listdir(REQUESTS)
    except MissingArtifactError:  # no request was ever made
        return []
    for entry in refused:
        context.log.warning(f"{store.url(REQUESTS)}/{entry.name}: not a request: {entry.reason}")
    requests = []
    for info in sorted(listed, key=lambda i: i.name):
        request_id = info.name.rpartition("/")[2].removesuffix(".json")
        if request_id in state.handled:
            continue
        try:
            requests.append(RescoreRequest.from_json(store.read(info.name)))
        except (RequestError, PermanentStorageError) as error:
            context.log.warning(f"re-score request {store.url(info.name)} ignored: {error}")
            state.handled.add(request_id)
    return requests


def rescore_tick(context: dg.SensorEvaluationContext, storage: ArtifactStorage, model_registry: Registry):
    try:
        state = RescoreState.from_cursor(context.cursor)
    except (ValueError, KeyError, TypeError) as error:
        context.log.warning(f"unreadable {SENSOR_NAME} cursor ({error}): starting afresh (run keys prevent repeats)")
        state = RescoreState()
    store = storage.open(storage.url, LISTING_DEADLINE_S)
    try:
        requests = _new_requests(store, state, context)
    except Exception as error:  # storage unreachable: say so, try on the next tick
        return dg.SkipReason(f"cannot list the re-score requests in {store.url(REQUESTS)}: "
                             f"{type(error).__name__}: {error}")  # fmt: skip
    if requests:
        try:
            pointer = model_registry.pointer()
        except Exception as error:  # a bad pointer: the requests wait (the cursor is not saved)
            return dg.SkipReason(f"cannot read the production pointer: {type(error).__name__}: {error}")
        if pointer is None:
            context.log.warning("re-score requested but no model is in production: nothing to re-score with")
            state.handled.update(request.id for request in requests)
            requests = []
        for request in requests:
            production = pointer["version"]
            partitions = _partitions(context.instance, request.everything, production)
            context.log.info(
                f"request {request.id} ({'every batch' if request.everything else 'batches behind production'}, "
                f"asked when production was {request.production}): {len(partitions)} batch(es) to re-score "
                f"with production {production}"
            )
            state.enqueue(request.id, partitions, production)
    existing = set(context.instance.get_dynamic_partitions(batch_partitions.name))
    runs, gone = state.take(MAX_RUNS_PER_TICK, existing)
    for run in gone:
        context.log.warning(f"request {run.request}: partition {run.partition!r} no longer exists: not re-scored")
    run_requests = [
        dg.RunRequest(
            run_key=run.run_key,
            job_name=score_batches.name,
            partition_key=run.partition,
            tags={RESCORE_TAG: run.production, RESCORE_REQUEST_TAG: run.request},
        )
        for run in runs
    ]
    waiting = f"; {len(state.queue)} more on the next ticks" if state.queue else ""
    return dg.SensorResult(
        run_requests=run_requests,
        cursor=state.to_cursor(),
        skip_reason=None if run_requests else f"no re-score request waiting{waiting}",
    )


def build_rescore_sensor(
    minimum_interval_seconds: int = setting(INBOX_INTERVAL_SECONDS).default_value,
) -> dg.SensorDefinition:
    """The sensor, looking as often as the inbox sensor (CENSUS_INBOX_INTERVAL_SECONDS)."""

    @dg.sensor(
        name=SENSOR_NAME,
        job=score_batches,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Carries out `census-assets rescore`: one run of score_batches per batch to re-score "
        "(those behind production, or every batch with --all); launches nothing without a request.",
    )
    def census_rescore(
        context: dg.SensorEvaluationContext, storage: ArtifactStorage, model_registry: dg.ResourceParam[Registry]
    ):
        """Reads new requests from <storage>/requests/rescore/ and queues their runs, a bounded number a tick."""
        return rescore_tick(context, storage, model_registry)

    return census_rescore
