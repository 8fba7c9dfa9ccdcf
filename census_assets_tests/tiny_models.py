"""Tiny LightGBM models for the storage and registry tests: trained in milliseconds, stored and
loaded like the real one (the same codec, the same vocabulary check)."""

import lightgbm as lgb
import numpy as np

from census_assets.core.features import CATEGORICAL_COLUMNS, Vocabulary
from census_assets.core.training import TrainedModel

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
