"""Sensors: the source watcher, the automation evaluator and the two alert sensors. Everything
that launches runs is off by default (turn it on in the UI); the alert sensors only observe, so
they are on.

What reaches the `notifier` resource (and the log, logger `census_assets.alerts`), each once:

- `census_run_failure_alert`: every failed run, with its failed steps and failed checks (one alert
  per run, so a failed check inside a failed run is part of the run's alert, never a second one).
  Dagster's run-failure sensor keeps its own cursor over the run-status events.
- `census_asset_health_alert`: failed checks of any severity in runs that did not fail (a failed
  WARN check, or a non-blocking ERROR check, does not fail its run) and reported outside runs, and
  freshness changes to WARN or FAIL (FRESHNESS_STATE_CHANGE events written by the daemon's
  freshness evaluation). Its cursor is the event log's storage id, saved with every tick, so a
  restart repeats nothing.
"""

import json
import logging
from datetime import UTC, datetime

import dagster as dg

from census_assets.assets.source import observation_event, source_observation
from census_assets.automation.jobs import census_pipeline
from census_assets.resources.notifier import AlertNotifier
from census_assets.resources.source import CensusSource
from census_assets.settings import DEFAULT_ALERT_INTERVAL_SECONDS
from census_assets.sources.common import SourceError

ALERT_LOG = logging.getLogger("census_assets.alerts")
RUNLESS_RUN_ID = ""  # the run id of events reported outside runs (report_runless_asset_event)
# Alerts per tick at most; the rest wait for the next tick (the cursor stops before them).
MAX_ALERTS_PER_TICK = 25
# Events read per event type and tick.
EVENT_BATCH = 200
METADATA_TEXT_LIMIT = 500


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


# What an alert says


def _plain(value):
    """A metadata value as JSON: numbers, text and JSON as they are, anything else as (short) text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict | list):
        try:
            json.dumps(value)
            return value
        except (TypeError, ValueError):
            pass
    text = str(value)
    return text if len(text) <= METADATA_TEXT_LIMIT else text[:METADATA_TEXT_LIMIT] + "..."


def plain_metadata(metadata) -> dict:
    return {key: _plain(getattr(value, "value", value)) for key, value in (metadata or {}).items()}


def _check_name(evaluation) -> str:
    return f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"


def failed_check_evaluations(instance: dg.DagsterInstance, run_id: str) -> list:
    """The run's failed check evaluations (AssetCheckEvaluation), in the order they happened."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    return [
        e
        for record in records
        if (e := record.event_log_entry.dagster_event.event_specific_data) is not None and not e.passed
    ]


def failure_alert(context: dg.RunFailureSensorContext) -> dict:
    """What failed and why, readable without opening the run: failed steps and failed checks."""
    steps = {
        event.step_key: (
            (data.user_failure_data.description if data.user_failure_data else None) or data.error.message
        ).strip()
        for event in context.get_step_failure_events()
        if (data := event.step_failure_data) is not None
    }
    run = context.dagster_run
    checks = failed_check_evaluations(context.instance, run.run_id)
    what = ", ".join([*steps, *map(_check_name, checks)]) or "see the run"
    return {
        "kind": "run_failure",
        "severity": "ERROR",
        "summary": f"census run failed: {run.run_id} ({run.job_name}): {what}",
        "run_id": run.run_id,
        "job": run.job_name,
        "message": context.failure_event.message,
        "failed_steps": steps,
        "failed_checks": {_check_name(e): e.description or "failed" for e in checks},
        "failed_check_details": {_check_name(e): _check_details(e) for e in checks},
    }


def _check_details(evaluation) -> dict:
    return {
        "severity": evaluation.severity.value,
        "blocking": bool(evaluation.blocking),
        "description": evaluation.description or "failed",
        "metadata": plain_metadata(evaluation.metadata),
    }


def check_alert(evaluation, run: dg.DagsterRun | None) -> dict:
    """A failed check in a run that did not fail (or reported outside any run)."""
    details = _check_details(evaluation)
    where = f"run {run.run_id} ({run.job_name}, {run.status.value})" if run else "reported outside a run"
    return {
        "kind": "check_failed",
        "severity": details["severity"],
        "summary": f"census check {_check_name(evaluation)} failed ({details['severity']}, {where}): "
        f"{details['description']}",
        "asset": evaluation.asset_key.to_user_string(),
        "check": evaluation.check_name,
        **details,
        "run_id": run.run_id if run else None,
        "job": run.job_name if run else None,
        "run_status": run.status.value if run else None,
    }


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds") if timestamp else None


