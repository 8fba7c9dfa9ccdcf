"""A Dagster deployment for tests: code servers, dagster-webserver and, unless told otherwise,
dagster-daemon, on a fresh DAGSTER_HOME holding the dagster.yaml under test.

The webserver and the daemon load each code location from its code server (a workspace.yaml with
`grpc_server` entries), as separate containers would; runs are launched through the code server
(DefaultRunLauncher), so they are children of its process group and stop with it. Usage:

    with dagster_deployment(tmp_path, REPO_DAGSTER_YAML, env) as deployment:
        run_id = deployment.launch_assets(["raw_census", "clean_census"])
        deployment.wait_for_run(run_id)

Without a daemon (`daemon=False`) the instance must start runs without a queue:
WEBSERVER_ONLY_YAML (DefaultRunCoordinator), as the UI tests use.

The instance file under test is written to DAGSTER_HOME as it is, except for the run queue's
dequeue interval (instance_settings_for_tests).
"""

import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import yaml

from census_assets_tests.harness.graphql import LOCATION, DagsterGraphQL, GraphQLError
from census_assets_tests.harness.processes import (
    REPO_ROOT,
    ManagedProcess,
    console_command,
    free_port,
    inherited_environment,
    kill_all,
    stop_all,
    wait_until_ready,
)

REPO_DAGSTER_YAML = REPO_ROOT / "dagster.yaml"  # runs queue for the daemon (pools, docs/operations.md)
WEBSERVER_ONLY_YAML = REPO_ROOT / "deploy" / "webserver-only" / "dagster.yaml"  # runs start at once
CENSUS_LOCATIONS = {LOCATION: ("-m", "census_assets")}
# How often the run queue of an instance a test starts looks for runs to start. A queued run waits
# for the queue's next look; what each look decides (pools, limits, the order) does not depend on
# how often it looks, so the tests need not wait the instance file's own interval each time.
TEST_DEQUEUE_INTERVAL_S = 1
# Run config for a job on Dagster's default executor (a stand-in location's asset job) that runs its
# steps in the run's own process, as the census jobs do (CENSUS_EXECUTOR): one process per run, not
# one more per step.
IN_PROCESS_RUN_CONFIG = {"execution": {"config": {"in_process": {}}}}


def instance_settings_for_tests(instance_yaml: Path | str) -> str:
    """The text of the instance file `instance_yaml` for an instance a test starts: the same
    settings, with the run queue's dequeue interval, when it has one, at TEST_DEQUEUE_INTERVAL_S."""
    settings = yaml.safe_load(Path(instance_yaml).read_text())
    queue = (settings.get("run_coordinator") or {}).get("config") or {}
    if "dequeue_interval_seconds" in queue:
        queue["dequeue_interval_seconds"] = TEST_DEQUEUE_INTERVAL_S
    return yaml.safe_dump(settings, sort_keys=False)


