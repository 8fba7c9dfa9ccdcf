"""Run-scoped commits alone (census_assets.storage.commits and leases): the order of a commit's
writes, a run's own output before the pointer (or a refusal), publication after the commit, the
reader helper for published copies, and what prune keeps."""

import errno
import json
import math
import os
import shutil
import time

import pandas as pd
import pytest

from census_assets.storage.codecs import MODEL_CODEC, codec_for, load
from census_assets.storage.commits import (
    ArtifactKey,
    check_grace,
    check_is_storage,
    commit,
    committed_manifest,
    load_committed,
    load_published,
    prune,
)
from census_assets.storage.errors import CorruptArtifactError, MissingArtifactError, StorageError
from census_assets.storage.leases import LEASE_SECONDS, LeaseHolder, LeaseRecord, read_lease, record_name, renew
from census_assets.storage.objects import FAULTS, LocalObjectStore
from census_assets_tests.tiny_models import TINY_VOCABULARY, WIDER_VOCABULARY, tiny_model

FRAME = codec_for(pd.DataFrame)
KEY = ArtifactKey("t")


def frame(value) -> dict[str, bytes]:
    return FRAME.encode(pd.DataFrame({"a": [value]}))


def values(store, run_ids=()) -> list:
    return load_committed(store, KEY, FRAME, run_ids)["a"].tolist()


def run_files(store: LocalObjectStore, run_id: str) -> list[str]:
    return sorted(info.name for info in store.list(f"runs/{run_id}"))


def test_a_commit_writes_the_run_then_its_lease_then_the_pointer_then_the_published_copies(tmp_path):
    store, written = LocalObjectStore(tmp_path), []
    with FAULTS.installed(lambda point, name, temporary: written.append(name) if point == "committed" else None):
        done = commit(store, KEY, "r1", frame(1))
    assert written == [
        "runs/r1/t.parquet", "runs/r1/t.manifest.json",  # the run's files, then their manifest
        record_name("r1"),  # the run's account of what it committed, before the pointer names it
        "pointers/t.json",
        "t.parquet", "t.manifest.json",  # published last: outside readers' copies
    ]
    assert done.published and done.publication_error is None
    assert done.manifest == committed_manifest(store, KEY)
    assert read_lease(store, "r1").committed == ("t",)
    published = json.loads((tmp_path / "t.manifest.json").read_text())
    assert (published["stem"], published["run_stem"], published["run_id"]) == ("t", "runs/r1/t", "r1")


@pytest.mark.integrity
def test_a_run_that_finds_its_own_output_gone_refuses_instead_of_reading_the_pointer(tmp_path):
    """16.1 at the store: run `mine` committed t, then `theirs` did; mine's files are deleted.
    Reading t for `mine` (or a run re-executing it) refuses, naming the files; it never returns
    theirs. A run that never committed t reads the pointer."""
    store = LocalObjectStore(tmp_path)
    commit(store, KEY, "mine", frame("mine"))
    commit(store, KEY, "theirs", frame("theirs"))
    assert values(store, ("child", "mine")) == ["mine"]  # a re-execution of mine reads mine's
    shutil.rmtree(tmp_path / "runs" / "mine")
    for lineage in (("mine",), ("child", "mine")):
        with pytest.raises(MissingArtifactError) as refused:
            load_committed(store, KEY, FRAME, lineage)
        assert str(refused.value) == (
            f"run mine committed t, but its files under {tmp_path}/runs/mine/t are gone (pruned or deleted): "
            "refusing to read another run's commit instead; materialise it again"
        )
    assert values(store, ("never-committed-t",)) == ["theirs"]


@pytest.mark.integrity
def test_a_failed_publication_leaves_the_commit_and_says_so(tmp_path):
    """16.3 at the store: the published copy cannot be written (no space); the commit stands,
    the pointer names it, and the result says the copies were not refreshed."""
    store = LocalObjectStore(tmp_path)
    commit(store, KEY, "r1", frame(1))

    def full_disk(point, name, temporary):
        if point == "committing" and name == "t.parquet":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with FAULTS.installed(full_disk):
        done = commit(store, KEY, "r2", frame(2))
    assert not done.published
    reason = f"cannot write {tmp_path}/t.parquet: no space left on the device"
    assert done.publication_error == f"[Errno {errno.ENOSPC}] {reason}"
    assert committed_manifest(store, KEY)["run_id"] == "r2" and values(store) == [2]
    assert load_published(store, KEY, FRAME)["a"].tolist() == [1]  # the previous copies, whole


@pytest.fixture
def mixed_publication(tmp_path) -> LocalObjectStore:
    """Model m1 committed and published by r1; then m2 (another vocabulary) by r2, whose
    publication stopped at the model text: m2's vocabulary and JSON dump beside m1's model text,
    under m1's manifest. The mix the issue's reader loaded."""
    store, key = LocalObjectStore(tmp_path), ArtifactKey("m")
    commit(store, key, "r1", MODEL_CODEC.encode(tiny_model(1, TINY_VOCABULARY)))

    def stop_at_the_model_text(point, name, temporary):
        if point == "committing" and name == "m.txt":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    with FAULTS.installed(stop_at_the_model_text):
        assert not commit(store, key, "r2", MODEL_CODEC.encode(tiny_model(2, WIDER_VOCABULARY))).published
    return store


