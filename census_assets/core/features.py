"""Feature encoding with a fixed category vocabulary, so every batch gets the same columns."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from census_assets.core.labels import LABEL_COLUMN, is_target

CATEGORICAL_COLUMNS = (
    "workclass",
    "education",
    "occupation",
    "race",
    "sex",
    "income_bracket",
    "native_country",
)
NUMERIC_COLUMNS = ("capital_gain", "capital_loss", "hours_per_week")
AGE_BINS = (16, 29, 39, 49, 59, 100)
TARGET = "never_married"
# The reference drops this dummy: it is the complement of income_bracket_>50K.
REDUNDANT_DUMMY = "income_bracket_<=50K"
VOCABULARY_ATTR = "vocabulary"


@dataclass(frozen=True)
class Vocabulary:
    """Known categories per categorical column, sorted as pd.get_dummies orders its columns."""

    categories: dict[str, tuple[str, ...]]

    @classmethod
    def fit(cls, clean_df: pd.DataFrame) -> "Vocabulary":
        return cls({name: tuple(sorted(clean_df[name].unique())) for name in CATEGORICAL_COLUMNS})

    @property
    def dummy_columns(self) -> list[tuple[str, str, str]]:
        """(column, category, dummy name) for every dummy kept, in feature order."""
        return [
            (name, category, f"{name}_{category}")
            for name in CATEGORICAL_COLUMNS
            for category in self.categories[name]
            if f"{name}_{category}" != REDUNDANT_DUMMY
        ]

    @property
    def feature_names(self) -> list[str]:
        return [*NUMERIC_COLUMNS, *(dummy for _, _, dummy in self.dummy_columns), "age_bins"]

    def to_dict(self) -> dict[str, list[str]]:
        return {name: list(values) for name, values in self.categories.items()}

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> "Vocabulary":
        missing = [name for name in CATEGORICAL_COLUMNS if name not in data]
        if missing:
            raise ValueError(f"vocabulary lacks categorical column(s): {', '.join(missing)}")
        return cls({name: tuple(data[name]) for name in CATEGORICAL_COLUMNS})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> "Vocabulary":
        return cls.from_dict(json.loads(path.read_text()))


@dataclass
class EncodedBatch:
    """Encoded features (numeric, uint8 dummies, age_bins, target) and the unseen categories."""

    frame: pd.DataFrame
    unseen: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def unseen_rows(self) -> int:
        return sum(sum(counts.values()) for counts in self.unseen.values())


def age_bins(age: pd.Series) -> pd.Series:
    """age cut at AGE_BINS (right-closed) labelled 1..5; NaN outside (16, 100], as the reference."""
    codes = pd.cut(age, bins=list(AGE_BINS), labels=False)
    return (codes + 1).astype(np.float32)


def encode(clean_df: pd.DataFrame, vocabulary: Vocabulary) -> EncodedBatch:
    """One-hot encode on the fixed vocabulary: an unseen category sets no dummy and is counted."""
    columns: dict[str, pd.Series | np.ndarray] = {
        name: clean_df[name].to_numpy() for name in NUMERIC_COLUMNS
    }
    unseen: dict[str, dict[str, int]] = {}
    codes = {}
    for name in CATEGORICAL_COLUMNS:
        codes[name] = pd.Categorical(clean_df[name], categories=vocabulary.categories[name]).codes
        unknown = clean_df[name][codes[name] == -1]
        if len(unknown):
            unseen[name] = {str(k): int(v) for k, v in unknown.value_counts().items()}
    for name, category, dummy in vocabulary.dummy_columns:
        index = vocabulary.categories[name].index(category)
        columns[dummy] = (codes[name] == index).astype(np.uint8)
    columns["age_bins"] = age_bins(clean_df["age"]).to_numpy()
    columns[TARGET] = is_target(clean_df[LABEL_COLUMN])
    frame = pd.DataFrame(columns, index=clean_df.index)
    frame.attrs[VOCABULARY_ATTR] = vocabulary.to_dict()
    return EncodedBatch(frame, unseen)


def split_target(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """X as a float32 matrix (LightGBM's native input, half of float64) and y."""
    return (
        features.drop(columns=[TARGET]).to_numpy(dtype=np.float32),
        features[TARGET].to_numpy(),
    )
