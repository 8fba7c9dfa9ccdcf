"""A registry version kept with its raw rows and build record: rebuilt to the same version, told
apart after a recorded parameter changes, noted when a library version differs, and forgotten."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from census_assets.assets.evaluation import HOLDOUT_NAME, TRAINING_METRICS
from census_assets.assets.reproduction import evaluation_rows_of, reproduce_version
from census_assets.core.promotion import model_version
from census_assets.core.rebuild import record_build
from census_assets.storage.builds import BUILD_RECORD, TRAINING_SNAPSHOT, NotReproducibleError, build_files, forget
from census_assets.storage.errors import RegistryError
from census_assets.storage.manifests import json_bytes, sha256
from census_assets.storage.objects import LocalObjectStore
from census_assets.storage.registry import MANIFEST, Registry
from census_assets_tests.tiny_models import pipeline_model, tiny_model

pytestmark = pytest.mark.audit


@pytest.fixture(scope="module")
def trained(bundled_raw):
    raw = bundled_raw.head(2_000)
    model = pipeline_model(raw)
    return raw, model, record_build(model, raw, "bundled")


@pytest.fixture
def registry(tmp_path, trained) -> tuple[Registry, str]:
    raw, model, record = trained
    registry = Registry(LocalObjectStore(tmp_path / "storage"))
    version = model_version(model)
    evidence = {"evaluation_rows": {"kind": "holdout", "rows": 16_276, "batches": []}}
    registry.publish(version, model, {TRAINING_METRICS: {"evidence": evidence}, **build_files(raw, record)})
    return registry, version


def rewrite_record(registry: Registry, version: str, change) -> None:
    """A build record written with other values (its manifest entry updated with it)."""
    record = registry.read_json(version, BUILD_RECORD)
    change(record)
    data = json_bytes(record)
    registry.store.write(f"models/{version}/{BUILD_RECORD}", data)
    manifest = json.loads(registry.store.read(f"models/{version}/{MANIFEST}"))
    manifest["files"][BUILD_RECORD] = sha256(data)
    registry.store.write(f"models/{version}/{MANIFEST}", json_bytes(manifest))


def test_the_kept_rows_rebuild_the_same_version(registry, trained):
    registry, version = registry
    rows, name = evaluation_rows_of(registry, version)
    assert name == HOLDOUT_NAME and len(rows) == 16_281  # the bundled adult.test, before cleaning
    kept = pd.read_parquet(Path(registry.store.root) / "models" / version / TRAINING_SNAPSHOT)
    assert kept.equals(trained[0].reset_index(drop=True))
    report = reproduce_version(registry, version)
    assert report.same and report.rebuilt_version == version and report.library_changes == []
    assert report.rows_compared == 16_276 and report.rows_from == HOLDOUT_NAME


def test_a_changed_recorded_parameter_rebuilds_another_model(registry):
    registry, version = registry
    rewrite_record(registry, version, lambda record: record["parameters"].update(learning_rate=0.2))
    report = reproduce_version(registry, version)
    assert not report.same and report.differing_trees > 0 and report.max_prediction_difference > 0


def test_a_different_library_version_is_a_note(registry):
    registry, version = registry
    rewrite_record(registry, version, lambda record: record["libraries"].update(numpy="1.0.0"))
    report = reproduce_version(registry, version)
    assert report.same and report.library_changes == [f"numpy 1.0.0 at build, {np.__version__} now"]
    assert report.lines()[1] == f"note: numpy 1.0.0 at build, {np.__version__} now"


def test_forget_removes_the_rows_and_reproduce_says_so(registry):
    registry, version = registry
    assert forget(registry, version) is True
    assert not registry.store.exists(f"models/{version}/{TRAINING_SNAPSHOT}")
    assert forget(registry, version) is False
    assert registry.load(version) is not None  # the model stays
    with pytest.raises(NotReproducibleError, match=f"^version {version}'s training rows were removed"):
        reproduce_version(registry, version)


def test_a_version_without_a_build_record_is_not_reproducible(registry):
    registry, _ = registry
    older = tiny_model(seed=8)
    registry.publish(model_version(older), older, {})
    with pytest.raises(NotReproducibleError, match="made before reproducible builds"):
        reproduce_version(registry, model_version(older))
    with pytest.raises(NotReproducibleError, match="made before reproducible builds"):
        forget(registry, model_version(older))
    assert issubclass(NotReproducibleError, RegistryError)  # the CLI's exit 2