@pytest.mark.integrity
def test_the_reader_helper_returns_one_consistent_set_from_a_mixed_publication(mixed_publication, tmp_path):
    """16.4: the mixed set is detected (unverified: the features differ from the vocabulary;
    verified: a copy is not the file the manifest lists); load_published returns r1's model
    whole, from the run files the published manifest names."""
    store, key = mixed_publication, ArtifactKey("m")
    with pytest.raises(CorruptArtifactError, match=f"{tmp_path}/m.txt does not match {tmp_path}/m.vocabulary.json"):
        load(store, MODEL_CODEC, "m", None)
    manifest = json.loads((tmp_path / "m.manifest.json").read_text())
    with pytest.raises(CorruptArtifactError, match="is not the file that was committed"):
        load(store, MODEL_CODEC, "m", manifest["files"])
    model = load_published(store, key, MODEL_CODEC)
    assert model.vocabulary == TINY_VOCABULARY
    assert model.booster.model_to_string() == tiny_model(1, TINY_VOCABULARY).booster.model_to_string()
    assert load_committed(store, key, MODEL_CODEC).vocabulary == WIDER_VOCABULARY  # the commit stands

    # Once a publication completes, the copies are read again, and are the new commit's.
    commit(store, key, "r3", MODEL_CODEC.encode(tiny_model(2, WIDER_VOCABULARY)))
    assert load_published(store, key, MODEL_CODEC).vocabulary == WIDER_VOCABULARY


@pytest.mark.integrity
def test_the_reader_helper_refuses_a_mixed_set_whose_run_files_are_gone(mixed_publication, tmp_path):
    shutil.rmtree(tmp_path / "runs" / "r1")
    with pytest.raises(CorruptArtifactError) as refused:
        load_published(mixed_publication, ArtifactKey("m"), MODEL_CODEC)
    message = str(refused.value)
    assert message.startswith("the published copies of m are not one consistent set (")
    assert message.endswith(
        f"the run files they copy are gone: read the committed artifact ({tmp_path}/pointers/m.json)"
    )


@pytest.mark.integrity
def test_prune_never_touches_a_run_whose_lease_is_live(tmp_path):
    """16.1 at the store: run a holds a live lease; its commit is superseded by b's and it has an
    uncommitted file. prune --keep 1 with no grace deletes none of a's files; once a's lease has
    run out (a lease after its last renewal), its superseded commit goes, and its uncommitted file
    once the grace period since the lease ran out has passed."""
    store = LocalObjectStore(tmp_path)
    renew(store, "a")
    commit(store, KEY, "a", frame("a"))
    store.write("runs/a/u.json", b"being written")
    commit(store, KEY, "b", frame("b"))
    a_files = run_files(store, "a")
    assert prune(store, keep=1, grace_seconds=0) == []
    assert run_files(store, "a") == a_files

    ended = read_lease(store, "a").expires
    assert prune(store, keep=1, grace_seconds=0, now=ended - 1) == []  # live until it runs out
    assert sorted(prune(store, keep=1, grace_seconds=3600, now=ended + 10)) == [
        "runs/a/t.manifest.json", "runs/a/t.parquet"
    ]
    assert run_files(store, "a") == ["runs/a/u.json"]  # the grace period counts from the lease's end
    assert prune(store, keep=1, grace_seconds=3600, now=ended + 3601) == ["runs/a/u.json"]
    assert values(store) == ["b"]


def test_a_lease_not_renewed_runs_out_and_lets_prune_in(tmp_path):
    """A killed or frozen run stops renewing: its lease protects it for a lease, then not."""
    store = LocalObjectStore(tmp_path)
    renew(store, "frozen", now=1000.0)
    commit(store, KEY, "frozen", frame("frozen"))
    commit(store, KEY, "later", frame("later"))
    lease = read_lease(store, "frozen")
    assert lease.is_live(1000.0 + LEASE_SECONDS - 1) and not lease.is_live(1000.0 + LEASE_SECONDS)
    assert prune(store, keep=1, grace_seconds=0, now=1000.0 + LEASE_SECONDS - 1) == []
    assert sorted(prune(store, keep=1, grace_seconds=0, now=1000.0 + LEASE_SECONDS)) == [
        "runs/frozen/t.manifest.json", "runs/frozen/t.parquet"
    ]


def test_the_lease_holder_takes_the_lease_first_and_lets_it_run_out_rather_than_ending_it(tmp_path):
    """A process holds the lease before anything else; when its part of the run ends it stops
    renewing, and the lease stays live until it runs out: the run's next step, in another process,
    must still find it live."""
    store, holder = LocalObjectStore(tmp_path), LeaseHolder()
    before = time.time()
    holder.hold(store, "r")
    holder.hold(store, "other run")
    lease = read_lease(store, "r")
    assert lease.expires >= before + LEASE_SECONDS and lease.committed == ()
    holder.hold(store, "r")  # held once
    assert holder.held() == {"r", "other run"}
    holder.stop_renewing("r")
    assert holder.held() == {"other run"}  # only its own run
    assert read_lease(store, "r") == lease and lease.is_live(time.time())  # not ended early
    assert not lease.is_live(lease.expires)


