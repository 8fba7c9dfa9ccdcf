"""The artifact store: atomic writes, open formats, clear errors, run-scoped commits."""

import json
import os

import pandas as pd
import pytest

from census_assets.storage.codecs import codec_for
from census_assets.storage.commits import ArtifactKey, commit, load_committed, prune
from census_assets.storage.errors import CorruptArtifactError, MissingArtifactError, PermanentStorageError
from census_assets.storage.objects import FAULTS, LocalObjectStore

FRAME = codec_for(pd.DataFrame)


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    store = LocalObjectStore(tmp_path / "s")
    store.write("a.json", b"1")
    store.write("a.json", b"2")
    assert store.read("a.json") == b"2"
    assert os.listdir(tmp_path / "s") == ["a.json"]


def test_a_failed_write_keeps_the_previous_object_and_removes_its_temp_file(tmp_path):
    store = LocalObjectStore(tmp_path)
    store.write("m.json", b'{"v": 1}')

    def crash(point, name, temporary):
        if point == "committing":  # the bytes are written and fsync'd; the rename fails
            raise OSError("disk full")

    with FAULTS.installed(crash), pytest.raises(OSError, match="disk full"):
        store.write("m.json", b'{"v": 2}')
    assert json.loads((tmp_path / "m.json").read_text()) == {"v": 1}
    assert os.listdir(tmp_path) == ["m.json"]


def test_committed_frames_are_parquet_readable_without_this_package(tmp_path):
    store = LocalObjectStore(tmp_path)
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    commit(store, ArtifactKey("t"), "run1", FRAME.encode(frame))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), frame)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "runs" / "run1" / "t.parquet"), frame)


def test_a_run_reads_its_own_output_not_the_latest_commit(tmp_path):
    store = LocalObjectStore(tmp_path)
    key = ArtifactKey("t")
    commit(store, key, "mine", FRAME.encode(pd.DataFrame({"a": [1]})))
    commit(store, key, "theirs", FRAME.encode(pd.DataFrame({"a": [2]})))
    assert load_committed(store, key, FRAME, ("mine",))["a"].tolist() == [1]
    assert load_committed(store, key, FRAME, ("a-run-that-wrote-nothing",))["a"].tolist() == [2]
    assert load_committed(store, key, FRAME)["a"].tolist() == [2]


def test_a_truncated_committed_file_is_refused_with_its_url(tmp_path):
    store = LocalObjectStore(tmp_path)
    commit(store, ArtifactKey("t"), "r", FRAME.encode(pd.DataFrame({"a": range(100)})))
    path = tmp_path / "runs" / "r" / "t.parquet"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CorruptArtifactError, match=f"{path}.* is not the file that was committed"):
        load_committed(store, ArtifactKey("t"), FRAME)


def test_partition_keys_cannot_name_a_path_outside_storage():
    for key in ("../x", "a/b", "..", ""):
        with pytest.raises(ValueError, match="not a safe object name"):
            ArtifactKey("scored_batch", partition=key)


def test_prune_keeps_the_newest_commits_and_young_uncommitted_files(tmp_path):
    store = LocalObjectStore(tmp_path)
    key = ArtifactKey("t")
    for run in ("r1", "r2", "r3"):
        commit(store, key, run, FRAME.encode(pd.DataFrame({"a": [run]})))
    store.write("runs/in-progress/t.parquet", b"a run still writing")  # a run without a lease record
    deleted = prune(store, keep=2, grace_seconds=3600)
    assert sorted(deleted) == ["runs/r1/t.manifest.json", "runs/r1/t.parquet"]
    assert (tmp_path / "runs" / "in-progress" / "t.parquet").exists()
    assert load_committed(store, key, FRAME)["a"].tolist() == ["r3"]
    assert sorted(prune(store, keep=2, grace_seconds=0)) == ["runs/in-progress/t.parquet"]


def test_missing_artifact_says_what_to_do(tmp_path):
    store = LocalObjectStore(tmp_path)
    with pytest.raises(MissingArtifactError, match=f"cannot read {tmp_path}/cv_accuracy.json: it does not exist"):
        store.read("cv_accuracy.json")
    with pytest.raises(MissingArtifactError, match="no committed cv_accuracy.*materialise it first") as missing:
        load_committed(store, ArtifactKey("cv_accuracy"), codec_for(dict))
    # Waiting does not bring a missing file back: permanent, and still a FileNotFoundError.
    assert isinstance(missing.value, PermanentStorageError) and isinstance(missing.value, FileNotFoundError)


def test_unknown_type_has_no_format():
    with pytest.raises(TypeError, match="no storage format for <class 'list'>"):
        codec_for(list)


def test_prune_command_deletes_superseded_runs(tmp_path, capsys):
    from census_assets import cli

    store = LocalObjectStore(tmp_path)
    for run in ("r1", "r2"):
        commit(store, ArtifactKey("t"), run, FRAME.encode(pd.DataFrame({"a": [run]})))
    assert cli.main(["prune", "--keep", "1", "--storage", str(tmp_path)]) == 0
    assert "deleted 2 run-scoped objects" in capsys.readouterr().out
    assert not (tmp_path / "runs" / "r1").exists() or not any((tmp_path / "runs" / "r1").iterdir())
    assert cli.main(["prune", "--keep", "0", "--storage", str(tmp_path)]) == 2
    assert "--keep must be at least 1" in capsys.readouterr().err
