"""Sensors: the source watcher, the automation evaluator and the run-failure alert. Everything
that launches runs is off by default (turn it on in the UI); the alert only observes, so it is on."""

import json
import logging

import dagster as dg

from census_assets.automation.jobs import census_pipeline
from census_assets.resources.notifier import AlertNotifier
from census_assets.resources.source import CensusSource
from census_assets.sources.common import SourceError


@dg.sensor(
    job=census_pipeline,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    # The UI lists sensors by this text; a sensor's docstring is not shown there.
    description="Runs census_pipeline when the configured source's content changes (CENSUS_SOURCE).",
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


census_automation = dg.AutomationConditionSensorDefinition(
    "census_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Materialises assets downstream of a new raw_census, never past a failed blocking check.",
)


ALERT_LOG = logging.getLogger("census_assets.alerts")


def failure_alert(context: dg.RunFailureSensorContext) -> dict:
    """What failed and why, readable without opening the run: failed steps and failed checks."""
    steps = {
        event.step_key: (
            (data.user_failure_data.description if data.user_failure_data else None) or data.error.message
        ).strip()
        for event in context.get_step_failure_events()
        if (data := event.step_failure_data) is not None
    }
    records = context.instance.get_records_for_run(
        context.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    checks = {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e.description or "failed"
        for record in records
        if (e := record.event_log_entry.dagster_event.event_specific_data) is not None and not e.passed
    }
    return {
        "run_id": context.dagster_run.run_id,
        "job": context.dagster_run.job_name,
        "message": context.failure_event.message,
        "failed_steps": steps,
        "failed_checks": checks,
    }


@dg.run_failure_sensor(
    name="census_run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Logs a clear alert for every failed run and sends it to the notifier resource.",
)
def census_run_failure_alert(context: dg.RunFailureSensorContext, notifier: AlertNotifier):
    alert = failure_alert(context)
    # The tick log shows it in the UI; the process log reaches whatever collects the daemon's logs.
    logs = (context.log, ALERT_LOG)
    for log in logs:
        log.error(f"census run failed: {json.dumps(alert, sort_keys=True)}")
    try:
        outcome, level = notifier.send(alert), logging.INFO
    except OSError as error:  # the alert is in the log either way; say the webhook failed
        outcome, level = f"webhook delivery failed: {error}", logging.ERROR
    for log in logs:
        log.log(level, outcome)
