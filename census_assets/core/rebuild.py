"""Rebuilding a model from what its registry version recorded, and saying how the rebuild differs
(no Dagster, no storage).

A LightGBM model text carries its complete training configuration (`parameters:`: every
parameter with its resolved value, the thread count and the determinism settings included), and
training on the same rows with the same parameters gives the same trees. So the record of a build
is the model's own parameters, where its vocabulary came from, and the library versions of the
environment that built it; the rows are the raw snapshot kept beside it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from census_assets.core.cleaning import clean
from census_assets.core.features import Vocabulary, encode
from census_assets.core.lightgbm_runtime import lightgbm
from census_assets.core.model_card import code_versions
from census_assets.core.promotion import model_version
from census_assets.core.schema import validate_source
from census_assets.core.training import TrainedModel, compact_split, take_rows

if TYPE_CHECKING:
    import lightgbm as lgb

FIT_VOCABULARY = "fit"  # fitted on the training rows; otherwise the name of a fixed vocabulary
# Library versions that can change what a build produces (the rest of code_versions is context).
BUILD_LIBRARIES = ("lightgbm", "numpy", "pandas", "scikit-learn", "census_assets")
_TREE = re.compile(r"^Tree=\d+\n(?:.+\n)*?\n", re.MULTILINE)


@dataclass(frozen=True)
class BuildRecord:
    """What rebuilding a version needs besides its raw rows."""

    parameters: dict[str, Any]  # the model's own training configuration (Booster.params of the saved model)
    vocabulary: str  # FIT_VOCABULARY or the fixed vocabulary's name
    training_rows: int
    libraries: dict[str, str | None]  # code_versions() of the building environment

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildRecord:
        return cls(dict(data["parameters"]), str(data["vocabulary"]), int(data["training_rows"]),
                   dict(data["libraries"]))


def record_build(
    model: TrainedModel, raw: pd.DataFrame, fixed_vocabulary: str, cleaned: pd.DataFrame | None = None
) -> BuildRecord:
    """The record of a model fitted here from these raw rows: its parameters as the saved model
    reports them, and FIT_VOCABULARY when its vocabulary is the one the rows give, else
    `fixed_vocabulary` (the name of the vocabulary the pipeline was configured with). `cleaned`:
    the rows as clean_census holds them, when the caller has them (cleaning again would hold a
    second copy of the table)."""
    saved = lightgbm().Booster(model_str=model.booster.model_to_string())
    cleaned = clean(validate_source(raw)) if cleaned is None else cleaned
    fitted = Vocabulary.fit(cleaned) == model.vocabulary
    return BuildRecord(dict(saved.params), FIT_VOCABULARY if fitted else fixed_vocabulary, len(raw), code_versions())


def rebuild(raw: pd.DataFrame, record: BuildRecord, fixed_vocabulary: Vocabulary | None = None) -> TrainedModel:
    """The model the pipeline fits from these raw rows with the recorded parameters: cleaned,
    encoded (on the training rows' vocabulary, or `fixed_vocabulary` when the record names one),
    then trained with exactly the recorded configuration."""
    if record.vocabulary != FIT_VOCABULARY and fixed_vocabulary is None:
        raise ValueError(f"the build used the {record.vocabulary!r} vocabulary: pass it as fixed_vocabulary")
    cleaned = clean(validate_source(raw))
    vocabulary = Vocabulary.fit(cleaned) if record.vocabulary == FIT_VOCABULARY else fixed_vocabulary
    X, y = compact_split(encode(cleaned, vocabulary).frame)
    params = dict(record.parameters)
    lgb = lightgbm()
    dataset = lgb.Dataset(
        take_rows(X, np.arange(X.shape[0])), label=y.astype(np.float32), feature_name=vocabulary.feature_names,
        params=params,
    )
    return TrainedModel(lgb.train(params, dataset, num_boost_round=int(params["num_iterations"])), vocabulary)


def library_changes(recorded: Mapping[str, str | None], current: Mapping[str, str | None]) -> list[str]:
    """One line per build library whose version differs between the record and this environment."""
    return [
        f"{name} {recorded.get(name) or 'unknown'} at build, {current.get(name) or 'not installed'} now"
        for name in BUILD_LIBRARIES
        if recorded.get(name) != current.get(name)
    ]


def _trees(booster: lgb.Booster) -> list[str]:
    return _TREE.findall(booster.model_to_string())


@dataclass(frozen=True)
class RebuildReport:
    recorded_version: str
    rebuilt_version: str
    library_changes: list[str]
    differing_trees: int  # trees of either model that differ (tree i against tree i), more trees counted whole
    trees: int  # the recorded model's
    max_prediction_difference: float  # largest |probability difference| on the rows compared on
    rows_compared: int
    rows_from: str  # what those rows are

    @property
    def same(self) -> bool:
        return self.recorded_version == self.rebuilt_version

    def lines(self) -> list[str]:
        """What `census-assets reproduce` prints."""
        if self.same:
            verdict = [f"rebuilt {self.rebuilt_version}: the same model (same trees and vocabulary)"]
            return verdict + [f"note: {change}" for change in self.library_changes]
        return [
            f"rebuilt {self.rebuilt_version}, not {self.recorded_version}: {self.differing_trees} of "
            f"{self.trees} trees differ; largest probability difference {self.max_prediction_difference:.6g} "
            f"on the {self.rows_compared} rows of {self.rows_from}",
            *(f"changed since the build: {change}" for change in self.library_changes),
            *([] if self.library_changes else ["no build library changed version"]),
        ]


def compare_rebuild(
    recorded: TrainedModel,
    rebuilt: TrainedModel,
    evaluation_rows: pd.DataFrame,
    rows_from: str,
    libraries: Mapping[str, str | None],
) -> RebuildReport:
    """The recorded model against its rebuild: versions, trees, and probabilities on the cleaned
    evaluation rows (each model through its own vocabulary)."""
    cleaned = clean(validate_source(evaluation_rows))
    probabilities = []
    for model in (recorded, rebuilt):
        X, _ = compact_split(encode(cleaned, model.vocabulary).frame)
        probabilities.append(model.predict_proba(take_rows(X, np.arange(X.shape[0]))))
    old, new = _trees(recorded.booster), _trees(rebuilt.booster)
    differing = sum(a != b for a, b in zip(old, new)) + abs(len(old) - len(new))
    return RebuildReport(
        recorded_version=model_version(recorded),
        rebuilt_version=model_version(rebuilt),
        library_changes=library_changes(libraries, code_versions()),
        differing_trees=differing,
        trees=len(old),
        max_prediction_difference=float(np.max(np.abs(probabilities[0] - probabilities[1]))) if len(cleaned) else 0.0,
        rows_compared=len(cleaned),
        rows_from=rows_from,
    )
