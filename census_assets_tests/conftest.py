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

# Fixtures that make a test slow, used directly or through another fixture.
SLOW_FIXTURES = {
    # They start a process: a server, a browser, a daemon, an emulator, a database.
    "dagster_ui",  # harness/plugin.py: code server + webserver
    "fresh_dagster_ui",
    "start_dagster",  # code servers + webserver + daemon
    "browser",  # headless Chromium
    "ui",
    "postgres_server",
    "gcs_emulator",  # fake-gcs-server
    "bq_emulator",  # bqemulator
    "fault_proxy",  # in front of fake-gcs-server
    "servers",  # test_integrity.py: fork servers running the whole graph in child processes
    "dg_home",  # test_ops_instance.py: the `dg` CLI, loading the code location in a subprocess
    # They train the whole graph in this process, seconds per run, for a module's tests to share.
    "lineage",  # test_lifecycle.py: three models, one on the whole bundled table
    "drift_runs",  # test_lifecycle.py: two more runs after them
    "good_run",  # test_assets.py: the whole bundled table, 15-fold CV
    "local_run",  # test_gcp.py: the same, the baseline of the GCS run
    "built",  # test_cli_contract.py
    "trained",  # test_batches.py: two models
    "eight_x",  # test_core_training.py: CV on eight times the bundled table
    "model_a",  # test_loop.py: the champion every loop scenario starts from
}
# Markers whose every test starts processes: a browser with its webserver; a Dask cluster of
# worker processes. (`gcp` and `ops` tests start processes only through the fixtures above.)
PROCESS_MARKERS = {"browser", "dask"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES.intersection(item.fixturenames) or any(
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
