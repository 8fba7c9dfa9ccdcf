"""lgbm_model's freshness policy: configured from the environment, evaluated by the daemon.

Dagster 1.13 evaluates `dg.FreshnessPolicy.time_window(...)` in the daemon's FRESHNESS_DAEMON
(started by `dagster-daemon run` when the instance setting `freshness: enabled` is true, its
default; every FRESHNESS_DAEMON_INTERVAL_SECONDS, 30 by default). Each change of state is written
to the event log as a FRESHNESS_STATE_CHANGE event, which the UI's asset health
(`freshnessStatusInfo`) and the census_asset_health_alert sensor read.

The daemon test runs one real deployment (code server, webserver, daemon on a temporary
DAGSTER_HOME, census_assets_tests/harness/dagster.py) with 60 s / 68 s windows, Dagster's minimum
being one minute. lgbm_model is given one materialization stored as if made 52 s earlier (the
evaluation compares the last materialization's timestamp with the clock, so this is the state
52 s after a real one, without waiting for it), then left alone: the daemon turns it from PASS to
WARN to FAIL, the UI shows it, and the alert sensor in the same daemon POSTs the failure once; after
a restart of the daemon it sends what happened while it was down and nothing twice.
"""

import time
from datetime import timedelta

import dagster as dg
import pytest

from census_assets.definitions import build_definitions
from census_assets.settings import SettingsError, load_environment
from census_assets_tests.harness.dagster import REPO_DAGSTER_YAML
from census_assets_tests.harness.waiting import wait_for
from census_assets_tests.harness.webhook import Recorder

pytestmark = pytest.mark.ops

MODEL = dg.AssetKey("lgbm_model")


def policy_of(env: dict, key: dg.AssetKey = MODEL):
    graph = build_definitions(load_environment(env)).resolve_asset_graph()
    return graph.get(key).freshness_policy


def test_model_policy_fits_the_weekly_retrain_by_default():
    policy = policy_of({})
    assert policy.warn_window.to_timedelta() == timedelta(days=8)
    assert policy.fail_window.to_timedelta() == timedelta(days=15)
    assert policy_of({}, dg.AssetKey("raw_census")) is None  # only the model carries one


def test_model_policy_windows_come_from_the_environment():
    policy = policy_of({"CENSUS_FRESHNESS_WARN_HOURS": "36", "CENSUS_FRESHNESS_FAIL_HOURS": "72.5"})
    assert policy.warn_window.to_timedelta() == timedelta(hours=36)
    assert policy.fail_window.to_timedelta() == timedelta(hours=72, minutes=30)
    assert policy == dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=72, minutes=30), warn_window=timedelta(hours=36)
    )


@pytest.mark.parametrize(
    "env, message",
    [
        ({"CENSUS_FRESHNESS_WARN_HOURS": "a week"}, "CENSUS_FRESHNESS_WARN_HOURS='a week' is not a number of hours"),
        ({"CENSUS_FRESHNESS_FAIL_HOURS": "inf"}, "CENSUS_FRESHNESS_FAIL_HOURS='inf' is not a number of hours"),
        ({"CENSUS_FRESHNESS_FAIL_HOURS": "0.01"}, "CENSUS_FRESHNESS_FAIL_HOURS='0.01' must be at least one minute"),
        ({"CENSUS_FRESHNESS_WARN_HOURS": "-1"}, "CENSUS_FRESHNESS_WARN_HOURS='-1' must be at least one minute"),
        ({"CENSUS_FRESHNESS_WARN_HOURS": "400"}, "CENSUS_FRESHNESS_WARN_HOURS (400 h) must be less than CENSUS_FRESHNESS_FAIL_HOURS (360 h)"),  # noqa: E501
    ],
)
def test_bad_windows_fail_at_load_with_the_variable_name(env, message):
    with pytest.raises(SettingsError) as error:
        load_environment(env)
    assert message in str(error.value)


# The real daemon

