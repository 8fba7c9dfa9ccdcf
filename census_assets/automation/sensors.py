"""Run-launching sensors: the source watcher and the automation evaluator, off by default (turn
them on in the UI). The inbox sensor is in inbox.py, the re-score sensor in rescore.py; the alert
sensors, which only observe, are census_assets.alerts.
"""

import dagster as dg

from census_assets.assets.source import observation_event, source_observation
from census_assets.automation.jobs import census_pipeline
from census_assets.resources.source import CensusSource
from census_assets.sources.common import SourceError


def _instance_or_none(context: dg.SensorEvaluationContext) -> dg.DagsterInstance | None:
    try:
        return context.instance
    except dg.DagsterInvariantViolationError:  # a test context built without an instance
        return None


@dg.sensor(
    job=census_pipeline,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    # The UI lists sensors by this text; a sensor's docstring is not shown there.
    description="Runs census_pipeline when the configured source's content changes (CENSUS_SOURCE); "
    "records each new fingerprint as an observation of census_source.",
)
def census_source_changed(context: dg.SensorEvaluationContext, source: CensusSource):
    """Runs the pipeline when the configured source's content changes (hash or object checksum), and
    records the new fingerprint as census_source's data version before the run starts, so raw_census
    is materialised from a version the lineage knows."""
    try:
        fingerprint, metadata = source_observation(source, _instance_or_none(context))
    except SourceError as error:
        return dg.SkipReason(str(error))
    if fingerprint == context.cursor:
        return dg.SkipReason(f"source {source.uri} unchanged ({fingerprint})")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=fingerprint, tags={"census/source_fingerprint": fingerprint})],
        asset_events=[observation_event(fingerprint, metadata)],
        cursor=fingerprint,
    )


census_automation = dg.AutomationConditionSensorDefinition(
    "census_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Materialises assets downstream of a new raw_census, never past a failed blocking check.",
)
