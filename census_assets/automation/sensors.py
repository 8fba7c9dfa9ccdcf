"""Jobs, schedules, sensors and automation conditions. Everything that launches runs is off by
default (turn it on in the UI); the run-failure alert only observes, so it is on."""

import json
import logging
import urllib.request

import dagster as dg

from census_assets.assets.census import GROUP
from census_assets.resources import CensusSource
from census_assets.sources import SourceError

census_pipeline = dg.define_asset_job(
    "census_pipeline",
    # Downstream of the census group: the lifecycle (held-out metrics, drift, promotion, scoring).
    selection=dg.AssetSelection.groups(GROUP).downstream(),
    description="The whole graph: source, clean, features, CV gate, model, evaluation, drift, promotion.",
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


# eager() alone ignores blocking checks: after a failed gate it would still request the asset
# below it on the next tick. Requiring the upstream blocking checks to have passed stops that.
GATED_EAGER = dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()

census_automation = dg.AutomationConditionSensorDefinition(
    "census_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Materialises assets downstream of a new raw_census, never past a failed blocking check.",
)


ALERT_LOG = logging.getLogger("census_assets.alerts")


class AlertNotifier(dg.ConfigurableResource):
    """Where run-failure alerts go besides the log: a webhook (JSON POST) when webhook_url is set.

    Pluggable: bind a subclass that overrides `send(alert: dict) -> str` under `notifier`
    (chat, e-mail, paging); the sensor logs the alert whatever the notifier does.
    """

    webhook_url: str = ""
    timeout_seconds: float = 10.0

    def send(self, alert: dict) -> str:
        """Deliver the alert; returns what was done, for the log."""
        if not self.webhook_url:
            return "no webhook configured (CENSUS_ALERT_WEBHOOK_URL): logged only"
        request = urllib.request.Request(
            self.webhook_url,
            data=json.dumps(alert).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
            return f"posted to webhook: HTTP {response.status}"


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