WARN_SECONDS, FAIL_SECONDS, MATERIALISED_AGO = 60, 68, 52
ALERT_INTERVAL = 2
ALERT_SENSOR = "census_asset_health_alert"


def hours(seconds: int) -> str:
    return f"{seconds / 3600:.6f}"  # rounded back to whole seconds by the settings


FRESHNESS = """query Freshness($key: AssetKeyInput!) {
  assetNodes(assetKeys: [$key]) {
    freshnessStatusInfo { freshnessStatus freshnessStatusMetadata { lastMaterializedTimestamp } }
    internalFreshnessPolicy { __typename ... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds } }
  }
  instance { freshnessEvaluationEnabled daemonHealth { allDaemonStatuses { daemonType healthy } } }
}"""
NOTIFIER = """query Notifier($selector: ResourceSelector!) {
  topLevelResourceDetailsOrError(resourceSelector: $selector) { __typename
    ... on ResourceDetails { configuredValues { key value type } } } }"""


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, start_dagster):
    base = tmp_path_factory.mktemp("freshness")
    hook = Recorder()
    env = {
        "CENSUS_STORAGE_URL": str(base / "storage"),
        "CENSUS_FRESHNESS_WARN_HOURS": hours(WARN_SECONDS),
        "CENSUS_FRESHNESS_FAIL_HOURS": hours(FAIL_SECONDS),
        "CENSUS_ALERT_INTERVAL_SECONDS": str(ALERT_INTERVAL),
        "CENSUS_ALERT_WEBHOOK_URL": hook.url,
        "FRESHNESS_DAEMON_INTERVAL_SECONDS": "1",  # read by the daemon's FreshnessDaemon (default 30)
    }
    try:
        with start_dagster(base, REPO_DAGSTER_YAML, env) as running:
            running.hook = hook
            yield running
    finally:
        hook.close()


def freshness_changes(instance) -> list[tuple[str, str]]:
    """(previous, new) of lgbm_model's FRESHNESS_STATE_CHANGE events, in order."""
    events = instance.event_log_storage.get_logs_for_all_runs_by_log_id(
        dagster_event_type=dg.DagsterEventType.FRESHNESS_STATE_CHANGE
    )
    changes = [entry.dagster_event.event_specific_data for _, entry in sorted(events.items())]
    return [(c.previous_state.value, c.new_state.value) for c in changes if c.key == MODEL]


