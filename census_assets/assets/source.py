"""The census source in the lineage: `census_source`, an observable source asset upstream of raw_census.

Each observation records the source's fingerprint (CensusSource.fingerprint(): a local file's
content hash, a gs:// object's checksum, a BigQuery table's last-modified time and row count) as
its data version. raw_census's materializations remember the version they were made from, so the
UI shows "changed upstream" on raw_census once an observation brings a new version. A `touch` or a
re-upload of the same bytes keeps the version.

Observed by "Observe" in the UI (an observation run), by the `census_source_changed` sensor (which
records an observation whenever the fingerprint changes, before it requests the pipeline run), or
by any job that selects it.
"""

import warnings
from datetime import UTC, datetime

import dagster as dg

from census_assets.assets.specs import OWNERS, TRAINING_GROUP
from census_assets.failures import refuse
from census_assets.resources.source import CensusSource
from census_assets.sources.common import SourceError

CENSUS_SOURCE = dg.AssetKey("census_source")
# The tag Dagster reads an observation's data version from (what ObserveResult(data_version=) sets).
DATA_VERSION_TAG = "dagster/data_version"
# When the current version was first observed: the last time the source changed, as far as Dagster saw.
VERSION_SINCE = "version_since"


def source_observation(source: CensusSource, instance: dg.DagsterInstance | None = None) -> tuple[str, dict]:
    """The source's fingerprint (its data version) and the observation's metadata. With an instance,
    `version_since` carries over from the previous observation while the version stays the same."""
    info = source.table_info()  # bq://: last-modified time and row count (None for files)
    fingerprint = info.version if info else source.fingerprint()
    since = datetime.now(UTC).isoformat(timespec="seconds")
    if instance is not None:
        record = instance.get_latest_data_version_record(CENSUS_SOURCE, is_source=True)
        entry = record.event_log_entry if record else None
        observation = entry.asset_observation if entry else None
        if observation and (entry.tags or {}).get(DATA_VERSION_TAG) == fingerprint:
            previous = observation.metadata.get(VERSION_SINCE)
            since = previous.value if previous is not None else since
    metadata = {
        "source": source.uri,
        "fingerprint": fingerprint,
        VERSION_SINCE: since,
        **(info.metadata() if info else {}),
    }
    return fingerprint, metadata


def observation_event(fingerprint: str, metadata: dict) -> dg.AssetObservation:
    """The same observation as an event, for a sensor's SensorResult(asset_events=...)."""
    return dg.AssetObservation(asset_key=CENSUS_SOURCE, metadata=metadata, tags={DATA_VERSION_TAG: fingerprint})


# Observable source assets are beta in Dagster 1.13: the warning would greet every CLI run.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", category=dg.BetaWarning)

    @dg.multi_observable_source_asset(
        specs=[
            dg.AssetSpec(
                CENSUS_SOURCE,
                group_name=TRAINING_GROUP,
                owners=OWNERS,
                description="The census table where CENSUS_SOURCE points (bundled, a file, gs:// or bq://); "
                "its data version is the content fingerprint, so a change makes raw_census stale.",
            )
        ],
    )
    def census_source(context: dg.AssetExecutionContext, source: CensusSource):
        """Records the source's fingerprint as its data version (a missing or unreadable source fails the
        observation with the reason)."""
        try:
            fingerprint, metadata = source_observation(source, context.instance)
        except SourceError as error:
            raise refuse(f"cannot observe {source.uri}: {error}") from error
        yield dg.ObserveResult(asset_key=CENSUS_SOURCE, data_version=dg.DataVersion(fingerprint), metadata=metadata)
