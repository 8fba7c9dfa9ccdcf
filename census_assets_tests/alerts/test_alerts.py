"""Alerts: failed runs, failed checks of any severity and freshness failures reach the notifier
once each; a webhook that fails or hangs is logged and the sensors keep going.

In-process: small runs with `dg.materialize` on a SQLite instance (as `dagster dev` keeps), the
sensors evaluated with `dg.build_sensor_context` / `dg.build_run_status_sensor_context` and their
saved cursors, and a real HTTP server on 127.0.0.1 recording what is POSTed (standing in for the
webhook and for Slack's Web API). The daemon's own freshness evaluation is in test_freshness.py.
"""

import logging
import time

import dagster as dg
import pytest
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange

from census_assets.alerts.sensors import MAX_ALERTS_PER_TICK, asset_health_alert_sensor, run_failure_alert_sensor
from census_assets.definitions import build_definitions
from census_assets.resources.notifier import AlertDeliveryError, AlertNotifier
from census_assets.settings import ALERT_WEBHOOK_URL, SLACK_TOKEN, SettingsError, load_environment
from census_assets_tests.harness.runner import failure_context
from census_assets_tests.harness.webhook import Recorder

# As definitions.py builds them, default intervals.
census_asset_health_alert = asset_health_alert_sensor()
census_run_failure_alert = run_failure_alert_sensor()
pytestmark = pytest.mark.ops


@pytest.fixture
def recorder():
    servers = []

    def start(mode="ok"):
        servers.append(Recorder(mode))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture(scope="module")
def instance():
    """SQLite in a temporary DAGSTER_HOME, shared: every test starts its sensor cursor at "now"."""
    with dg.instance_for_test() as instance:
        yield instance


# Minimal assets: the sensors are about events, not about what the checks compute.


@dg.asset(check_specs=[dg.AssetCheckSpec("looks_right", asset="scores")])
def scores():
    yield dg.Output(1)
    yield dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        description="PSI 0.14 above 0.1 for age",
        metadata={"max_psi": 0.14, "worst_feature": "age"},
    )


@dg.asset(deps=[scores])
def broken():
    raise dg.Failure(description="the model file is corrupt")


def report_failed_check(instance) -> None:
    """The failed WARN check of `scores`, reported outside a run: the same alert as a run of
    `scores` makes, for the tests about delivery, without the cost of a run."""
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("scores"), check_name="looks_right", passed=False,
            severity=dg.AssetCheckSeverity.WARN, description="PSI 0.14 above 0.1 for age",
        )
    )  # fmt: skip


def health_tick(instance, notifier: AlertNotifier, cursor: str | None, definitions=None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"notifier": notifier}, definitions=definitions
    )
    return census_asset_health_alert.evaluate_tick(context)


def start_cursor(instance, notifier) -> str:
    """The first tick starts from now (no alerts for history), as the daemon's first tick would."""
    first = health_tick(instance, notifier, None)
    assert first.cursor is not None and "watching events after storage id" in first.skip_message
    return first.cursor


def test_failed_warn_check_in_a_successful_run_is_sent_once_with_reason_and_metadata(instance, recorder):
    hook = recorder()
    notifier = AlertNotifier(webhook_url=hook.url)
    cursor = start_cursor(instance, notifier)
    result = dg.materialize([scores], instance=instance)
    assert result.success  # a failed WARN check does not fail its run: no run-failure alert

    tick = health_tick(instance, notifier, cursor)
    [alert] = hook.alerts
    assert alert["kind"] == "check_failed" and alert["severity"] == "WARN"
    assert alert["asset"] == "scores" and alert["check"] == "looks_right"
    assert alert["description"] == "PSI 0.14 above 0.1 for age"
    assert alert["metadata"] == {"max_psi": 0.14, "worst_feature": "age"}
    assert alert["run_id"] == result.run_id and alert["run_status"] == "SUCCESS"
    assert "scores:looks_right failed (WARN" in alert["summary"]

    # The saved cursor: re-evaluating (a restarted daemon) sends nothing again.
    again = health_tick(instance, notifier, tick.cursor)
    assert len(hook.posts) == 1 and again.cursor == tick.cursor


