"""One GraphQL client for the Dagster webservers the tests start, with the queries the suite shares:
what the UI does (launch, poll a run, read a check), without the browser."""

import json
import urllib.request
from collections.abc import Callable, Sequence

from census_assets_tests.harness.waiting import wait_for

LOCATION = "census_assets"
REPOSITORY = "__repository__"
RUN_TIMEOUT_S = 300  # a whole census run, from launch to a final status
FINAL_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}


class GraphQLError(RuntimeError):
    pass


class DagsterGraphQL:
    """GraphQL of the webserver at `url` (http://127.0.0.1:PORT). `location` is the default code
    location of the launch helpers; `details` adds what a timeout should show (server logs)."""

    def __init__(self, url: str, location: str = LOCATION, details: Callable[[], str] | None = None):
        self.url = url
        self.graphql_url = f"{url}/graphql"
        self.location_name = location
        self.details = details

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
        """The `data` of the answer; GraphQLError when it carries errors."""
        request = urllib.request.Request(
            self.graphql_url,
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.load(response)
        if body.get("errors"):
            raise GraphQLError(json.dumps(body["errors"])[:2000])
        return body["data"]

    # The workspace and the daemon

    def location_statuses(self) -> dict[str, str]:
        """Code location name -> load status (LOADING, LOADED)."""
        entries = self.graphql(LOCATION_STATUSES, timeout=5)["locationStatusesOrError"].get("entries", [])
        return {entry["name"]: entry["loadStatus"] for entry in entries}

    def raise_load_errors(self) -> None:
        """LOADED also covers a location that failed to import: surface its error."""
        for entry in self.graphql(WORKSPACE)["workspaceOrError"]["locationEntries"]:
            location = entry["locationOrLoadError"]
            if location and location["__typename"] == "PythonError":
                raise RuntimeError(f"{entry['name']} failed to load: {location['message']}")

    def daemon_health(self) -> dict[str, bool]:
        """Daemon type (QUEUED_RUN_COORDINATOR, SENSOR, FRESHNESS_DAEMON, ...) -> healthy."""
        statuses = self.graphql(DAEMON_HEALTH, timeout=5)["instance"]["daemonHealth"]["allDaemonStatuses"]
        return {status["daemonType"]: status["healthy"] for status in statuses}

    # Runs

    def launch_assets(
        self, asset_keys: Sequence[str], tags: dict | None = None, run_config: dict | None = None,
        location: str | None = None,
    ) -> str:  # fmt: skip
        """What the UI's "Materialize" does: the implicit asset job with an asset selection, no job tag."""
        selector = {
            **self.selector(location),
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": [key]} for key in asset_keys],
        }
        return self.launch(selector, tags, run_config)

    def launch_job(
        self, job: str, tags: dict | None = None, run_config: dict | None = None, location: str | None = None
    ) -> str:
        return self.launch({**self.selector(location), "jobName": job}, tags, run_config)

    def launch(self, selector: dict, tags: dict | None = None, run_config: dict | None = None) -> str:
        params = {
            "selector": selector,
            "runConfigData": run_config or {},
            "mode": "default",
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
        }
        result = self.graphql(LAUNCH_RUN, {"params": params})["launchPipelineExecution"]
        if result["__typename"] != "LaunchRunSuccess":
            raise GraphQLError(f"launch failed: {json.dumps(result)[:2000]}")
        return result["run"]["runId"]

    def run(self, run_id: str) -> dict:
        return self.graphql(RUN, {"runId": run_id})["runOrError"]

    def run_statuses(self, run_ids: Sequence[str]) -> dict[str, str]:
        """Run id -> status, in one request: what a wait polls (the webserver shares the cores with
        the runs it waits for)."""
        runs = self.graphql(RUN_STATUSES, {"runIds": list(run_ids)})["runsOrError"]["results"]
        return {run["runId"]: run["status"] for run in runs}

    def wait_for_runs(self, run_ids: Sequence[str], timeout: float = RUN_TIMEOUT_S) -> dict[str, dict]:
        """Until every run has a final status; returns run id -> run (status, start/end times, ...)."""
        statuses: dict[str, str] = {}

        def finished() -> bool:
            statuses.update(self.run_statuses(run_ids))
            return len(statuses) == len(run_ids) and set(statuses.values()) <= FINAL_STATUSES

        def listed() -> str:
            return f"{statuses}\n{self.details() if self.details else ''}"

        wait_for(finished, timeout, what="every run finished", details=listed)
        return {run_id: self.run(run_id) for run_id in run_ids}

    def wait_for_run(self, run_id: str, timeout: float = RUN_TIMEOUT_S) -> dict:
        return self.wait_for_runs([run_id], timeout)[run_id]

    def event_times(self, run_id: str) -> dict[str, float]:
        """GraphQL event type -> time in seconds (the first of each): RunEnqueuedEvent,
        RunStartingEvent (the daemon's run queue let the run go and launches it), RunStartEvent
        (its process runs), RunSuccessEvent, ..."""
        times: dict[str, float] = {}
        cursor = None
        while True:
            page = self.graphql(RUN_EVENTS, {"runId": run_id, "cursor": cursor})["logsForRun"]
            for event in page["events"]:
                times.setdefault(event["__typename"], int(event["timestamp"]) / 1000)
            if not page["hasMore"]:
                return times
            cursor = page["cursor"]

    # Checks and sensors

    def check_executions(self, asset: str, check: str) -> list[dict]:
        """The latest executions of a check: runId, status, evaluation (success, description, metadata)."""
        variables = {"assetKey": {"path": [asset]}, "checkName": check}
        return self.graphql(CHECK_EXECUTIONS, variables)["assetCheckExecutions"]

    def start_sensor(self, sensor: str, location: str | None = None) -> dict:
        selector = {**self.selector(location), "sensorName": sensor}
        started = self.graphql(START_SENSOR, {"selector": selector})["startSensor"]
        if started["__typename"] != "Sensor":
            raise GraphQLError(f"start of {sensor} failed: {json.dumps(started)[:2000]}")
        return started

    def sensor_state(self, sensor: str, location: str | None = None) -> dict:
        """The sensor's saved state: lastCursor and lastTickTimestamp ({} before its first tick)."""
        selector = {**self.selector(location), "sensorName": sensor}
        found = self.graphql(SENSOR_STATE, {"selector": selector})["sensorOrError"]
        return found["sensorState"]["typeSpecificData"] or {}

    def pool_limits(self) -> dict[str, int]:
        """The pool limits the instance holds, as the UI's Concurrency page shows them."""
        limits = self.graphql(POOL_LIMITS)["instance"]["concurrencyLimits"]
        return {limit["concurrencyKey"]: limit["slotCount"] for limit in limits}

    def selector(self, location: str | None = None) -> dict:
        return {"repositoryLocationName": location or self.location_name, "repositoryName": REPOSITORY}


def float_metadata(entries: list[dict]) -> dict[str, float]:
    """Label -> value of the float entries of a GraphQL metadataEntries list."""
    return {e["label"]: e["floatValue"] for e in entries if e["__typename"] == "FloatMetadataEntry"}


def most_at_once(runs: list[dict]) -> int:
    """The largest number of these runs holding their pool slots at the same moment: from the run
    queue letting a run go (its RunStartingEvent, written by the daemon as it launches the run) to
    its end. Those are the queue's own decisions, whatever the speed of the run processes."""
    edges = sorted([(run["dequeued"], 1) for run in runs] + [(run["endTime"], -1) for run in runs])
    most = current = 0
    for _, step in edges:  # an end sorts before a start at the same time: back to back is no overlap
        current += step
        most = max(most, current)
    return most


POOL_LIMITS = """{ instance { concurrencyLimits { concurrencyKey slotCount } } }"""
LOCATION_STATUSES = """{ locationStatusesOrError { __typename
  ... on WorkspaceLocationStatusEntries { entries { name loadStatus } } } }"""
WORKSPACE = """{ workspaceOrError { ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
DAEMON_HEALTH = """{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"""
LAUNCH_RUN = """mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message }
    ... on Error { message }
  } }"""
RUN_STATUSES = """query Statuses($runIds: [String!]) { runsOrError(filter: {runIds: $runIds}) {
  __typename ... on Runs { results { runId status } } } }"""
RUN = """query Run($runId: ID!) { runOrError(runId: $runId) { __typename
  ... on Run { runId status jobName creationTime startTime endTime
    tags { key value } assetSelection { path } assetMaterializations { assetKey { path } } }
  ... on Error { message } } }"""
RUN_EVENTS = """query Events($runId: ID!, $cursor: String) { logsForRun(runId: $runId, afterCursor: $cursor) {
  ... on EventConnection { cursor hasMore events { __typename ... on MessageEvent { timestamp } } }
  ... on PythonError { message } } }"""
CHECK_EXECUTIONS = """query Checks($assetKey: AssetKeyInput!, $checkName: String!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: 20) {
    runId status
    evaluation { success description metadataEntries { label __typename
      ... on FloatMetadataEntry { floatValue } ... on IntMetadataEntry { intValue } } } } }"""
START_SENSOR = """mutation Start($selector: SensorSelector!) { startSensor(sensorSelector: $selector) {
  __typename ... on Sensor { sensorState { status } } ... on PythonError { message } } }"""
SENSOR_STATE = """query Sensor($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) { __typename
    ... on Sensor { sensorState { typeSpecificData { ... on SensorData { lastCursor lastTickTimestamp } } } } } }"""