class DagsterDeployment(DagsterGraphQL):
    """Code servers, dagster-webserver and dagster-daemon on one DAGSTER_HOME, with a GraphQL client.

    `locations`: code location name -> the `dagster code-server start` target arguments, e.g.
    {"census_assets": ("-m", "census_assets"), "mine": ("-f", "path/to/defs.py")}; one code server
    each. The first is the default location of the launch helpers.
    """

    def __init__(
        self,
        base: Path,
        instance_yaml: Path | str,
        env: Mapping[str, str] | None = None,
        locations: Mapping[str, Sequence[str]] | None = None,
        daemon: bool = True,
        name: str = "dagster",
    ):
        self.base = Path(base)
        self.home = self.base / "dagster_home"
        self.workdir = self.base / "work"  # cwd of the servers and their runs: nothing lands in the repo
        self.logs = self.base / "logs"
        for folder in (self.home, self.workdir, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        (self.home / "dagster.yaml").write_text(instance_settings_for_tests(instance_yaml))
        self.locations = dict(locations or CENSUS_LOCATIONS)
        self.name = name
        self.env = {
            **inherited_environment(),
            **(env or {}),
            "DAGSTER_HOME": str(self.home),
        }
        port = free_port()
        super().__init__(f"http://127.0.0.1:{port}", next(iter(self.locations)), details=self.log_tails)

        dagster = console_command("dagster", "dagster")
        self.grpc_ports: dict[str, int] = {}
        self.code_servers: list[ManagedProcess] = []
        workspace_lines = ["load_from:"]
        for location, target in self.locations.items():
            grpc_port = self.grpc_ports[location] = free_port()
            workspace_lines += [
                "  - grpc_server:",
                "      host: 127.0.0.1",
                f"      port: {grpc_port}",
                f"      location_name: {location}",
            ]
            command = [*dagster, "code-server", "start", "-h", "127.0.0.1", "-p", str(grpc_port),
                       "--location-name", location, *target]  # fmt: skip
            self.code_servers.append(self.managed_process(f"code-server-{location}", command))
        self.workspace = self.base / "workspace.yaml"
        self.workspace.write_text("\n".join(workspace_lines) + "\n")
        self.webserver = self.managed_process(
            "webserver",
            [*console_command("dagster-webserver", "dagster_webserver"), "-w", str(self.workspace),
             "-h", "127.0.0.1", "-p", str(port)],
        )  # fmt: skip
        daemon_command = [*console_command("dagster-daemon", "dagster._daemon"), "run", "-w", str(self.workspace)]
        self.daemon = self.managed_process("daemon", daemon_command) if daemon else None

    def managed_process(self, role: str, command: list[str]) -> ManagedProcess:
        return ManagedProcess(f"{self.name}-{role}", command, self.logs / f"{role}.log", env=self.env, cwd=self.workdir)

    @property
    def servers(self) -> list[ManagedProcess]:
        """The webserver and, if any, the daemon: what restart_servers() restarts."""
        return [self.webserver, *([self.daemon] if self.daemon else [])]

    @property
    def processes(self) -> list[ManagedProcess]:
        return [*self.code_servers, *self.servers]

    # Life cycle

    def start(self) -> "DagsterDeployment":
        for code_server in self.code_servers:
            code_server.start()
        self.wait_for_code_servers()
        self.start_servers()
        return self

    def wait_for_code_servers(self) -> None:
        """Until every code server answers with its loaded code: a webserver or daemon that found
        one unreachable would keep its location as a load error."""
        from dagster._grpc.client import DagsterGrpcClient

        for code_server, port in zip(self.code_servers, self.grpc_ports.values()):
            client = DagsterGrpcClient(port=port, host="127.0.0.1")
            # DagsterUserCodeUnreachableError while it starts and loads
            code_server.wait_until(partial(code_server_answers, client), "code loaded", not_yet=(Exception,))

    def start_servers(self) -> None:
        """The webserver and the daemon (the code servers keep running across a restart)."""
        for server in self.servers:
            server.start()
        self.wait_until_ready()

    def stop_servers(self) -> None:
        stop_all(self.servers)

    def restart_servers(self) -> None:
        self.stop_servers()
        self.start_servers()

    def stop(self) -> None:
        """Every process killed at once: the deployment and its instance are thrown away with the
        test (restart_servers is the graceful stop a test can watch)."""
        kill_all(self.processes)

    def wait_until_ready(self) -> None:
        """Every location LOADED (a load error fails here) and, with a daemon, its run queue
        heartbeating."""

        def ready() -> bool:
            statuses = self.location_statuses()
            loaded = all(statuses.get(location) == "LOADED" for location in self.locations)
            return loaded and (self.daemon is None or self.daemon_health().get("QUEUED_RUN_COORDINATOR", False))

        wait_until_ready(self.processes, ready, f"{self.name}: locations loaded and daemon ready",
                         not_yet=(OSError, GraphQLError, KeyError))  # fmt: skip
        self.raise_load_errors()

    def dagster_cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """`dagster ...` against this instance (e.g. `instance concurrency set census_training 1`)."""
        result = subprocess.run(
            [*console_command("dagster", "dagster"), *args],
            env=self.env, cwd=self.workdir, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(
                f"dagster {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def log_tails(self, characters: int = 3000) -> str:
        return "\n".join(f"--- {process.name} ---\n{process.log_tail(characters)}" for process in self.processes)


def code_server_answers(client) -> bool:
    client.list_repositories()
    return True


@contextmanager
def dagster_deployment(
    base: Path,
    instance_yaml: Path | str,
    env: Mapping[str, str] | None = None,
    locations: Mapping[str, Sequence[str]] | None = None,
    pool_limits: Mapping[str, int] | None = None,
    daemon: bool = True,
    name: str = "dagster",
) -> Iterator[DagsterDeployment]:
    """Starts the deployment (default location: census_assets), yields it, stops every process at
    exit, also when the body fails. `pool_limits` are set with `dagster instance concurrency set`
    before the servers start, as an operator sets them once per instance (docs/operations.md)."""
    deployment = DagsterDeployment(base, instance_yaml, env, locations, daemon, name)
    try:
        for pool, limit in (pool_limits or {}).items():
            deployment.dagster_cli("instance", "concurrency", "set", pool, str(limit))
        deployment.start()
        yield deployment
    finally:
        deployment.stop()