def test_failed_run_is_one_alert_with_its_failed_check(instance, recorder):
    hook = recorder()
    notifier = AlertNotifier(webhook_url=hook.url)
    cursor = start_cursor(instance, notifier)
    result = dg.materialize([scores, broken], instance=instance, raise_on_error=False)
    assert not result.success

    context = failure_context(result, instance, notifier)
    census_run_failure_alert(context)
    health_tick(instance, notifier, cursor)  # sees the failed check: it belongs to the failed run

    [alert] = hook.alerts
    assert alert["kind"] == "run_failure" and alert["run_id"] == result.run_id
    assert alert["failed_steps"] == {"broken": "the model file is corrupt"}
    assert alert["failed_checks"] == {"scores:looks_right": "PSI 0.14 above 0.1 for age"}
    details = alert["failed_check_details"]["scores:looks_right"]
    assert details["severity"] == "WARN" and details["metadata"]["worst_feature"] == "age"


def test_freshness_failure_is_sent_once_with_the_policy(instance, recorder, tmp_path):
    hook = recorder()
    notifier = AlertNotifier(webhook_url=hook.url)
    defs = build_definitions(load_environment({"CENSUS_STORAGE_URL": str(tmp_path / "storage")}))
    cursor = start_cursor(instance, notifier)
    model = dg.AssetKey("lgbm_model")
    instance.report_runless_asset_event(dg.AssetMaterialization(model))
    # What the daemon's freshness evaluation writes (test_freshness.py shows it doing so).
    for previous, new in ((FreshnessState.UNKNOWN, FreshnessState.PASS), (FreshnessState.PASS, FreshnessState.FAIL)):
        change = FreshnessStateChange(
            key=model, previous_state=previous, new_state=new, state_change_timestamp=time.time()
        )
        instance.report_runless_asset_event(change)

    tick = health_tick(instance, notifier, cursor, definitions=defs)
    [alert] = hook.alerts  # PASS is no alert
    assert alert["kind"] == "freshness" and alert["severity"] == "ERROR" and alert["state"] == "FAIL"
    assert alert["asset"] == "lgbm_model" and alert["previous_state"] == "PASS"
    assert alert["fail_window_hours"] == 360 and alert["warn_window_hours"] == 192  # the defaults
    assert alert["last_materialization"] and 0 <= alert["hours_since_materialization"] < 0.1
    assert health_tick(instance, notifier, tick.cursor, definitions=defs).cursor == tick.cursor
    assert len(hook.posts) == 1


def test_failed_check_reported_outside_a_run_is_sent(instance, recorder):
    hook = recorder()
    notifier = AlertNotifier(webhook_url=hook.url)
    cursor = start_cursor(instance, notifier)
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("raw_census"), check_name="external_row_count", passed=False,
            severity=dg.AssetCheckSeverity.ERROR, description="0 rows upstream",
        )
    )  # fmt: skip
    health_tick(instance, notifier, cursor)
    [alert] = hook.alerts
    assert alert["check"] == "external_row_count" and alert["severity"] == "ERROR" and alert["run_id"] is None


def test_webhook_answering_500_is_logged_and_the_sensor_moves_on(instance, recorder, caplog):
    hook = recorder("error")
    notifier = AlertNotifier(webhook_url=hook.url)
    cursor = start_cursor(instance, notifier)
    report_failed_check(instance)
    report_failed_check(instance)
    with caplog.at_level(logging.INFO, logger="census_assets.alerts"):
        tick = health_tick(instance, notifier, cursor)
    assert len(hook.posts) == 1  # the second alert of the tick is not tried against a failing webhook
    assert "alert delivery failed" in caplog.text and "HTTP Error 500" in caplog.text
    assert "not sent: an earlier delivery in this tick failed" in caplog.text
    logged = [r for r in caplog.records if r.getMessage().startswith("census check scores:looks_right failed")]
    assert len(logged) == 2  # both alerts are in the log
    assert int(tick.cursor) > int(cursor)  # not retried: the next tick starts after them
    health_tick(instance, notifier, tick.cursor)
    assert len(hook.posts) == 1


def test_webhook_that_hangs_costs_one_bounded_timeout(instance, recorder, caplog):
    hook = recorder("hang")
    notifier = AlertNotifier(webhook_url=hook.url, timeout_seconds=1)
    cursor = start_cursor(instance, notifier)
    for _ in range(3):
        report_failed_check(instance)
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="census_assets.alerts"):
        tick = health_tick(instance, notifier, cursor)
    assert time.monotonic() - started < 5
    assert len(hook.posts) == 1 and "timed out" in caplog.text
    assert int(tick.cursor) > int(cursor)


