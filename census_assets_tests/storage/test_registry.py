"""Model registry (census_assets.storage.registry): versions (model_version, a content hash),
pointer, append-only history, rollback, promotion conditional on the champion it was decided
against. The champion/challenger decision itself is tested in test_core_comparison."""

import ctypes
import json
import threading
from contextlib import contextmanager

import lightgbm as lgb
import numpy as np
import pytest

from census_assets.core import training
from census_assets.core.features import Vocabulary, encode, split_target
from census_assets.core.promotion import model_version
from census_assets.core.training import TrainedModel
from census_assets.storage.errors import ChampionChangedError, RegistryError
from census_assets.storage.objects import FAULTS, open_store
from census_assets.storage.registry import POINTER, Registry
from census_assets_tests.tiny_models import tiny_model

pytestmark = pytest.mark.lifecycle


@pytest.fixture(scope="module")
def models() -> tuple[TrainedModel, TrainedModel, TrainedModel]:
    return tiny_model(1), tiny_model(2), tiny_model(3)


@pytest.fixture
def registry(any_store) -> Registry:
    """A registry on each backend (census_assets_tests/storage/conftest.py)."""
    return Registry(any_store)


def publish(registry: Registry, model: TrainedModel) -> str:
    version = model_version(model)
    registry.publish(version, model, {"extra.json": {"k": 1}})
    return version


def model_files(registry: Registry, *versions: str) -> dict[str, bytes]:
    return {
        info.name: registry.store.read(info.name)
        for version in versions
        for info in registry.store.list(f"models/{version}")
    }


def test_model_version_is_a_content_hash(models):
    first, second, _ = models
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
    manifest = json.loads(registry.store.read(f"models/{version}/manifest.json"))
    assert set(manifest["files"]) == {"model.txt", "model.json", "model.vocabulary.json", "extra.json"}
    assert registry.read_json(version, "extra.json") == {"k": 1}
    assert model_version(registry.load(version)) == version
    # A second publish of the same version writes nothing.
    written = []
    with FAULTS.installed(lambda point, name, temporary: written.append(name) if point == "committed" else None):
        assert registry.publish(version, models[1], {}) is False
    assert written == []


def test_a_model_loaded_from_storage_is_published_with_the_json_dump_it_was_stored_with(tmp_path, models):
    """production_model publishes the lgbm_model it loaded: the registry writes the dump that was
    read and verified with it, byte for byte, without LightGBM dumping the trees a second time."""
    stored = Registry(open_store(str(tmp_path / "artifacts")))
    first = publish(stored, models[0])
    loaded = stored.load(first)

    def dumped_again(*args, **kwargs):
        raise AssertionError("the trees were dumped again")

    loaded.booster.dump_model = dumped_again
    registry = Registry(open_store(str(tmp_path / "registry")))
    version = publish(registry, loaded)
    assert version == first
    assert registry.read_bytes(version, "model.json") == stored.read_bytes(first, "model.json")
    assert json.loads(registry.read_bytes(version, "model.json")) == models[0].booster.dump_model()


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

    files = model_files(registry, v1, v2)
    record = registry.rollback(v1, reason="bad predictions")
    assert registry.pointer() == record
    assert record["metrics"] == {"cv_accuracy": 0.8} and record["reason"] == "bad predictions"
    assert [(r["action"], r["version"]) for r in registry.history()] == [
        ("promote", v1),
        ("promote", v2),
        ("rollback", v1),
    ]
    # Rollback moved only the pointer.
    assert model_files(registry, v1, v2) == files


def test_rollback_to_a_never_promoted_version_fails_and_keeps_pointer(registry, models):
    v1, v2 = publish(registry, models[0]), publish(registry, models[1])
    registry.promote(v1, {"cv_accuracy": 0.8}, run_id="r1")
    before = registry.store.read(POINTER)
    for version in (v2, "0000"):  # published but never promoted; unknown
        with pytest.raises(RegistryError, match="never promoted"):
            registry.rollback(version)
    assert registry.store.read(POINTER) == before


def test_promote_needs_a_completed_version(registry, models):
    with pytest.raises(RegistryError, match="is not a model version"):
        registry.promote("abc", {}, run_id=None)
    version = publish(registry, models[0])
    registry.store.delete(f"models/{version}/manifest.json")  # a version whose publication never completed
    with pytest.raises(RegistryError, match=f"version {version} is incomplete"):
        registry.promote(version, {}, run_id=None)
    assert registry.pointer() is None


@pytest.mark.parametrize(
    "pointer, reason",
    [
        (b"{not json", "is not valid JSON"),
        (b"[1, 2]", "is not a production pointer"),
        (json.dumps({"version": "../../etc"}).encode(), "is not a model version"),
        (json.dumps({"version": "0123456789abcdef"}).encode(), "is incomplete"),
    ],
    ids=["garbage", "not-an-object", "path-escape", "dangling"],
)
def test_a_bad_production_pointer_is_refused_when_read(registry, models, pointer, reason):
    registry.promote(publish(registry, models[0]), {"cv_accuracy": 0.8}, run_id="r1")
    registry.store.write(POINTER, pointer)
    for read in (registry.pointer, registry.production, registry.history):
        with pytest.raises(RegistryError, match=reason):
            read()
    # Nothing is promoted on top of a pointer that cannot be trusted either.
    with pytest.raises(RegistryError, match=reason):
        registry.promote(publish(registry, models[1]), {"cv_accuracy": 0.8}, run_id="r2")


