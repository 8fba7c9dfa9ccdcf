"""Shared fixtures: temporary storage, a fresh DAGSTER_HOME, the bundled tables."""

import pandas as pd
import pytest

from census_assets.core.cleaning import clean
from census_assets.sources.common import BUNDLED_TRAIN, bundled_file

pytest_plugins = [
    "census_assets_tests.ui_support",  # webserver and browser fixtures
    "census_assets_tests.gcp_emulators",  # Google Cloud emulators on loopback
]


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