def test_run_failure_sensor_survives_a_failing_webhook(instance, recorder, caplog):
    hook = recorder("error")
    result = dg.materialize([broken], instance=instance, raise_on_error=False)
    context = failure_context(result, instance, AlertNotifier(webhook_url=hook.url))
    with caplog.at_level(logging.INFO, logger="census_assets.alerts"):
        census_run_failure_alert(context)  # does not raise
    assert len(hook.posts) == 1 and "alert delivery failed" in caplog.text and "corrupt" in caplog.text


def test_a_tick_sends_at_most_a_batch_and_the_rest_next_tick(instance, recorder):
    hook = recorder()
    notifier = AlertNotifier(webhook_url=hook.url)
    cursor = start_cursor(instance, notifier)
    for _ in range(MAX_ALERTS_PER_TICK + 2):
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(asset_key=dg.AssetKey("a"), check_name="c", passed=False)
        )
    first = health_tick(instance, notifier, cursor)
    assert len(hook.alerts) == MAX_ALERTS_PER_TICK
    health_tick(instance, notifier, first.cursor)
    assert len(hook.alerts) == MAX_ALERTS_PER_TICK + 2


def test_slack_gets_the_alert_through_dagster_slack(instance, recorder):
    slack, hook = recorder(), recorder()
    notifier = AlertNotifier(
        webhook_url=hook.url, slack_channel="#ml-alerts", slack_token="xoxb-test", slack_api_url=slack.api
    )
    cursor = start_cursor(instance, notifier)
    report_failed_check(instance)
    health_tick(instance, notifier, cursor)
    [post] = [p for p in slack.posts if p["path"] == "/api/chat.postMessage"]
    assert post["headers"]["Authorization"] == "Bearer xoxb-test"
    assert post["body"]["channel"] == "#ml-alerts"
    assert "scores:looks_right failed (WARN" in post["body"]["text"] and "PSI 0.14" in post["body"]["text"]
    assert len(hook.alerts) == 1  # both channels


def test_slack_failing_does_not_stop_the_webhook(recorder):
    slack, hook = recorder("error"), recorder()
    notifier = AlertNotifier(webhook_url=hook.url, slack_channel="#x", slack_token="t", slack_api_url=slack.api)
    with pytest.raises(AlertDeliveryError) as error:
        notifier.send({"kind": "test", "summary": "s"})
    assert "slack delivery failed: SlackApiError" in str(error.value) and "posted to webhook" in str(error.value)
    assert len(hook.alerts) == 1 and len(slack.posts) == 1  # no retry either


def test_secrets_are_env_vars_and_the_webhook_url_is_checked(monkeypatch):
    env = {
        "CENSUS_ALERT_WEBHOOK_URL": "https://hooks.example.com/T000/secret",
        "CENSUS_SLACK_CHANNEL": "#ml-alerts",
        "CENSUS_SLACK_TOKEN": "xoxb-secret",
        "CENSUS_ALERT_INTERVAL_SECONDS": "45",
    }
    defs = build_definitions(load_environment(env))
    notifier = defs.resources["notifier"]
    # The UI shows {"env": NAME} for these fields, never the value.
    assert isinstance(notifier.webhook_url, dg.EnvVar) and notifier.webhook_url.env_var_name == ALERT_WEBHOOK_URL
    assert isinstance(notifier.slack_token, dg.EnvVar) and notifier.slack_token.env_var_name == SLACK_TOKEN
    assert notifier.slack_channel == "#ml-alerts"
    assert "secret" not in repr(load_environment(env))
    sensor = defs.resolve_sensor_def("census_asset_health_alert")
    assert sensor.minimum_interval_seconds == 45 and sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert isinstance(build_definitions(load_environment({})).resources["notifier"].webhook_url, str)

    for bad in ("ftp://hooks.example.com/x", "hooks.example.com/x", "https://"):
        with pytest.raises(SettingsError, match="CENSUS_ALERT_WEBHOOK_URL must be an http:// or https:// URL") as error:
            load_environment({"CENSUS_ALERT_WEBHOOK_URL": bad})
        assert "hooks.example.com" not in str(error.value)  # the secret is not echoed
    with pytest.raises(SettingsError, match="CENSUS_SLACK_TOKEN must be set when CENSUS_SLACK_CHANNEL"):
        load_environment({"CENSUS_SLACK_CHANNEL": "#x"})
    with pytest.raises(SettingsError, match="CENSUS_ALERT_INTERVAL_SECONDS"):
        load_environment({"CENSUS_ALERT_INTERVAL_SECONDS": "0"})
