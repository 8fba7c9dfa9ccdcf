"""Jobs, schedules and sensors. Both automations are off by default: turn them on in the UI."""

import dagster as dg

from census_assets.assets.census import GROUP
from census_assets.resources import CensusSource
from census_assets.sources import SourceError

census_pipeline = dg.define_asset_job(
    "census_pipeline",
    selection=dg.AssetSelection.groups(GROUP),
    description="The whole census graph: source, clean, features, CV gate, model.",
)

weekly_retrain = dg.ScheduleDefinition(
    name="weekly_retrain",
    job=census_pipeline,
    cron_schedule="0 3 * * 1",  # Mondays 03:00
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Retrain the census model every week.",
)


@dg.sensor(
    job=census_pipeline,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def census_source_changed(context: dg.SensorEvaluationContext, source: CensusSource):
    """Runs the pipeline when the configured source's content changes (hash or object checksum)."""
    try:
        fingerprint = source.fingerprint()
    except SourceError as error:
        return dg.SkipReason(str(error))
    if fingerprint == context.cursor:
        return dg.SkipReason(f"source {source.uri} unchanged ({fingerprint})")
    context.update_cursor(fingerprint)
    return dg.RunRequest(run_key=fingerprint, tags={"census/source_fingerprint": fingerprint})
