"""The fixtures that start processes, and the report hooks that go with them. Loaded by conftest.py
(`pytest_plugins`); every fixture here that starts a process is in conftest's SLOW_FIXTURES, so a
test using one is `slow` (token_endpoint is a thread of this process).

- dagster_ui / fresh_dagster_ui: a code server and dagster-webserver, no daemon, on an instance
  whose runs start at once (deploy/webserver-only/dagster.yaml; each run a Python process with
  the in_process executor, as a user's `dagster dev` runs it). The repo's dagster.yaml queues runs
  for a daemon: with it these runs would stay QUEUED.
- browser / ui: headless Chromium, one tab per test.
- start_dagster: starts a deployment with a daemon, `with start_dagster(base, yaml, env) as d:`.
- postgres_server: one PostgreSQL server for the session; tests take their own database.
- gcs_emulator, bq_emulator, fault_proxy, token_endpoint: Google Cloud on loopback, for one module.
"""

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from census_assets_tests.harness.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, EXPECT_TIMEOUT_MS, VIEWPORT, UIPage
from census_assets_tests.harness.dagster import WEBSERVER_ONLY_YAML, DagsterDeployment, dagster_deployment
from census_assets_tests.harness.emulators import (
    BQ_PROJECT,
    OFFLINE_AUTH_ENV,
    BigQueryEmulator,
    FaultProxy,
    GcsEmulator,
    TokenEndpoint,
)
from census_assets_tests.harness.postgres import PostgresServer
from census_assets_tests.harness.processes import forget_stopped_logs, log_tail, logs_to_report

_ui_used = []  # set once a UI fixture runs, so the summary names the artifacts only then


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.census_call_report = report  # the ui fixture's teardown takes FAILED.png on failure
    if report.failed:
        for name, path in logs_to_report().items():
            report.sections.append((f"log: {name} ({path})", log_tail(path)))
    if report.when == "teardown":
        forget_stopped_logs()


def pytest_terminal_summary(terminalreporter):
    if _ui_used:
        terminalreporter.write_line(f"UI test screenshots and webserver logs: {ARTIFACTS}")


# Dagster


@dataclass
class UIDeployment:
    """A running webserver and the storage its runs write to."""

    server: DagsterDeployment
    storage: Path


def ui_deployment(base: Path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _ui_used.append(base.name)
    storage = base / "storage"
    env = {"CENSUS_STORAGE_URL": str(storage)}
    try:
        with dagster_deployment(base, WEBSERVER_ONLY_YAML, env, daemon=False, name=base.name) as server:
            yield UIDeployment(server, storage)
    finally:  # the servers' logs beside the screenshots
        for log in (base / "logs").glob("*.log"):
            shutil.copy(log, ARTIFACTS / f"{base.name}-{log.name}")


@pytest.fixture(scope="session")
def dagster_ui(tmp_path_factory):
    """One webserver for the session. Runs launched from it, by GraphQL or the browser, write to
    `storage`; tests assert on the runs they launch (by run id), never on state another test left."""
    yield from ui_deployment(tmp_path_factory.mktemp("dagster_ui"))


@pytest.fixture
def fresh_dagster_ui(tmp_path_factory):
    """A webserver of its own, on an instance where nothing has run yet."""
    yield from ui_deployment(tmp_path_factory.mktemp("fresh_dagster_ui"))


@pytest.fixture(scope="session")
def start_dagster():
    """harness.dagster.dagster_deployment: code servers, webserver and daemon, as a context manager."""
    return dagster_deployment


# The browser


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


@pytest.fixture
def ui(browser, request):
    """A fresh tab; screenshots go to ARTIFACTS/<test>/, plus FAILED.png when the test fails."""
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    _ui_used.append(folder.name)
    tab = UIPage(browser.new_page(), folder)
    try:
        yield tab
    finally:
        report = getattr(request.node, "census_call_report", None)
        if report is None or report.failed:
            tab.page.screenshot(path=str(folder / "FAILED.png"), full_page=True)
        tab.page.close()


# PostgreSQL


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the session; tests take their own database with create_database()."""
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.remove()


# Google Cloud emulators: module-scoped, every environment change undone when the module ends, so
# tests elsewhere never see an emulator.


@pytest.fixture(scope="module")
def gcs_emulator():
    """fake-gcs-server on loopback; STORAGE_EMULATOR_HOST points at it while the module runs."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in OFFLINE_AUTH_ENV.items():
            patch.setenv(key, value)
        emulator = GcsEmulator().start()
        try:
            yield emulator
        finally:
            emulator.stop()


@pytest.fixture(scope="module")
def bq_emulator(tmp_path_factory):
    """bqemulator on loopback, and the client-side adaptations it needs, for this module only:
    BIGQUERY_EMULATOR_HOST (with its scheme), anonymous credentials in place of
    google.auth.default, no multipart uploads (the emulator rejects them). Yields its URL."""
    import google.auth
    import google.cloud.bigquery.client
    from google.auth.credentials import AnonymousCredentials

    emulator = BigQueryEmulator(tmp_path_factory.mktemp("bqemulator")).start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in OFFLINE_AUTH_ENV.items():
                patch.setenv(key, value)
            patch.setenv("BIGQUERY_EMULATOR_HOST", emulator.url)
            patch.setattr(google.auth, "default", lambda *a, **k: (AnonymousCredentials(), BQ_PROJECT))
            patch.setattr(google.cloud.bigquery.client, "_MAX_MULTIPART_SIZE", 0)
            yield emulator.url
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
def fault_proxy(gcs_emulator):
    with FaultProxy(gcs_emulator.url) as proxy:
        yield proxy


@pytest.fixture
def token_endpoint():
    endpoint = TokenEndpoint()
    yield endpoint
    endpoint.close()
