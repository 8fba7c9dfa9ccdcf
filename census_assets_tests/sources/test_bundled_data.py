"""The bundled tables: row counts, schema, a content hash, and equality with the UCI files."""

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from census_assets.core.features import Vocabulary
from census_assets.core.schema import SOURCE_COLUMNS
from census_assets.sources.common import BUNDLED_HOLDOUT, BUNDLED_TRAIN, BUNDLED_VOCABULARY, bundled_file

UCI_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "census"
# Rows, the first row's workclass (raw, with the UCI files' leading space) and the sha256 of the
# table as CSV: the hash changes if any value, column or row order changes.
EXPECTED = {
    BUNDLED_TRAIN: (32561, " State-gov", "d5266418ee924ad89d747c41dc19583d4e318aab61aba6ce7f93942f05a647f1"),
    BUNDLED_HOLDOUT: (16281, " Private", "0728ff3d9a53b22c347d1b66e8154779b692ae1c4bfba1a27b903ced73919d1c"),
}


def content_hash(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bundled_table_rows_schema_and_hash(name):
    frame = pd.read_parquet(bundled_file(name))
    rows, first_workclass, digest = EXPECTED[name]
    assert len(frame) == rows
    assert list(frame.columns) == list(SOURCE_COLUMNS)
    assert frame["age"].dtype == "int64" and frame["capital_gain"].dtype == "int64"
    assert frame["workclass"].iloc[0] == first_workclass
    assert set(frame["income_bracket"]) == {" <=50K", " >50K"}
    assert content_hash(frame) == digest


@pytest.mark.skipif(not UCI_DIR.exists(), reason="the UCI files are beside the repo in CI")
def test_bundled_train_equals_uci_file():
    uci = pd.read_csv(UCI_DIR / "adult.data", header=None, names=list(SOURCE_COLUMNS))
    pd.testing.assert_frame_equal(pd.read_parquet(bundled_file(BUNDLED_TRAIN)), uci)


def test_bundled_vocabulary_matches_training_data(bundled_clean):
    shipped = Vocabulary.load(bundled_file(BUNDLED_VOCABULARY))
    assert shipped == Vocabulary.fit(bundled_clean)
    assert "Unknown" in shipped.categories["occupation"]
