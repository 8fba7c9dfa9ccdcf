"""Model registry: versions, pointer, append-only history, rollback, champion/challenger."""

import ctypes
from contextlib import contextmanager

import lightgbm as lgb
import numpy as np
import pytest

from census_assets.artifacts import ArtifactStore, codec_for
from census_assets.core import training
from census_assets.core.features import Vocabulary, encode, split_target
from census_assets.core.registry import (
    POINTER,
    Registry,
    RegistryError,
    decide_promotion,
    model_version,
)
from census_assets.core.training import TrainedModel

pytestmark = pytest.mark.lifecycle

CODEC = codec_for(TrainedModel)


def tiny_model(seed: int) -> TrainedModel:
    rng = np.random.default_rng(seed)
    X = rng.random((200, 3))
    y = (X[:, 0] + 0.1 * rng.random(200) > 0.5).astype(int)
    booster = lgb.train({"verbose": -1, "seed": seed, "num_threads": 1}, lgb.Dataset(X, y), 3)
    return TrainedModel(booster, Vocabulary.from_dict(dict.fromkeys(
        ("workclass", "education", "occupation", "race", "sex", "income_bracket", "native_country"), ["a"]
    )))


@pytest.fixture(scope="module")
def models() -> tuple[TrainedModel, TrainedModel]:
    return tiny_model(1), tiny_model(2)


# memory:// stands in for any non-local fsspec store: it takes ArtifactStore's single-put path,
# the one gs:// uses.
@pytest.fixture(params=["local", "memory"])
def registry(request, tmp_path) -> Registry:
    base = str(tmp_path) if request.param == "local" else f"memory://registry/{tmp_path.name}"
    return Registry(ArtifactStore(base))


def publish(registry: Registry, model: TrainedModel) -> str:
    version = model_version(model)
    registry.publish(version, lambda name: CODEC.dump(registry.store, name, model), {"extra.json": {"k": 1}})
    return version


def test_model_version_is_a_content_hash(models):
    first, second = models
    reloaded = TrainedModel(lgb.Booster(model_str=first.booster.model_to_string()), first.vocabulary)
    assert model_version(first) == model_version(reloaded)
    assert model_version(first) != model_version(second)


@contextmanager
def lightgbm_threads_at_most(threads: int):
    """LightGBM's own cap on its threads (LGBM_SetMaxThreads): a fit asking for more gets `threads`."""
    from lightgbm.basic import _LIB

    previous = ctypes.c_int(-1)
    _LIB.LGBM_GetMaxThreads(ctypes.byref(previous))
    _LIB.LGBM_SetMaxThreads(ctypes.c_int(threads))
    try:
        yield
    finally:
        _LIB.LGBM_SetMaxThreads(previous)


@pytest.fixture(scope="module")
def census(bundled_clean):
    vocabulary = Vocabulary.fit(bundled_clean)
    frame = encode(bundled_clean, vocabulary).frame
    X, y = split_target(frame)
    return X, y, [str(name) for name in frame.columns.drop("never_married")], vocabulary


def test_model_version_is_the_same_whatever_the_thread_count(census):
    X, y, names, vocabulary = census
    # num_threads=16 goes into the model's parameters, while LightGBM runs at most 2 threads. 16 first:
    # the thread count a fit sets is process-wide in LightGBM, so the last fit leaves it at 1.
    with lightgbm_threads_at_most(min(2, training.available_cores())):
        boosters = {n: training.fit_rows(X, y, None, None, n, names) for n in (16, 2, 1)}
    texts = {n: booster.model_to_string() for n, booster in boosters.items()}
    # The texts differ, in the num_threads parameter only: the trees are the same.
    for n in (2, 16):
        assert set(texts[n].splitlines()) - set(texts[1].splitlines()) == {f"[num_threads: {n}]"}
    versions = {n: model_version(TrainedModel(booster, vocabulary)) for n, booster in boosters.items()}
    assert versions[16] == versions[2] == versions[1]
    # Saved by the 16-thread fit and loaded again (the registry's path): same version.
    reloaded = lgb.Booster(model_str=texts[16])
    assert model_version(TrainedModel(reloaded, vocabulary)) == versions[1]

    # What changes predictions changes the version: other trees, or another vocabulary.
    other_rows = training.fit_rows(X, y, np.arange(0, len(y), 2), None, 1, names)
    assert model_version(TrainedModel(other_rows, vocabulary)) != versions[1]
    other_vocabulary = Vocabulary.from_dict({**vocabulary.to_dict(), "sex": ["Female", "Male", "Other"]})
    assert model_version(TrainedModel(boosters[1], other_vocabulary)) != versions[1]