def test_a_tampered_model_file_is_refused_with_its_name(registry, models):
    version = publish(registry, models[0])
    name = f"models/{version}/model.txt"
    registry.store.write(name, registry.store.read(name)[:-200])
    with pytest.raises(OSError, match=f"{name}.* is not the file that was committed"):
        registry.load(version)


def test_the_gcs_emulator_answers_a_failed_precondition_with_412(gcs_bucket):
    from google.api_core.exceptions import PreconditionFailed
    from google.cloud import storage

    blob = storage.Client().bucket(gcs_bucket).blob("precondition.json")
    blob.upload_from_string(b"1", if_generation_match=0)
    for generation in (0, blob.generation + 1):  # must not exist; a stale generation
        with pytest.raises(PreconditionFailed) as raised:
            blob.upload_from_string(b"2", if_generation_match=generation)
        assert raised.value.code == 412


def test_concurrent_promotions_lose_no_record(registry, models):
    """Eight promotions at once: every one lands in the history chain, each naming the one before."""
    versions = [publish(registry, models[0]), publish(registry, models[1])]
    barrier = threading.Barrier(8)

    def promote(i: int) -> None:
        barrier.wait()
        registry.promote(versions[i % 2], {"cv_accuracy": 0.8}, run_id=f"run-{i}")

    threads = [threading.Thread(target=promote, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = registry.history()
    assert sorted(record["run_id"] for record in history) == sorted(f"run-{i}" for i in range(8))
    for earlier, later in zip(history, history[1:], strict=False):
        assert later["previous_version"] == earlier["version"] and later["previous_record"] == earlier["record"]
    assert registry.production()["version"] in versions


@pytest.mark.integrity
def test_a_promotion_is_conditional_on_the_champion_it_was_decided_against(registry, models):
    """16.5 at the registry: a promotion decided against v2 while a rollback to v1 landed is not
    made; the error names both champions; the rollback stays. Decided against the right champion
    (or against "none yet" on an empty registry), it is made."""
    v1, v2, v3 = (publish(registry, model) for model in models)
    registry.promote(v1, {"cv_accuracy": 0.8310}, run_id="r1", expected_champion=None)
    registry.promote(v2, {"cv_accuracy": 0.8320}, run_id="r2", expected_champion=v1)
    decided_against = registry.pointer()["version"]  # the decision reads the champion ...
    rollback = registry.rollback(v1, reason="v2 misbehaves")  # ... a rollback lands ...
    with pytest.raises(ChampionChangedError) as refused:  # ... the swap is refused
        registry.promote(v3, {"cv_accuracy": 0.8301}, run_id="r3", expected_champion=decided_against)
    assert str(refused.value).startswith(
        f"champion changed from {v2} to {v1} during the decision: not promoting {v3}"
    )
    assert registry.pointer() == rollback
    assert [(r["action"], r["version"]) for r in registry.history()] == [
        ("promote", v1), ("promote", v2), ("rollback", v1)
    ]
    with pytest.raises(ChampionChangedError, match=f"champion changed from none to {v1}"):
        registry.promote(v3, {"cv_accuracy": 0.84}, run_id="r4", expected_champion=None)
    record = registry.promote(v3, {"cv_accuracy": 0.84}, run_id="r5", expected_champion=v1)
    assert registry.pointer() == record and record["previous_version"] == v1


@pytest.mark.integrity
def test_a_rollback_landing_while_a_promotion_waits_for_its_swap_is_kept(tmp_path, models):
    """16.5, the other order: the promotion's swap holds the pointer's lock (it stands still at its
    first write inside the swap, the promotion record); a rollback arriving then waits for it,
    lands after it, and names the challenger as the version it replaced. Never a promotion over a
    rollback (the order above)."""
    registry = Registry(open_store(str(tmp_path)))
    v1, v2, v3 = (publish(registry, model) for model in models)
    registry.promote(v1, {"cv_accuracy": 0.83}, run_id="r1")
    registry.promote(v2, {"cv_accuracy": 0.83}, run_id="r2")
    in_swap, go = threading.Event(), threading.Event()

    def stand_still(point, name, temporary):
        if point == "reserved" and name.startswith("promotions/") and "-promote-" in name:
            in_swap.set()
            go.wait(30)

    outcome = {}

    def promote():
        try:
            outcome["record"] = registry.promote(v3, {"cv_accuracy": 0.8301}, run_id="r3", expected_champion=v2)
        except ChampionChangedError as error:
            outcome["error"] = error

    with FAULTS.installed(stand_still):
        promotion = threading.Thread(target=promote)
        promotion.start()
        assert in_swap.wait(30)
        rollback = threading.Thread(target=registry.rollback, args=(v1,), kwargs={"reason": "race"})
        rollback.start()
        rollback.join(0.5)
        assert rollback.is_alive()  # the rollback waits for the swap holding the pointer's lock
        go.set()
        promotion.join(30)
        rollback.join(30)
    assert "record" in outcome  # decided against v2, and v2 was still the champion at the swap
    production = registry.pointer()
    assert (production["action"], production["version"], production["previous_version"]) == ("rollback", v1, v3)
