"""The artifact store: atomic writes, open formats, clear errors."""

import json
import os

import pandas as pd
import pytest

from census_assets.artifacts import ArtifactStore, codec_for


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    store = ArtifactStore(str(tmp_path / "s"))
    store.write_bytes("a.json", b"1")
    store.write_bytes("a.json", b"2")
    assert store.read_bytes("a.json") == b"2"
    assert os.listdir(tmp_path / "s") == ["a.json"]


def test_a_failed_write_keeps_the_previous_object(tmp_path, monkeypatch):
    store = ArtifactStore(str(tmp_path))
    store.write_json("m.json", {"v": 1})

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.write_json("m.json", {"v": 2})
    assert json.loads((tmp_path / "m.json").read_text()) == {"v": 1}


def test_frames_are_parquet_readable_without_this_package(tmp_path):
    store = ArtifactStore(str(tmp_path))
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    codec_for(pd.DataFrame).dump(store, "t", frame)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), frame)


def test_missing_artifact_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="materialise it first"):
        ArtifactStore(str(tmp_path)).read_bytes("cv_accuracy.json")


def test_unknown_type_has_no_format():
    with pytest.raises(TypeError, match="no storage format for <class 'list'>"):
        codec_for(list)