def test_publish_writes_model_extras_and_manifest_once(registry, models):
    version = publish(registry, models[0])
    assert registry.is_published(version)
    manifest = registry.read_json(version, "manifest.json")
    assert set(manifest["files"]) == {"model.txt", "model.json", "model.vocabulary.json", "extra.json"}
    loaded = CODEC.load(registry.store, registry.model_name(version))
    assert model_version(loaded) == version
    # A second publish of the same version writes nothing.
    assert registry.publish(version, lambda name: pytest.fail("rewrote a version"), {}) is False


def test_promote_rollback_and_history(registry, models):
    assert registry.pointer() is None and registry.history() == []
    with pytest.raises(RegistryError, match="no production model"):
        registry.production()
    v1, v2 = publish(registry, models[0]), publish(registry, models[1])
    registry.promote(v1, {"cv_accuracy": 0.8}, run_id="r1")
    registry.promote(v2, {"cv_accuracy": 0.83}, run_id="r2")
    assert registry.production()["version"] == v2
    assert registry.pointer()["previous_version"] == v1
    assert registry.versions() == sorted([v1, v2])

    files = {p.name: p.read_bytes() for v in (v1, v2) for p in registry.store.path(f"models/{v}").iterdir()}
    record = registry.rollback(v1, reason="bad predictions")
    assert registry.pointer() == record
    assert record["metrics"] == {"cv_accuracy": 0.8} and record["reason"] == "bad predictions"
    assert [(r["action"], r["version"]) for r in registry.history()] == [
        ("promote", v1),
        ("promote", v2),
        ("rollback", v1),
    ]
    # Rollback moved only the pointer.
    assert {p.name: p.read_bytes() for v in (v1, v2) for p in registry.store.path(f"models/{v}").iterdir()} == files


def test_rollback_to_a_never_promoted_version_fails_and_keeps_pointer(registry, models):
    v1, v2 = publish(registry, models[0]), publish(registry, models[1])
    registry.promote(v1, {"cv_accuracy": 0.8}, run_id="r1")
    before = registry.store.read_bytes(POINTER)
    for version in (v2, "0000"):  # published but never promoted; unknown
        with pytest.raises(RegistryError, match="never promoted"):
            registry.rollback(version)
    assert registry.store.read_bytes(POINTER) == before


def test_promote_needs_a_completed_version(registry):
    with pytest.raises(RegistryError, match="not published"):
        registry.promote("abc", {}, run_id=None)


CHAMPION = {"version": "v1", "metrics": {"cv_accuracy": 0.83}}


@pytest.mark.parametrize(
    "cv, holdout, champion, tolerance, promote",
    [
        (0.81, 0.82, None, 0.0, True),  # first model passing the threshold
        (0.81, 0.79, None, 0.0, False),  # first model failing the held-out threshold
        (0.84, 0.85, CHAMPION, 0.0, True),  # better
        (0.83, 0.85, CHAMPION, 0.0, True),  # equal (a retrain on the same data)
        (0.82, 0.85, CHAMPION, 0.0, False),  # worse
        (0.82, 0.85, CHAMPION, 0.02, True),  # worse, within the tolerance
        (0.84, 0.79, CHAMPION, 0.0, False),  # better CV, held-out below the threshold
    ],
)
def test_decide_promotion(cv, holdout, champion, tolerance, promote):
    decision = decide_promotion(cv, holdout, champion, threshold=0.8, tolerance=tolerance)
    assert decision.promote is promote
    assert f"held-out accuracy {holdout:.4f}" in decision.message
    if champion:
        assert "champion v1's 0.8300" in decision.message
