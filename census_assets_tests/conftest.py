"""Shared fixtures (temporary storage, a fresh DAGSTER_HOME, the bundled tables) and the fast tier.

`python -m pytest -q -m "not slow"` is the fast tier. Which tests are `slow` is decided here, in one
place: a test is slow when it uses a fixture of SLOW_FIXTURES (directly or through another
fixture), carries a marker of PROCESS_MARKERS, or is marked `@pytest.mark.slow` itself (a test
that starts a process no fixture names: the whole graph or a CLI in a subprocess).
"""

import pandas as pd
import pytest

from census_assets.core.cleaning import clean
from census_assets.sources.common import BUNDLED_TRAIN, bundled_file

pytest_plugins = ["census_assets_tests.harness.plugin"]

# Fixtures that make a test slow, used directly or through another fixture: the module that
# defines each (below census_assets_tests), then its names. A fixture of the same name elsewhere
# is not concerned.
SLOW_FIXTURES = {
    # They start a process: a server, a browser, a daemon, an emulator, a database.
    "harness.plugin": {
        "dagster_ui", "fresh_dagster_ui",  # code server + webserver
        "start_dagster",  # code servers + webserver + daemon
        "browser", "ui",  # headless Chromium
        "postgres_server",
        "gcs_emulator", "bq_emulator", "fault_proxy",  # fake-gcs-server, bqemulator
    },
    "scenarios.test_integrity": {"servers"},  # fork servers running the whole graph in child processes
    "scenarios.test_ops_instance": {"dg_results"},  # the `dg` CLI, loading the code location in subprocesses
    # They train the whole graph in this process, seconds per run, for a module's tests to share.
    "scenarios.test_lifecycle": {"lineage", "drift_runs"},  # five models, one on the whole bundled table
    "assets.test_census": {"good_run"},  # the whole bundled table, 15-fold CV
    "scenarios.test_gcp": {"local_run"},  # the same: the baseline of the GCS run
    "cli.test_contract": {"built"},
    "assets.test_batches": {"trained"},  # two models
    "scenarios.test_loop": {"model_a"},  # the champion every loop scenario starts from
    "core.test_training": {"eight_x"},  # CV on eight times the bundled table
}  # fmt: skip
# Markers whose every test starts processes: a browser with its webserver; a Dask cluster of
# worker processes. (`gcp` and `ops` tests start processes only through the fixtures above.)
PROCESS_MARKERS = {"browser", "dask"}


def uses_a_slow_fixture(item: pytest.Item) -> bool:
    for name in item.fixturenames:
        definitions = item._fixtureinfo.name2fixturedefs.get(name)  # the closest definition is last
        if definitions:
            module = definitions[-1].func.__module__.removeprefix("census_assets_tests.")
            if name in SLOW_FIXTURES.get(module, ()):
                return True
    return False


def pytest_collection_modifyitems(config, items):
    for item in items:
        if uses_a_slow_fixture(item) or any(item.get_closest_marker(marker) for marker in PROCESS_MARKERS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def bundled_raw() -> pd.DataFrame:
    return pd.read_parquet(bundled_file(BUNDLED_TRAIN))


@pytest.fixture(scope="session")
def bundled_clean(bundled_raw) -> pd.DataFrame:
    return clean(bundled_raw)


@pytest.fixture
def storage_dir(tmp_path):
    return tmp_path / "storage"


@pytest.fixture
def dagster_home(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home
