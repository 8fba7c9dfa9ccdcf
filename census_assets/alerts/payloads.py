"""What an alert says: one typed record per kind, built from Dagster's events, readable without
opening the run. `payload()` is the JSON document the notifier gets (`AlertNotifier.send`: a
webhook's body, Slack's text)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import dagster as dg

METADATA_TEXT_LIMIT = 500


@dataclass(frozen=True, kw_only=True)
class Alert:
    """`kind` names the record; `severity` is ERROR or WARN; `summary` is the one line a person reads."""

    kind: ClassVar[str]
    severity: str
    summary: str

    def payload(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}

    def details(self) -> dict[str, Any]:
        """Everything but the summary (what the log line adds to it)."""
        return {key: value for key, value in self.payload().items() if key != "summary"}


@dataclass(frozen=True, kw_only=True)
class CheckDetails:
    severity: str
    blocking: bool
    description: str
    metadata: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class RunFailureAlert(Alert):
    kind: ClassVar[str] = "run_failure"
    run_id: str
    job: str
    message: str | None
    failed_steps: dict[str, str]
    failed_checks: dict[str, str]
    failed_check_details: dict[str, CheckDetails]


@dataclass(frozen=True, kw_only=True)
class CheckFailedAlert(Alert):
    kind: ClassVar[str] = "check_failed"
    asset: str
    check: str
    blocking: bool
    description: str
    metadata: dict[str, Any]
    run_id: str | None
    job: str | None
    run_status: str | None


@dataclass(frozen=True, kw_only=True)
class FreshnessAlert(Alert):
    kind: ClassVar[str] = "freshness"
    asset: str
    state: str
    previous_state: str
    changed_at: str | None
    last_materialization: str | None
    hours_since_materialization: float | None
    fail_window_hours: float | None
    warn_window_hours: float | None


# ---- from Dagster's events --------------------------------------------------------------------


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


def _check_details(evaluation) -> CheckDetails:
    return CheckDetails(
        severity=evaluation.severity.value,
        blocking=bool(evaluation.blocking),
        description=evaluation.description or "failed",
        metadata=plain_metadata(evaluation.metadata),
    )


def failed_check_evaluations(instance: dg.DagsterInstance, run_id: str) -> list:
    """The run's failed check evaluations (AssetCheckEvaluation), in the order they happened."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    return [
        e
        for record in records
        if (e := record.event_log_entry.dagster_event.event_specific_data) is not None and not e.passed
    ]


def run_failure_alert(context: dg.RunFailureSensorContext) -> RunFailureAlert:
    """What failed and why: failed steps and failed checks."""
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
    return RunFailureAlert(
        severity="ERROR",
        summary=f"census run failed: {run.run_id} ({run.job_name}): {what}",
        run_id=run.run_id,
        job=run.job_name,
        message=context.failure_event.message,
        failed_steps=steps,
        failed_checks={_check_name(e): e.description or "failed" for e in checks},
        failed_check_details={_check_name(e): _check_details(e) for e in checks},
    )


def check_failed_alert(evaluation, run: dg.DagsterRun | None) -> CheckFailedAlert:
    """A failed check in a run that did not fail (or reported outside any run)."""
    details = _check_details(evaluation)
    where = f"run {run.run_id} ({run.job_name}, {run.status.value})" if run else "reported outside a run"
    return CheckFailedAlert(
        severity=details.severity,
        summary=f"census check {_check_name(evaluation)} failed ({details.severity}, {where}): {details.description}",
        asset=evaluation.asset_key.to_user_string(),
        check=evaluation.check_name,
        blocking=details.blocking,
        description=details.description,
        metadata=details.metadata,
        run_id=run.run_id if run else None,
        job=run.job_name if run else None,
        run_status=run.status.value if run else None,
    )


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds") if timestamp else None


def _window_hours(repository_def, key: dg.AssetKey) -> dict[str, float | None]:
    """The time-window policy's windows in hours, when the definitions are at hand."""
    try:
        policy = repository_def.asset_graph.get(key).freshness_policy if repository_def else None
    except (KeyError, AttributeError, dg.DagsterInvariantViolationError):
        policy = None
    hours = {}
    for name in ("fail_window", "warn_window"):
        window = getattr(policy, name, None)
        hours[f"{name}_hours"] = round(window.to_timedelta().total_seconds() / 3600, 4) if window else None
    return hours


def freshness_alert(change, changed_at: float, instance: dg.DagsterInstance, repository_def) -> FreshnessAlert:
    """An asset whose freshness policy now warns or fails (a FreshnessStateChange)."""
    asset = change.key.to_user_string()
    state = change.new_state.value
    last = instance.get_latest_materialization_event(change.key)
    age_hours = (changed_at - last.timestamp) / 3600 if last else None
    since = f"last materialised {age_hours:.1f} h ago ({_iso(last.timestamp)})" if last else "never materialised"
    return FreshnessAlert(
        severity="ERROR" if state == "FAIL" else "WARN",
        summary=f"census asset {asset} freshness {state}: {since}",
        asset=asset,
        state=state,
        previous_state=change.previous_state.value,
        changed_at=_iso(changed_at),
        last_materialization=_iso(last.timestamp) if last else None,
        hours_since_materialization=round(age_hours, 3) if age_hours is not None else None,
        **_window_hours(repository_def, change.key),
    )
