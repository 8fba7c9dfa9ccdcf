"""Rebuilding a model from its build record: the same rows and parameters give the same version;
a changed parameter gives another, with the trees and probabilities that differ; changed library
versions are named."""

import numpy as np
import pandas as pd
import pytest

from census_assets.core.cleaning import clean
from census_assets.core.features import Vocabulary, encode
from census_assets.core.model_card import code_versions
from census_assets.core.promotion import model_version
from census_assets.core.rebuild import (
    FIT_VOCABULARY,
    BuildRecord,
    compare_rebuild,
    library_changes,
    rebuild,
    record_build,
)
from census_assets.core.training import TrainedModel, compact_split
from census_assets.sources.common import BUNDLED_VOCABULARY, bundled_file
from census_assets_tests.tiny_models import pipeline_model

pytestmark = pytest.mark.audit


@pytest.fixture(scope="module")
def raw(bundled_raw) -> pd.DataFrame:
    return bundled_raw.head(3_000)


@pytest.fixture(scope="module")
def built(raw) -> tuple[TrainedModel, BuildRecord]:
    model = pipeline_model(raw)
    return model, record_build(model, raw, "bundled")


def test_the_same_rows_and_record_rebuild_the_same_version(raw, built, bundled_raw):
    model, record = built
    assert record.vocabulary == FIT_VOCABULARY and record.training_rows == len(raw)
    assert record.parameters["num_threads"] == 1 and record.parameters["deterministic"] is False
    assert record.libraries == code_versions()
    assert BuildRecord.from_dict(record.to_dict()) == record
    rebuilt = rebuild(raw, record)
    assert model_version(rebuilt) == model_version(model)
    report = compare_rebuild(model, rebuilt, bundled_raw.tail(400), "400 rows", record.libraries)
    assert report.same and report.differing_trees == 0 and report.max_prediction_difference == 0
    assert report.lines() == [f"rebuilt {model_version(model)}: the same model (same trees and vocabulary)"]


def test_a_changed_parameter_rebuilds_another_model(raw, built, bundled_raw):
    model, record = built
    changed = BuildRecord({**record.parameters, "num_leaves": 7}, record.vocabulary, record.training_rows,
                          record.libraries)
    rebuilt = rebuild(raw, changed)
    report = compare_rebuild(model, rebuilt, bundled_raw.tail(400), "400 rows", record.libraries)
    assert not report.same and report.trees == model.booster.num_trees() == 100
    # Independently: tree blocks of the two model texts, and the probabilities on the same rows.
    def trees(m):
        return m.booster.model_to_string().split("end of trees")[0].split("\nTree=")[1:]
    assert report.differing_trees == sum(a != b for a, b in zip(trees(model), trees(rebuilt))) > 0
    X, _ = compact_split(encode(clean(bundled_raw.tail(400)), model.vocabulary).frame)
    rows = X.rows(np.arange(X.shape[0]))
    expected = np.max(np.abs(model.predict_proba(rows) - rebuilt.predict_proba(rows)))
    assert report.max_prediction_difference == pytest.approx(expected) and expected > 0
    assert report.lines()[0].startswith(f"rebuilt {model_version(rebuilt)}, not {model_version(model)}: ")
    assert report.lines()[1] == "no build library changed version"


def test_library_changes_are_named():
    current = code_versions()
    recorded = {**current, "lightgbm": "4.3.0", "pandas": None, "dagster": "0.0"}
    # dagster is not a build library: it cannot change the trees.
    assert library_changes(recorded, current) == [
        f"lightgbm 4.3.0 at build, {current['lightgbm']} now",
        f"pandas unknown at build, {current['pandas']} now",
    ]


def test_the_cleaned_rows_a_caller_has_give_the_same_record(raw, built):
    model, record = built
    assert record_build(model, raw, "bundled", cleaned=clean(raw)) == record
    bundled = Vocabulary.load(bundled_file(BUNDLED_VOCABULARY))
    fixed = pipeline_model(raw, bundled)
    assert record_build(fixed, raw, "bundled", cleaned=clean(raw)).vocabulary == "bundled"


def test_a_fixed_vocabulary_is_recorded_and_needed(raw):
    bundled = Vocabulary.load(bundled_file(BUNDLED_VOCABULARY))
    model = pipeline_model(raw, bundled)
    record = record_build(model, raw, "bundled")
    assert record.vocabulary == "bundled"
    with pytest.raises(ValueError, match="used the 'bundled' vocabulary"):
        rebuild(raw, record)
    assert model_version(rebuild(raw, record, bundled)) == model_version(model)
