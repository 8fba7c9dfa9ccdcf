"""The alert sensors. They only observe (no run is launched), so they are on by default.

- `census_run_failure_alert`: every failed run, with its failed steps and failed checks (one alert
  per run, so a failed check inside a failed run is part of the run's alert, never a second one).
  Dagster's run-failure sensor keeps its own cursor over the run-status events.
- `census_asset_health_alert`: failed checks of any severity in runs that did not fail (a failed
  WARN check, or a non-blocking ERROR check, does not fail its run) and reported outside runs, and
  freshness changes to WARN or FAIL (FRESHNESS_STATE_CHANGE events written by the daemon's
  freshness evaluation). Its cursor is the event log's storage id, saved with every tick.

Each alert is delivered at least once (census_assets.alerts).
"""

import dagster as dg

from census_assets.alerts.delivery import deliver
from census_assets.alerts.payloads import Alert, check_failed_alert, failed_check_evaluations, freshness_alert
from census_assets.alerts.payloads import run_failure_alert as run_failure_payload
from census_assets.resources.notifier import AlertNotifier
from census_assets.settings import DEFAULT_ALERT_INTERVAL_SECONDS

RUNLESS_RUN_ID = ""  # the run id of events reported outside runs (report_runless_asset_event)
# Alerts per tick at most; the rest wait for the next tick (the cursor stops before them).
MAX_ALERTS_PER_TICK = 25
# Events read per event type and tick.
EVENT_BATCH = 200
HEALTH_EVENT_TYPES = (
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_CANCELED,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
    dg.DagsterEventType.FRESHNESS_STATE_CHANGE,
)


def run_failure_alert_sensor(minimum_interval_seconds: int = DEFAULT_ALERT_INTERVAL_SECONDS) -> dg.SensorDefinition:
    """The sensor, looking every `minimum_interval_seconds` (CENSUS_ALERT_INTERVAL_SECONDS)."""

    @dg.run_failure_sensor(
        name="census_run_failure_alert",
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Logs a clear alert for every failed run (failed steps and checks) and sends it to the notifier.",
    )
    def census_run_failure_alert(context: dg.RunFailureSensorContext, notifier: AlertNotifier):
        deliver(context, notifier, [run_failure_payload(context)])

    return census_run_failure_alert


def new_health_events(instance: dg.DagsterInstance, after: int) -> list[tuple[int, object]]:
    """(storage id, EventLogEntry) of the watched events after `after`, in storage order. Each type
    is read in a batch; when a batch is full, only events up to its last id are returned, so the
    cursor never passes an event of another type that was not read yet."""
    storage = instance.event_log_storage
    found, horizon = {}, None
    for event_type in HEALTH_EVENT_TYPES:
        batch = storage.get_logs_for_all_runs_by_log_id(
            after_cursor=after, dagster_event_type=event_type, limit=EVENT_BATCH
        )
        if len(batch) == EVENT_BATCH:
            horizon = max(batch) if horizon is None else min(horizon, max(batch))
        found.update(batch)
    return [(i, found[i]) for i in sorted(found) if horizon is None or i <= horizon]


def health_alerts(entry, instance: dg.DagsterInstance, repository_def) -> list[Alert]:
    """The alerts one event gives (none for most)."""
    event = entry.dagster_event
    if event.event_type in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_CANCELED):
        # Checks are judged when their run has ended: a failed run's checks are in its own alert.
        run = instance.get_run_by_id(entry.run_id)
        return [check_failed_alert(e, run) for e in failed_check_evaluations(instance, entry.run_id)]
    if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        evaluation = event.event_specific_data
        if entry.run_id == RUNLESS_RUN_ID and evaluation is not None and not evaluation.passed:
            return [check_failed_alert(evaluation, None)]
        return []
    if event.event_type == dg.DagsterEventType.FRESHNESS_STATE_CHANGE:
        change = event.event_specific_data
        if change.new_state.value in ("WARN", "FAIL"):
            return [freshness_alert(change, change.state_change_timestamp or entry.timestamp, instance, repository_def)]
    return []


def asset_health_alert_sensor(minimum_interval_seconds: int = DEFAULT_ALERT_INTERVAL_SECONDS) -> dg.SensorDefinition:
    """The sensor, checking every `minimum_interval_seconds` (CENSUS_ALERT_INTERVAL_SECONDS)."""

    @dg.sensor(
        name="census_asset_health_alert",
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends failed asset checks (of runs that did not fail; any severity) and freshness "
        "warnings and failures to the notifier, at least once (cursor: the event log's storage id, "
        "saved after delivery).",
    )
    def census_asset_health_alert(context: dg.SensorEvaluationContext, notifier: AlertNotifier):
        instance = context.instance
        if context.cursor is None:
            # First tick ever: start from now, as the run-failure sensor does (no alert storm for history).
            start = instance.event_log_storage.get_maximum_record_id() or 0
            return dg.SensorResult(skip_reason=f"watching events after storage id {start}", cursor=str(start))
        after = int(context.cursor)
        alerts, cursor = [], after
        for storage_id, entry in new_health_events(instance, after):
            alerts.extend(health_alerts(entry, instance, context.repository_def))
            cursor = storage_id
            if len(alerts) >= MAX_ALERTS_PER_TICK:
                break
        # The cursor is saved with the tick's result, after delivery: a stop in between re-sends.
        outcomes = deliver(context, notifier, alerts)
        message = f"{len(alerts)} alert(s) up to storage id {cursor}" + (f": {'; '.join(outcomes)}" if outcomes else "")
        return dg.SensorResult(skip_reason=message, cursor=str(cursor))

    return census_asset_health_alert
