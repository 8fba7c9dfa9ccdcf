"""The storage and registry written by release 797e3e6 (fixtures/release_797e3e6, see its README),
read by today's code: the history, the production model and its scores, every pointer, every
published copy, and what prune keeps. Every test works on a copy: the fixture is never modified."""

import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from census_assets import cli
from census_assets.core.promotion import model_version
from census_assets.core.scoring import PROBABILITY
from census_assets.core.training import TrainedModel
from census_assets.storage.codecs import MODEL_CODEC, MODEL_TEXT, PARQUET, codec_for
from census_assets.storage.commits import ArtifactKey, committed_manifest, load_committed, load_published
from census_assets.storage.manifests import MANIFEST_SUFFIX
from census_assets.storage.objects import LocalObjectStore
from census_assets.storage.registry import Registry
from census_assets_tests.fixtures import RELEASE_797E3E6

RUN_A, RUN_B = "624c75f9-4150-4939-ac11-8d7e7a5c8123", "3b38910a-305e-460a-b107-1bc5f03d45dd"
SCORING_RUN = "aac42f5b-7ea3-4eb1-8a78-9cb525126524"
VERSION_A, VERSION_B = "c6074c565a7ed478", "fff3ddf502cafbe5"
TRAINING_ASSETS = ("raw_census", "clean_census", "features", "cv_accuracy", "lgbm_model", "holdout_metrics",
                   "drift", "scored_census")
BATCH = ArtifactKey("scored_batch", "batch_a.csv", published_as="scored")