def test_daemon_turns_an_unrefreshed_model_from_fresh_to_failing_and_alerts_once(deployment):
    key = {"path": MODEL.path}
    first = deployment.graphql(FRESHNESS, {"key": key})
    assert first["instance"]["freshnessEvaluationEnabled"] is True
    daemons = {d["daemonType"]: d["healthy"] for d in first["instance"]["daemonHealth"]["allDaemonStatuses"]}
    assert "FRESHNESS_DAEMON" in daemons
    [node] = first["assetNodes"]
    assert node["internalFreshnessPolicy"] == {
        "__typename": "TimeWindowFreshnessPolicy", "failWindowSeconds": FAIL_SECONDS, "warnWindowSeconds": WARN_SECONDS,
    }  # fmt: skip
    # The alert sensor (on by default) has had its first tick, so it watches from before what follows.
    wait_for(lambda: deployment.sensor_state(ALERT_SENSOR).get("lastCursor"), 60, what="first alert-sensor tick")

    instance = dg.DagsterInstance.from_config(str(deployment.home))
    try:
        from dagster._core.events import DagsterEvent, StepMaterializationData

        # lgbm_model materialised MATERIALISED_AGO seconds ago, then nothing: a stalled retrain.
        materialised_at = time.time() - MATERIALISED_AGO
        instance.report_dagster_event(
            DagsterEvent(
                event_type_value=dg.DagsterEventType.ASSET_MATERIALIZATION.value,
                event_specific_data=StepMaterializationData(dg.AssetMaterialization(MODEL)),
                job_name="",
            ),
            run_id="",
            timestamp=materialised_at,
        )
        seen = []

        def status():
            info = deployment.graphql(FRESHNESS, {"key": key})["assetNodes"][0]["freshnessStatusInfo"]
            if not seen or seen[-1] != info["freshnessStatus"]:
                seen.append(info["freshnessStatus"])
            return info if info["freshnessStatus"] == "DEGRADED" else None

        info = wait_for(status, FAIL_SECONDS, what="DEGRADED freshness in the UI")
        failed_after = time.time() - materialised_at
        # The UI's asset health: HEALTHY (PASS) -> WARNING (WARN) -> DEGRADED (FAIL).
        assert [s for s in seen if s in ("HEALTHY", "WARNING", "DEGRADED")] == ["HEALTHY", "WARNING", "DEGRADED"]
        assert abs(info["freshnessStatusMetadata"]["lastMaterializedTimestamp"] - materialised_at) < 1
        assert FAIL_SECONDS <= failed_after < FAIL_SECONDS + 10
        # The events the daemon wrote, and the state the instance keeps.
        changes = freshness_changes(instance)
        assert changes[-3:] == [("UNKNOWN", "PASS"), ("PASS", "WARN"), ("WARN", "FAIL")], changes
        assert instance.get_freshness_state_records([MODEL])[MODEL].freshness_state.value == "FAIL"

        # The alert sensor, run by the same daemon, POSTs the warning and the failure, once each.
        def freshness_alerts():
            return [a for a in deployment.hook.alerts if a.get("kind") == "freshness"]

        wait_for(lambda: any(a["state"] == "FAIL" for a in freshness_alerts()), 30, what="freshness FAIL alert")
        [warn, fail] = freshness_alerts()
        assert (warn["state"], warn["severity"], fail["state"], fail["severity"]) == ("WARN", "WARN", "FAIL", "ERROR")
        assert fail["asset"] == "lgbm_model" and fail["fail_window_hours"] == round(FAIL_SECONDS / 3600, 4)
        assert FAIL_SECONDS - 2 <= fail["hours_since_materialization"] * 3600 < FAIL_SECONDS + 10

        # A restarted daemon continues from the saved cursor: what happened while it was down is
        # sent (not skipped as history), what was sent before is not sent again. The cursor is saved
        # when a tick ends: stopped between a POST and that, the daemon would send it once more
        # (delivery is at least once), so the stop waits for the cursor to pass the FAIL event.
        events = instance.event_log_storage.get_logs_for_all_runs_by_log_id(
            dagster_event_type=dg.DagsterEventType.FRESHNESS_STATE_CHANGE
        )
        fail_id = max(id_ for id_, entry in events.items() if entry.dagster_event.event_specific_data.key == MODEL)
        wait_for(
            lambda: int(deployment.sensor_state(ALERT_SENSOR).get("lastCursor") or 0) >= fail_id,
            30,
            what="the alert sensor's cursor past the FAIL event",
        )
        deployment.daemon.stop()  # the daemon alone: the webserver and code server stay up
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=MODEL, check_name="reported_while_down", passed=False,
                severity=dg.AssetCheckSeverity.ERROR, description="reported while the daemon was down",
            )
        )  # fmt: skip
        deployment.daemon.start()

        def check_alerts():
            return [a for a in deployment.hook.alerts if a.get("check") == "reported_while_down"]

        wait_for(check_alerts, 60, what="the alert of the check reported while the daemon was down")
        time.sleep(ALERT_INTERVAL * 2)
        assert len(check_alerts()) == 1 and len(freshness_alerts()) == 2
    finally:
        instance.dispose()


def test_notifier_secrets_show_as_env_var_names_in_the_ui(deployment):
    selector = {**deployment.selector(), "resourceName": "notifier"}
    details = deployment.graphql(NOTIFIER, {"selector": selector})["topLevelResourceDetailsOrError"]
    values = {v["key"]: (v["type"], v["value"]) for v in details["configuredValues"]}
    assert values["webhook_url"] == ("ENV_VAR", "CENSUS_ALERT_WEBHOOK_URL")
    assert "127.0.0.1" not in str(details)
