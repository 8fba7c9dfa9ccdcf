"""Build the bundled census tables from the UCI Adult files.

Usage: python scripts/build_bundled_data.py [UCI_DIR]   (default: ../shared/data/census)

Writes census_assets/data/census_train.parquet (adult.data, 32,561 rows) and
census_assets/data/census_holdout.parquet (adult.test, 16,281 rows) in the schema of BigQuery's
`bigquery-public-data.ml_datasets.census_adult_income`: integers as int64, strings exactly as the
source has them (leading space, `?` for unknown). adult.test's labels end with a `.` (" >50K.");
it is stripped so both tables share one vocabulary. Also writes census_assets/data/vocabulary.json,
the fixed category vocabulary fitted on the cleaned training table.
"""

import sys
from pathlib import Path

import pandas as pd

from census_assets.core.cleaning import clean
from census_assets.core.features import Vocabulary
from census_assets.core.schema import SOURCE_COLUMNS, validate_source

DATA_DIR = Path(__file__).resolve().parents[1] / "census_assets" / "data"


def read_uci(path: Path, skiprows: int) -> pd.DataFrame:
    df = pd.read_csv(path, header=None, names=list(SOURCE_COLUMNS), skiprows=skiprows)
    df["income_bracket"] = df["income_bracket"].str.rstrip(".")
    return validate_source(df)


def main(uci_dir: Path) -> None:
    train = read_uci(uci_dir / "adult.data", skiprows=0)
    holdout = read_uci(uci_dir / "adult.test", skiprows=1)  # first line: "|1x3 Cross validator"
    train.to_parquet(DATA_DIR / "census_train.parquet", compression="zstd", index=False)
    holdout.to_parquet(DATA_DIR / "census_holdout.parquet", compression="zstd", index=False)
    Vocabulary.fit(clean(train)).save(DATA_DIR / "vocabulary.json")
    print(f"train: {len(train)} rows, holdout: {len(holdout)} rows -> {DATA_DIR}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/data/census")