def tree(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture
def storage(tmp_path) -> Path:
    """A copy of the fixture's census_storage, free to prune."""
    return Path(shutil.copytree(RELEASE_797E3E6 / "census_storage", tmp_path / "census_storage"))


def codec_of(manifest: dict):
    """The codec of a committed artifact, by the files its manifest lists."""
    suffixes = {name.removeprefix(manifest["stem"]) for name in manifest["files"]}
    if MODEL_TEXT in suffixes:
        return MODEL_CODEC
    return codec_for(pd.DataFrame) if PARQUET in suffixes else codec_for(dict)


def every_key() -> list[ArtifactKey]:
    return [ArtifactKey(asset) for asset in TRAINING_ASSETS] + [BATCH]


def test_history_lists_both_promotions_the_rollback_and_production(storage, capsys):
    assert cli.main(["history", "--storage", str(storage)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1:3] for line in lines[:-1]] == [
        ["promote", VERSION_A], ["promote", VERSION_B], ["rollback", VERSION_A]
    ]
    assert "cv=0.8062" in lines[0] and f"run={RUN_A}" in lines[0]
    assert "cv=0.7924" in lines[1] and f"run={RUN_B}" in lines[1]
    assert lines[2].endswith("run=-")
    assert lines[-1] == f"production: {VERSION_A}"


def test_the_production_model_scores_the_inbox_file_as_the_release_did(storage, tmp_path, capsys):
    pointer, model = Registry(LocalObjectStore(storage)).load_production()
    assert pointer["version"] == model_version(model) == VERSION_A
    output = tmp_path / "scored.parquet"
    code = cli.main(["predict", "--input", str(RELEASE_797E3E6 / "inbox" / "batch_a.csv"), "--output", str(output),
                     "--storage", str(storage)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.startswith(f"scored 50 of 50 rows with model {VERSION_A}")
    stored = pd.read_parquet(storage / "scored" / "batch_a.csv.parquet")
    pd.testing.assert_series_equal(pd.read_parquet(output)[PROBABILITY], stored[PROBABILITY])


def test_every_pointer_loads_committed_and_verified(storage):
    store = LocalObjectStore(storage)
    pointers = sorted(info.name for info in store.list("pointers"))
    assert pointers == sorted(key.pointer for key in every_key())
    for key in every_key():
        manifest = committed_manifest(store, key)
        assert manifest["run_id"] == (SCORING_RUN if key == BATCH else RUN_B), key
        loaded = load_committed(store, key, codec_of(manifest))
        if isinstance(loaded, TrainedModel):
            assert loaded.booster.feature_name() == loaded.vocabulary.feature_names
        else:
            assert len(loaded) > 0, key
    assert model_version(load_committed(store, ArtifactKey("lgbm_model"), MODEL_CODEC)) == VERSION_B
    # Run A's commits are read by A's lineage (a re-execution of A), not through the pointer.
    assert model_version(load_committed(store, ArtifactKey("lgbm_model"), MODEL_CODEC, (RUN_A,))) == VERSION_A
    assert len(load_committed(store, BATCH, codec_for(pd.DataFrame))) == 50


def test_every_published_copy_loads_as_one_consistent_set(storage):
    """The release's published manifests name no run stem: the reader helper finds the run files
    by run id when a copy does not match (here: a copy the test damages)."""
    store = LocalObjectStore(storage)
    published = sorted(info.name for info in store.list("") if info.name.endswith(MANIFEST_SUFFIX)
                       and not info.name.startswith(("runs/", "pointers/")))
    assert published == sorted(key.published_stem + MANIFEST_SUFFIX for key in every_key())
    for key in every_key():
        manifest = committed_manifest(store, key)
        codec = codec_of(manifest)
        committed = load_committed(store, key, codec)
        copy = load_published(store, key, codec)
        if isinstance(copy, pd.DataFrame):
            pd.testing.assert_frame_equal(copy, committed)
        elif key.asset == "lgbm_model":
            assert copy.booster.model_to_string() == committed.booster.model_to_string()
        else:
            assert copy == committed
    damaged = storage / "lgbm_model.vocabulary.json"
    damaged.write_text(damaged.read_text().replace("Private", "Privately"))
    model = load_published(store, ArtifactKey("lgbm_model"), MODEL_CODEC)
    assert model_version(model) == VERSION_B


def test_prune_keeps_what_the_pointers_the_registry_and_the_grace_period_keep(storage, capsys):
    """prune --keep 1 on the release's storage (runs without lease records): run A's superseded
    commits go; run B's and the scoring run's stay, as do the registry, the pointers and the
    published copies; an uncommitted file of a run without a lease goes by its age."""
    stray = storage / "runs" / RUN_A / "stray.json"  # a file no manifest lists
    stray.write_text("{}")
    before = tree(storage)
    a_files = {name for name in before if name.startswith(f"runs/{RUN_A}/")}

    assert cli.main(["prune", "--keep", "1", "--storage", str(storage)]) == 0
    assert capsys.readouterr().out.startswith(f"deleted {len(a_files) - 1} run-scoped objects")
    after = tree(storage)
    assert set(before) - set(after) == a_files - {f"runs/{RUN_A}/stray.json"}  # young: kept
    assert all(after[name] == before[name] for name in after)

    day_old = time.time() - 25 * 3600
    os.utime(stray, (day_old, day_old))
    assert cli.main(["prune", "--keep", "1", "--storage", str(storage)]) == 0
    assert "deleted 1 run-scoped objects" in capsys.readouterr().out
    assert not stray.exists()

    # What stays still loads: every pointer, every published copy, the production model (A's, kept
    # in the registry though its run files went), the history.
    store = LocalObjectStore(storage)
    for key in every_key():
        manifest = committed_manifest(store, key)
        load_committed(store, key, codec_of(manifest))
        load_published(store, key, codec_of(manifest))
    assert model_version(Registry(store).load_production()[1]) == VERSION_A
    assert [record["action"] for record in Registry(store).history()] == ["promote", "promote", "rollback"]
    assert cli.main(["prune", "--keep", "2", "--storage", str(storage)]) == 0
    assert "deleted 0 run-scoped objects" in capsys.readouterr().out


def test_the_fixture_itself_is_unchanged():
    """Nothing here (or anywhere) wrote into the fixture: it is byte for byte what git holds."""
    import subprocess

    done = subprocess.run(["git", "status", "--porcelain", "--", str(RELEASE_797E3E6)], capture_output=True, text=True,
                          cwd=RELEASE_797E3E6, check=True)
    assert done.stdout == ""
