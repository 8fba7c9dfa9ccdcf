"""Models and cards the tests share: tiny LightGBM models for the storage and registry tests (trained
in milliseconds, stored and loaded like the real one: the same codec, the same vocabulary check), a
model fitted as the pipeline fits it, and a card with every section filled."""

import lightgbm as lgb
import numpy as np
import pandas as pd

from census_assets.core.cleaning import clean
from census_assets.core.explanations import INPUT_COLUMNS, Contributions, global_importance
from census_assets.core.features import CATEGORICAL_COLUMNS, Vocabulary, encode, split_target
from census_assets.core.model_card import build_card, evaluation_section, human_parts
from census_assets.core.training import TrainedModel, compact_split, fit_final, fit_rows

TINY_VOCABULARY = Vocabulary.from_dict(dict.fromkeys(CATEGORICAL_COLUMNS, ["a"]))
# Two more categories: the model's features differ from TINY_VOCABULARY's, as a refit's can.
WIDER_VOCABULARY = Vocabulary.from_dict({**TINY_VOCABULARY.to_dict(), "workclass": ["a", "b", "c"]})


def tiny_model(seed: int, vocabulary: Vocabulary = TINY_VOCABULARY) -> TrainedModel:
    names = vocabulary.feature_names
    rng = np.random.default_rng(seed)
    X = rng.random((200, len(names)))
    y = (X[:, 0] + 0.1 * rng.random(200) > 0.5).astype(int)
    dataset = lgb.Dataset(X, y, feature_name=names)
    return TrainedModel(lgb.train({"verbose": -1, "seed": seed, "num_threads": 1}, dataset, 3), vocabulary)


def small_model(rows: pd.DataFrame, seed: int) -> TrainedModel:
    """A model of its own vocabulary on a few rows, one thread, a given seed."""
    cleaned = clean(rows)
    vocabulary = Vocabulary.fit(cleaned)
    X, y = split_target(encode(cleaned, vocabulary).frame)
    return TrainedModel(fit_rows(X, y, model_seed=seed, threads=1, feature_names=vocabulary.feature_names), vocabulary)


def pipeline_model(raw: pd.DataFrame, vocabulary: Vocabulary | None = None) -> TrainedModel:
    """As features and lgbm_model fit it."""
    cleaned = clean(raw)
    vocabulary = vocabulary or Vocabulary.fit(cleaned)
    X, y = compact_split(encode(cleaned, vocabulary).frame)
    return TrainedModel(fit_final(X, y, vocabulary.feature_names), vocabulary)


def a_card(version: str) -> dict:
    rng = np.random.default_rng(2)
    y = (rng.random(400) < 0.4).astype(int)
    p = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.2, 400), 0.01, 0.99)
    return build_card(
        version=version, created="2026-12-04T10:00:00Z", run_id="run-1", training_data={"rows": 400},
        code={"python": "3.11"}, parameters={"num_threads": 1}, cv_scores=[0.8, 0.82],
        evaluation=evaluation_section(y, p, {"sex": rng.choice(["Female", "Male"], 400)}, "400 rows"),
        top_features=global_importance(Contributions(rng.normal(size=(50, len(INPUT_COLUMNS))), np.zeros(50))),
        drift=None, promotion={"decision": "promote"}, human=human_parts(""),
    )
