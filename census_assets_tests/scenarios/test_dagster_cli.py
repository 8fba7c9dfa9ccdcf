"""`dagster asset materialize` as a user runs it: a subprocess on a temporary DAGSTER_HOME."""

import hashlib
import os
import subprocess
import sys

import pytest

from census_assets.assets.specs import TRAINING_SELECTION

pytestmark = pytest.mark.slow  # the whole graph in `dagster` subprocesses


def materialize(storage, home, **env):
    environment = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CENSUS_STORAGE_URL": str(storage),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "census_assets", "--select"]
        + [TRAINING_SELECTION],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_materializes_then_a_failed_gate_keeps_the_model(tmp_path):
    home, storage = tmp_path / "home", tmp_path / "storage"
    home.mkdir()
    passed = materialize(storage, home)
    assert passed.returncode == 0, passed.stderr[-3000:]
    model = storage / "lgbm_model.txt"
    before = digest(model)

    failed = materialize(storage, home, CENSUS_ACCURACY_THRESHOLD="0.99")
    assert failed.returncode != 0
    log = failed.stdout + failed.stderr
    assert "accuracy gate failed: CV accuracy 0.83" in log and "below the threshold 0.9900" in log
    assert "Dependencies for step lgbm_model failed" in log
    assert digest(model) == before
