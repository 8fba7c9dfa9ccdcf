"""What every source reader shares: the error, the schemes and the bundled files (a leaf module)."""

from importlib import resources
from pathlib import Path

BUNDLED_SOURCE = "bundled"
BUNDLED_TRAIN = "census_train.parquet"
BUNDLED_HOLDOUT = "census_holdout.parquet"
BUNDLED_VOCABULARY = "vocabulary.json"
BIGQUERY_SCHEME = "bq://"


class SourceError(ValueError):
    """The source cannot be read; the message names it."""


def bundled_file(name: str) -> Path:
    return Path(str(resources.files("census_assets") / "data" / name))