def lease_bytes(run_id: str, expires: float, committed: list[str]) -> bytes:
    return json.dumps({"run_id": run_id, "expires": expires, "committed": committed}).encode()


@pytest.mark.integrity
def test_each_process_writes_its_own_record_and_the_run_s_lease_is_all_of_them(any_store):
    """Two processes of one run (steps of the multiprocess executor), each with its own record:
    the run's lease lists both commits and lasts until the later expiry. A run whose id begins
    with another's is another run."""
    store = any_store
    store.write("leases/r/other-host-1-0123abcd.json", lease_bytes("r", 5000.0, ["u"]))
    store.write("leases/r2/other-host-1-0123abcd.json", lease_bytes("r2", 8000.0, ["w"]))
    renew(store, "r", now=1000.0)
    commit(store, KEY, "r", frame(1))
    assert read_lease(store, "r") == LeaseRecord("r", 5000.0, ("t", "u"))
    assert sorted(info.name for info in store.list("leases/r")) == sorted(
        ["leases/r/other-host-1-0123abcd.json", record_name("r")]
    )
    # A record from before per-process records (one per run) is read with them.
    store.write("leases/r.json", json.dumps({"run_id": "r", "expires": 9000.0, "released": 9000.0,
                                             "committed": ["v"]}).encode())
    assert read_lease(store, "r") == LeaseRecord("r", 9000.0, ("t", "u", "v"))
    assert read_lease(store, "never-ran") is None


def test_leases_take_no_lock(tmp_path):
    """Each process writes only its own record: no lock file per run accumulates in .locks/."""
    store = LocalObjectStore(tmp_path)
    for run_id in ("r1", "r2", "r3"):
        renew(store, run_id)
        commit(store, KEY, run_id, frame(run_id))
    assert [path.name for path in (tmp_path / ".locks").iterdir()] == ["pointers__t.json.lock"]


@pytest.mark.integrity
def test_prune_removes_the_lease_locks_of_earlier_versions_once_their_lease_ran_out(tmp_path):
    """Earlier versions locked each lease with a file of its own, one per run, never removed:
    prune removes those whose lease has run out, never a live one's (nor a pointer's lock)."""
    store = LocalObjectStore(tmp_path)
    commit(store, KEY, "old", frame(1))
    renew(store, "live")
    locks = tmp_path / ".locks"
    for run_id in ("old", "live", "no-lease-left"):
        (locks / f"leases__{run_id}.json.lock").touch()
    deleted = prune(store, keep=5, grace_seconds=3600)
    assert sorted(deleted) == [".locks/leases__no-lease-left.json.lock", ".locks/leases__old.json.lock"]
    assert sorted(path.name for path in locks.iterdir()) == ["leases__live.json.lock", "pointers__t.json.lock"]


@pytest.mark.integrity
@pytest.mark.parametrize("grace", [-1, -0.001, math.nan, math.inf, -math.inf, "24"])
def test_the_grace_period_must_be_finite_and_not_negative(tmp_path, grace):
    """16.2: a negative, infinite or NaN grace period is refused before anything is deleted."""
    store = LocalObjectStore(tmp_path)
    commit(store, KEY, "r1", frame(1))
    commit(store, KEY, "r2", frame(2))
    with pytest.raises(ValueError, match="the grace period must be a finite number of hours, at least 0"):
        check_grace(grace)
    with pytest.raises(ValueError, match="the grace period must be"):
        prune(store, keep=1, grace_seconds=grace)
    assert run_files(store, "r1") != []
    assert check_grace(0) == 0.0


@pytest.mark.integrity
@pytest.mark.parametrize("pointer", [b"[1, 2]", b'{"current": {}}', b'{"history": [1, 2]}', b"not json"])
def test_a_pointer_that_is_not_one_is_corrupt_naming_it(tmp_path, pointer):
    """16.10: prune and every loader refuse a pointer that is not one, with its URL; never an
    unexpected TypeError."""
    store = LocalObjectStore(tmp_path)
    commit(store, KEY, "r1", frame(1))
    (tmp_path / "pointers" / "t.json").write_bytes(pointer)
    for call in (lambda: prune(store, keep=1, grace_seconds=0), lambda: values(store)):
        with pytest.raises(CorruptArtifactError, match=f"{tmp_path}/pointers/t.json (is not|is not valid JSON)"):
            call()
    assert run_files(store, "r1") != []


def test_a_folder_without_census_storage_is_refused(tmp_path):
    with pytest.raises(StorageError, match=f"{tmp_path} holds no census storage"):
        check_is_storage(LocalObjectStore(tmp_path))
    commit(LocalObjectStore(tmp_path), KEY, "r1", frame(1))
    check_is_storage(LocalObjectStore(tmp_path))
