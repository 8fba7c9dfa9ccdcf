"""Fixtures for the UI tests: dagster-webserver on a fresh instance, and a headless Chromium.

Loaded by conftest.py through `pytest_plugins`. The webserver is the real `dagster-webserver -m
census_assets`, alone: no dagster-daemon drains a run queue, so its instance is
deploy/webserver-only/dagster.yaml (DefaultRunCoordinator: runs start at once; DefaultRunLauncher:
each run is a Python process with the in_process executor, as a user's `dagster dev` runs it). The
repo's dagster.yaml queues runs for the daemon (pools, docs/operations.md); with it these runs
would stay QUEUED. Chromium is Debian's (/usr/bin/chromium) driven by the Python `playwright`
package; `playwright install` is never needed.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

# Loaded with this plugin: the production-shaped fixtures (PostgreSQL, code server + webserver +
# daemon) for the ops tests and any later test that needs them.
pytest_plugins = ["census_assets_tests.daemon_support", "census_assets_tests.postgres_support"]

REPO_ROOT = Path(__file__).resolve().parents[1]
# A webserver without a daemon: the instance file whose runs start without a queue.
DAGSTER_YAML = REPO_ROOT / "deploy" / "webserver-only" / "dagster.yaml"
LOCATION = "census_assets"
ARTIFACTS = Path(os.environ.get("CENSUS_UI_ARTIFACTS", REPO_ROOT / "test-artifacts" / "ui"))
CHROMIUM = os.environ.get("CENSUS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 2400, "height": 1200}  # the census chain, source included, renders as full asset nodes
EXPECT_TIMEOUT_MS = 30_000  # Playwright's 5 s default is flaky on 2 busy cores
RUN_TIMEOUT_S = 300  # a whole census run, from launch to a final status
STARTUP_TIMEOUT_S = 180
STOP_TIMEOUT_S = 20
FINAL_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
_used_this_session = []  # set once a UI fixture runs, so the summary names the artifacts only then


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def inherited_environment() -> dict:
    """This process's environment without CENSUS_* settings: the test deployment runs on the
    defaults whatever the developer's shell or an earlier test has set."""
    return {name: value for name, value in os.environ.items() if not name.startswith("CENSUS_")}


