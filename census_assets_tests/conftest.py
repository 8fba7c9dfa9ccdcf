"""Shared fixtures (temporary storage, a fresh DAGSTER_HOME, the bundled tables) and the fast tier.

`python -m pytest -q -m "not slow"` is the fast tier. Which tests are `slow` is decided here, in one
place: a test is slow when it uses a fixture of PROCESS_FIXTURES (directly or through another
fixture), carries a marker of PROCESS_MARKERS, or is marked `@pytest.mark.slow` itself (a test
that runs the whole graph in a subprocess, where no fixture says so).
"""

import pandas as pd
import pytest

from census_assets.core.cleaning import clean
from census_assets.sources.common import BUNDLED_TRAIN, bundled_file

pytest_plugins = ["census_assets_tests.harness.plugin"]

# The fixtures that start a process: a server, a browser, a daemon, an emulator, a database.
PROCESS_FIXTURES = {
    "dagster_ui",  # harness/plugin.py: code server + webserver
    "fresh_dagster_ui",
    "start_dagster",  # code servers + webserver + daemon
    "browser",  # headless Chromium
    "ui",
    "postgres_server",
    "gcs_emulator",  # fake-gcs-server
    "bq_emulator",  # bqemulator
    "fault_proxy",  # in front of fake-gcs-server
    "servers",  # test_integrity.py: the fork servers that run the whole graph in child processes
}
# Markers whose every test starts processes: a browser with its webserver; a Dask cluster of
# worker processes. (`gcp` and `ops` tests start processes only through the fixtures above.)
PROCESS_MARKERS = {"browser", "dask"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if PROCESS_FIXTURES.intersection(item.fixturenames) or any(
            item.get_closest_marker(marker) for marker in PROCESS_MARKERS
        ):
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