def _policy_windows(repository_def, key: dg.AssetKey) -> dict:
    """The time-window policy's windows in hours, when the definitions are at hand."""
    try:
        policy = repository_def.asset_graph.get(key).freshness_policy if repository_def else None
    except (KeyError, AttributeError, dg.DagsterInvariantViolationError):
        return {}
    windows = {"fail_window": getattr(policy, "fail_window", None), "warn_window": getattr(policy, "warn_window", None)}
    return {
        f"{name}_hours": round(window.to_timedelta().total_seconds() / 3600, 4)
        for name, window in windows.items()
        if window is not None
    }


def freshness_alert(change, changed_at: float, instance: dg.DagsterInstance, repository_def) -> dict:
    """An asset whose freshness policy now warns or fails (a FreshnessStateChange)."""
    asset = change.key.to_user_string()
    state = change.new_state.value
    last = instance.get_latest_materialization_event(change.key)
    age_hours = (changed_at - last.timestamp) / 3600 if last else None
    since = f"last materialised {age_hours:.1f} h ago ({_iso(last.timestamp)})" if last else "never materialised"
    return {
        "kind": "freshness",
        "severity": "ERROR" if state == "FAIL" else "WARN",
        "summary": f"census asset {asset} freshness {state}: {since}",
        "asset": asset,
        "state": state,
        "previous_state": change.previous_state.value,
        "changed_at": _iso(changed_at),
        "last_materialization": _iso(last.timestamp) if last else None,
        "hours_since_materialization": round(age_hours, 3) if age_hours is not None else None,
        **_policy_windows(repository_def, change.key),
    }


# Delivering alerts


def deliver(context, notifier: AlertNotifier, alerts: list[dict]) -> list[str]:
    """Logs every alert (the tick log shows it in the UI; the process log reaches whatever collects
    the daemon's logs) and sends it to the notifier. A failed delivery is logged and not retried;
    after one, the rest of this tick's alerts are logged only, so a channel that hangs costs one
    timeout per tick, not one per alert. Returns the outcomes."""
    logs = (context.log, ALERT_LOG)
    outcomes, broken = [], None
    for alert in alerts:
        level = logging.ERROR if alert.get("severity") == "ERROR" else logging.WARNING
        for log in logs:
            details = {key: value for key, value in alert.items() if key != "summary"}
            log.log(level, f"{alert['summary']} | {json.dumps(details, sort_keys=True, default=str)}")
        if broken is not None:
            outcome, outcome_level = f"not sent: an earlier delivery in this tick failed ({broken})", logging.ERROR
        else:
            try:
                outcome, outcome_level = notifier.send(alert), logging.INFO
            except Exception as error:  # whatever the notifier raises: log it and keep going
                broken = f"{type(error).__name__}: {error}"
                outcome, outcome_level = f"alert delivery failed: {broken}", logging.ERROR
        for log in logs:
            log.log(outcome_level, outcome)
        outcomes.append(outcome)
    return outcomes


@dg.run_failure_sensor(
    name="census_run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Logs a clear alert for every failed run (failed steps and checks) and sends it to the notifier.",
)
def census_run_failure_alert(context: dg.RunFailureSensorContext, notifier: AlertNotifier):
    deliver(context, notifier, [failure_alert(context)])


# Failed checks of runs that did not fail, checks reported outside runs, freshness changes

HEALTH_EVENT_TYPES = (
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_CANCELED,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
    dg.DagsterEventType.FRESHNESS_STATE_CHANGE,
)


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


def health_alerts(entry, instance: dg.DagsterInstance, repository_def) -> list[dict]:
    """The alerts one event gives (none for most)."""
    event = entry.dagster_event
    if event.event_type in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_CANCELED):
        # Checks are judged when their run has ended: a failed run's checks are in its own alert.
        run = instance.get_run_by_id(entry.run_id)
        return [check_alert(e, run) for e in failed_check_evaluations(instance, entry.run_id)]
    if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        evaluation = event.event_specific_data
        if entry.run_id == RUNLESS_RUN_ID and evaluation is not None and not evaluation.passed:
            return [check_alert(evaluation, None)]
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
        "warnings and failures to the notifier, each once (cursor: the event log's storage id).",
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
        # The cursor is saved with the tick's result; an alert is delivered (or its failure logged) once.
        outcomes = deliver(context, notifier, alerts)
        message = f"{len(alerts)} alert(s) up to storage id {cursor}" + (f": {'; '.join(outcomes)}" if outcomes else "")
        return dg.SensorResult(skip_reason=message, cursor=str(cursor))

    return census_asset_health_alert


census_asset_health_alert = asset_health_alert_sensor()