def post_graphql(url: str, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
    """The `data` of a GraphQL answer; GraphQLError when it carries errors."""
    request = urllib.request.Request(
        url,
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = json.load(response)
    if body.get("errors"):
        raise GraphQLError(json.dumps(body["errors"])[:2000])
    return body["data"]


def raise_load_errors(graphql) -> None:
    """LOADED also covers a location that failed to import: surface its error."""
    for entry in graphql(WORKSPACE)["workspaceOrError"]["locationEntries"]:
        location = entry["locationOrLoadError"]
        if location and location["__typename"] == "PythonError":
            raise RuntimeError(f"{entry['name']} failed to load: {location['message']}")


class GraphQLError(RuntimeError):
    pass


class Webserver:
    """`dagster-webserver -m census_assets` in its own process group, with a GraphQL client."""

    def __init__(self, home: Path, workdir: Path, env: dict, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        home.mkdir(parents=True, exist_ok=True)
        workdir.mkdir(parents=True, exist_ok=True)
        shutil.copy(DAGSTER_YAML, home / "dagster.yaml")
        webserver = Path(sys.executable).with_name("dagster-webserver")
        command = [str(webserver)] if webserver.exists() else [sys.executable, "-m", "dagster_webserver"]
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [*command, "-m", LOCATION, "-h", "127.0.0.1", "-p", str(self.port)],
                env={**inherited_environment(), **env, "DAGSTER_HOME": str(home)},
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: the code server and runs stop with it
            )

    def log_tail(self, characters: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:]

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
        return post_graphql(f"{self.url}/graphql", query, variables, timeout)

    def wait_until_loaded(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Until GraphQL `locationStatusesOrError` says LOADED; then a load error fails here."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dagster-webserver exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                entries = self.graphql(LOCATION_STATUSES, timeout=5)["locationStatusesOrError"]["entries"]
            except (urllib.error.URLError, OSError, KeyError):
                entries = []  # not listening yet
            if any(e["name"] == LOCATION and e["loadStatus"] == "LOADED" for e in entries):
                break
            time.sleep(0.5)
        else:
            raise TimeoutError(f"{LOCATION} not LOADED after {timeout:.0f} s:\n{self.log_tail()}")
        raise_load_errors(self.graphql)

    def stop(self) -> None:
        """SIGTERM to the whole process group; SIGKILL if it is still there after a timeout."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    # The GraphQL-only client: what the UI does, without the browser.

    def launch_job(self, job: str, run_config: dict | None = None) -> str:
        params = {
            "selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "jobName": job},
            "runConfigData": run_config or {},
            "mode": "default",
        }
        result = self.graphql(LAUNCH_RUN, {"params": params})["launchPipelineExecution"]
        if result["__typename"] != "LaunchRunSuccess":
            raise GraphQLError(f"launch of {job} failed: {json.dumps(result)[:2000]}")
        return result["run"]["runId"]

    def run(self, run_id: str) -> dict:
        return self.graphql(RUN, {"runId": run_id})["runOrError"]

    def wait_for_run(self, run_id: str, timeout: float = RUN_TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if run["status"] in FINAL_STATUSES:
                return run
            time.sleep(1)
        raise TimeoutError(f"run {run_id} still {run['status']} after {timeout:.0f} s:\n{self.log_tail()}")

    def check_executions(self, asset: str, check: str) -> list[dict]:
        return self.graphql(CHECK_EXECUTIONS, {"assetKey": {"path": [asset]}, "checkName": check})[
            "assetCheckExecutions"
        ]


LOCATION_STATUSES = """{ locationStatusesOrError { __typename
  ... on WorkspaceLocationStatusEntries { entries { name loadStatus } } } }"""
WORKSPACE = """{ workspaceOrError { ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
LAUNCH_RUN = """mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message }
    ... on Error { message }
  } }"""
RUN = """query Run($runId: ID!) { runOrError(runId: $runId) { __typename
  ... on Run { runId status jobName assetMaterializations { assetKey { path } } }
  ... on Error { message } } }"""
CHECK_EXECUTIONS = """query Checks($assetKey: AssetKeyInput!, $checkName: String!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: 20) {
    runId status
    evaluation { success description metadataEntries { label __typename
      ... on FloatMetadataEntry { floatValue } ... on IntMetadataEntry { intValue } } } } }"""


def float_metadata(entries: list[dict]) -> dict[str, float]:
    return {e["label"]: e["floatValue"] for e in entries if e["__typename"] == "FloatMetadataEntry"}


@dataclass
class Deployment:
    """A running webserver and the storage its runs write to."""

    server: Webserver
    storage: Path


@contextlib.contextmanager
def deployment(base: Path):
    """A dagster-webserver (no daemon) on a fresh DAGSTER_HOME holding
    deploy/webserver-only/dagster.yaml, and fresh storage under `base`."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _used_this_session.append("dagster_ui")
    storage = base / "storage"
    server = Webserver(
        home=base / "dagster_home",
        workdir=base / "work",  # cwd of the server and its runs: nothing lands in the repo
        env={"CENSUS_STORAGE_URL": str(storage)},
        log_path=ARTIFACTS / f"dagster-webserver-{base.name}.log",
    )
    try:
        server.wait_until_loaded()
        yield Deployment(server, storage)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dagster_ui(tmp_path_factory):
    """One webserver for the session. Runs launched from it, by GraphQL or the browser, write to
    `storage`; tests assert on the runs they launch (by run id), never on state another test left."""
    with deployment(tmp_path_factory.mktemp("dagster_ui")) as ui_deployment:
        yield ui_deployment


@pytest.fixture
def fresh_dagster_ui(tmp_path_factory):
    """A webserver of its own, on an instance where nothing has run yet."""
    with deployment(tmp_path_factory.mktemp("fresh_dagster_ui")) as ui_deployment:
        yield ui_deployment


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Debian's Chromium, headless, with a throwaway profile; one for the session."""
    from playwright.sync_api import expect, sync_playwright  # here: other tests never load it

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no browser at {CHROMIUM}: `apt-get install -y chromium` (scripts/setup.sh does)")
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
        )
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


@dataclass
class UIPage:
    """A browser tab and the folder its numbered step screenshots go to."""

    page: object  # playwright.sync_api.Page
    folder: Path
    count: int = 0

    def shot(self, step: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def ui(browser, request):
    """A fresh tab; screenshots go to ARTIFACTS/<test>/, plus FAILED.png when the test fails."""
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    _used_this_session.append("ui")
    tab = UIPage(browser.new_page(), folder)
    try:
        yield tab
    finally:
        report = getattr(request.node, "census_call_report", None)
        if report is None or report.failed:
            tab.page.screenshot(path=str(folder / "FAILED.png"), full_page=True)
        tab.page.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Keep the call phase's report on the item so fixtures can tell a failed test at teardown.
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.census_call_report = report


def pytest_terminal_summary(terminalreporter):
    if _used_this_session:
        terminalreporter.write_line(f"UI test screenshots and webserver log: {ARTIFACTS}")
