"""A production-shaped Dagster deployment for tests: code server, dagster-webserver, dagster-daemon.

Real processes on one instance (a DAGSTER_HOME holding the dagster.yaml under test), each in its
own process group with its log in a file; the webserver and the daemon load each code location from
its code server (a workspace.yaml with `grpc_server` entries), as separate containers would.
Runs are launched by the daemon's run queue (QueuedRunCoordinator) through the code server
(DefaultRunLauncher), so they are children of the code server's process group.

Reusable by any test (alerts, freshness, batch scoring, ...):

    with dagster_daemon_instance(tmp_path, REPO_ROOT / "dagster.yaml", env) as deployment:
        deployment.graphql_url                    # http://127.0.0.1:PORT/graphql
        run_id = deployment.launch_assets(["raw_census", "clean_census"])
        deployment.wait_for_run(run_id)

Stopping sends SIGTERM to each process group, then SIGKILL after a timeout. When a test fails, the
tails of the logs of every deployment (and PostgreSQL server) still running are added to its
report (`register_log`).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from census_assets_tests.ui_support import (
    FINAL_STATUSES,
    LOCATION,
    REPO_ROOT,
    GraphQLError,
    free_port,
    inherited_environment,
    post_graphql,
    raise_load_errors,
)

STARTUP_TIMEOUT_S = 240  # the code server imports census_assets; on 2 busy cores this can be slow
STOP_TIMEOUT_S = 20
RUN_TIMEOUT_S = 300
LOG_TAIL_CHARACTERS = 6000
CENSUS_LOCATION = ("-m", "census_assets")

# Logs of servers: name -> path. A failing test's report gets their tails. A stopped server's log
# stays until the end of the test that stopped it (a deployment inside a test stops before the
# report is made).
_LOGS: dict[str, Path] = {}
_STOPPED: set[str] = set()


def register_log(name: str, path: Path) -> None:
    _LOGS[name] = Path(path)
    _STOPPED.discard(name)


def unregister_log(name: str) -> None:
    _STOPPED.add(name)


def log_tail(path: Path, characters: int = LOG_TAIL_CHARACTERS) -> str:
    try:
        return Path(path).read_text(errors="replace")[-characters:]
    except OSError:
        return "(no log)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _LOGS:
        for name, path in list(_LOGS.items()):
            report.sections.append((f"log: {name} ({path})", log_tail(path)))
    if report.when == "teardown":
        for name in _STOPPED:
            _LOGS.pop(name, None)
        _STOPPED.clear()


def _executable(name: str, module: str) -> list[str]:
    path = Path(sys.executable).with_name(name)
    return [str(path)] if path.exists() else [sys.executable, "-m", module]


class Service:
    """One server process in its own process group, its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict, cwd: Path, log_path: Path):
        self.name = name
        self.command = command
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} start: {' '.join(self.command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: its children stop with it
            )
        register_log(self.name, self.log_path)

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise RuntimeError(f"{self.name} exited with {code}:\n{log_tail(self.log_path)}")

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL if anything of it is left after a timeout."""
        stop_services([self])

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass


def stop_services(services: Sequence[Service], timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM to every service's process group at once; after `timeout` (or as soon as each leader
    has exited), SIGKILL to each group, so no child (a run, a spawned code server) outlives it."""
    started = [service for service in services if service.process is not None]
    for service in started:
        if service.process.poll() is None:
            service._signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for service in started:
        try:
            service.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for service in started:
        service._signal(signal.SIGKILL)  # the leader may be gone while children linger
        service.process.wait()
        unregister_log(service.name)


class DagsterDeployment:
    """Code servers, dagster-webserver and dagster-daemon on one DAGSTER_HOME, with a GraphQL client.

    `locations`: code location name -> the `dagster code-server start` target arguments, e.g.
    {"census_assets": ("-m", "census_assets"), "mine": ("-f", "path/to/defs.py")}; one code server
    each. The first is the default location of the launch helpers.
    """

    def __init__(
        self,
        base: Path,
        instance_yaml: Path | str,
        env: dict | None = None,
        locations: Mapping[str, Sequence[str]] | None = None,
        name: str = "dagster",
    ):
        self.base = Path(base)
        self.home = self.base / "dagster_home"
        self.workdir = self.base / "work"  # cwd of the servers and their runs: nothing lands in the repo
        self.logs = self.base / "logs"
        for folder in (self.home, self.workdir, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(instance_yaml), self.home / "dagster.yaml")
        self.locations = dict(locations or {LOCATION: CENSUS_LOCATION})
        self.location_name = next(iter(self.locations))
        self.name = name
        self.env = {
            **inherited_environment(),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
            **(env or {}),
            "DAGSTER_HOME": str(self.home),
        }
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.graphql_url = f"{self.url}/graphql"
        dagster = _executable("dagster", "dagster")
        self.grpc_ports: dict[str, int] = {}
        self.code_servers: list[Service] = []
        workspace_lines = ["load_from:"]
        for location, target in self.locations.items():
            port = self.grpc_ports[location] = free_port()
            workspace_lines += [
                "  - grpc_server:",
                "      host: 127.0.0.1",
                f"      port: {port}",
                f"      location_name: {location}",
            ]
            self.code_servers.append(
                Service(
                    f"{name}-code-server-{location}",
                    [
                        *dagster,
                        "code-server",
                        "start",
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "--location-name",
                        location,
                        *target,
                    ],
                    self.env,
                    self.workdir,
                    self.logs / f"code-server-{location}.log",
                )  # fmt: skip
            )
        workspace = self.base / "workspace.yaml"
        workspace.write_text("\n".join(workspace_lines) + "\n")
        self.webserver = Service(
            f"{name}-webserver",
            [*_executable("dagster-webserver", "dagster_webserver"), "-w", str(workspace),
             "-h", "127.0.0.1", "-p", str(self.port)],
            self.env, self.workdir, self.logs / "webserver.log",
        )  # fmt: skip
        self.daemon = Service(
            f"{name}-daemon",
            [*_executable("dagster-daemon", "dagster._daemon"), "run", "-w", str(workspace)],
            self.env, self.workdir, self.logs / "daemon.log",
        )  # fmt: skip

    @property
    def services(self) -> list[Service]:
        return [*self.code_servers, self.webserver, self.daemon]

    # Life cycle

    def start(self) -> "DagsterDeployment":
        for code_server in self.code_servers:
            code_server.start()
        self.wait_for_code_servers()
        self.start_servers()
        return self

    def wait_for_code_servers(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Until every code server answers with its loaded code: a webserver or daemon that found
        one unreachable would keep its location as a load error."""
        from dagster._grpc.client import DagsterGrpcClient

        deadline = time.monotonic() + timeout
        for code_server, port in zip(self.code_servers, self.grpc_ports.values()):
            client = DagsterGrpcClient(port=port, host="127.0.0.1")
            while True:
                code_server.check_alive()
                try:
                    client.list_repositories()
                    break
                except Exception:  # DagsterUserCodeUnreachableError while it starts and loads
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"{code_server.name} not up after {timeout:.0f} s:\n{log_tail(code_server.log_path)}"
                        ) from None
                    time.sleep(0.5)

    def start_servers(self) -> None:
        """The webserver and the daemon (the code server keeps running across a restart)."""
        self.webserver.start()
        self.daemon.start()
        self.wait_until_ready()

    def stop_servers(self) -> None:
        stop_services([self.daemon, self.webserver])

    def restart_servers(self) -> None:
        self.stop_servers()
        self.start_servers()

    def stop(self) -> None:
        stop_services(self.services)

    def dagster_cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """`dagster ...` against this instance (e.g. `instance concurrency set census_training 1`)."""
        result = subprocess.run(
            [*_executable("dagster", "dagster"), *args],
            env=self.env, cwd=self.workdir, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(
                f"dagster {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def wait_until_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Every location LOADED (a load error fails here) and the daemon's run queue heartbeating."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for service in self.services:
                service.check_alive()
            try:
                data = self.graphql(READY, timeout=5)
            except (urllib.error.URLError, OSError, GraphQLError):
                time.sleep(0.5)  # not listening yet
                continue
            entries = data["locationStatusesOrError"].get("entries", [])
            loaded = {e["name"] for e in entries if e["loadStatus"] == "LOADED"} >= set(self.locations)
            daemons = data["instance"]["daemonHealth"]["allDaemonStatuses"]
            queue_healthy = any(d["daemonType"] == "QUEUED_RUN_COORDINATOR" and d["healthy"] for d in daemons)
            if loaded and queue_healthy:
                break
            time.sleep(0.5)
        else:
            raise TimeoutError(f"{self.name}: location or daemon not ready after {timeout:.0f} s:\n{self.log_tails()}")
        raise_load_errors(self.graphql)

    def log_tails(self, characters: int = 3000) -> str:
        return "\n".join(
            f"--- {service.name} ---\n{log_tail(service.log_path, characters)}" for service in self.services
        )

    # GraphQL

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
        return post_graphql(self.graphql_url, query, variables, timeout)

    def launch_assets(
        self, asset_keys: Sequence[str], tags: dict | None = None, run_config: dict | None = None,
        location: str | None = None,
    ) -> str:  # fmt: skip
        """What the UI's "Materialize" does: the implicit asset job with an asset selection, no job tag."""
        selector = {
            "repositoryLocationName": location or self.location_name,
            "repositoryName": "__repository__",
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": [key]} for key in asset_keys],
        }
        return self.launch(selector, tags, run_config)

    def launch_job(
        self, job: str, tags: dict | None = None, run_config: dict | None = None, location: str | None = None
    ) -> str:
        selector = {
            "repositoryLocationName": location or self.location_name,
            "repositoryName": "__repository__",
            "jobName": job,
        }
        return self.launch(selector, tags, run_config)

    def launch(self, selector: dict, tags: dict | None, run_config: dict | None) -> str:
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

    def wait_for_runs(self, run_ids: Sequence[str], timeout: float = RUN_TIMEOUT_S) -> dict[str, dict]:
        """Until every run has a final status; returns run id -> run (status, start/end times, ...)."""
        deadline = time.monotonic() + timeout
        runs: dict[str, dict] = {}
        while time.monotonic() < deadline:
            runs = {run_id: self.run(run_id) for run_id in run_ids}
            if all(run["status"] in FINAL_STATUSES for run in runs.values()):
                return runs
            time.sleep(1)
        statuses = {run_id: run.get("status") for run_id, run in runs.items()}
        raise TimeoutError(f"runs not finished after {timeout:.0f} s: {statuses}\n{self.log_tails()}")

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


READY = """{ locationStatusesOrError { __typename
    ... on WorkspaceLocationStatusEntries { entries { name loadStatus } } }
  instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"""
LAUNCH_RUN = """mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message }
    ... on Error { message }
  } }"""
RUN = """query Run($runId: ID!) { runOrError(runId: $runId) { __typename
  ... on Run { runId status jobName creationTime startTime endTime
    tags { key value } assetSelection { path } assetMaterializations { assetKey { path } } }
  ... on Error { message } } }"""
RUN_EVENTS = """query Events($runId: ID!, $cursor: String) { logsForRun(runId: $runId, afterCursor: $cursor) {
  ... on EventConnection { cursor hasMore events { __typename ... on MessageEvent { timestamp } } }
  ... on PythonError { message } } }"""


@contextmanager
def dagster_daemon_instance(
    base: Path,
    instance_yaml: Path | str,
    env: dict | None = None,
    locations: Mapping[str, Sequence[str]] | None = None,
    pool_limits: dict[str, int] | None = None,
    name: str = "dagster",
) -> Iterator[DagsterDeployment]:
    """Starts code server(s) + webserver + daemon on a fresh DAGSTER_HOME holding `instance_yaml`
    (default location: census_assets); yields the deployment (`.graphql_url`, `.graphql()`,
    `.launch_assets()`, ...); stops them all at exit, also when the body fails. `pool_limits` are
    set with `dagster instance concurrency set` before the servers start, as an operator sets them
    once per instance (docs/operations.md)."""
    deployment = DagsterDeployment(base, instance_yaml, env, locations, name)
    try:
        for pool, limit in (pool_limits or {}).items():
            deployment.dagster_cli("instance", "concurrency", "set", pool, str(limit))
        deployment.start()
        yield deployment
    finally:
        deployment.stop()
