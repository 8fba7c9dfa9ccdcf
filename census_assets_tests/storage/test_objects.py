"""The object store alone (census_assets.storage.objects, local backend): the atomic write and its
fault points, error classification, compare-and-swap, listings, and which temp files may go."""

import errno
import os
import threading
from pathlib import Path

import pytest

from census_assets.storage.errors import MissingArtifactError, PermanentStorageError, StorageError
from census_assets.storage.gcp import GcsObjectStore
from census_assets.storage.objects import FAULTS, TEMP_SUFFIX, LocalObjectStore, open_store


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*" + TEMP_SUFFIX))


def test_a_write_passes_its_fault_points_in_order(tmp_path):
    store = LocalObjectStore(tmp_path)
    seen = []

    def record(point, name, temporary):
        contents = temporary.read_bytes() if temporary is not None else None
        seen.append((point, name, contents, (tmp_path / name).exists()))

    with FAULTS.installed(record):
        store.write("a/b.json", b"data")
        store.delete("a/b.json")
    assert seen == [
        ("reserved", "a/b.json", b"", False),  # the temp file exists, empty, beside the target
        ("written", "a/b.json", b"data", False),
        ("committing", "a/b.json", b"data", False),
        ("committed", "a/b.json", None, True),
        ("deleting", "a/b.json", None, True),
    ]
    assert not (tmp_path / "a" / "b.json").exists() and temp_files(tmp_path) == []


@pytest.mark.parametrize("point", ["reserved", "written", "committing"])
def test_a_fault_before_the_rename_keeps_the_previous_object_and_no_temp_file(tmp_path, point):
    store = LocalObjectStore(tmp_path)
    store.write("m.json", b"old")

    def full_disk(at, name, temporary):
        if at == point:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with FAULTS.installed(full_disk), pytest.raises(PermanentStorageError) as raised:
        store.write("m.json", b"new")
    assert str(raised.value) == f"[Errno {errno.ENOSPC}] cannot write {tmp_path}/m.json: no space left on the device"
    assert store.read("m.json") == b"old"
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize(
    "code, permanent",
    [(errno.ENOSPC, True), (errno.EFBIG, True), (errno.EACCES, True), (errno.EROFS, True), (errno.EIO, False)],
)
def test_os_errors_are_classified_permanent_or_not(tmp_path, code, permanent):
    """Errors the same write would hit again fail once (PermanentStorageError); others (an I/O
    error) stay plain OSErrors, for the retry policy."""

    def fail(point, name, temporary):
        if point == "written":
            raise OSError(code, os.strerror(code))

    with FAULTS.installed(fail), pytest.raises(OSError) as raised:
        LocalObjectStore(tmp_path).write("x.json", b"1")
    assert isinstance(raised.value, PermanentStorageError) is permanent
    assert raised.value.errno == code
    assert (f"{tmp_path}/x.json" in str(raised.value)) is permanent


def test_a_missing_object_is_a_permanent_missing_artifact_error(tmp_path):
    store = LocalObjectStore(tmp_path)
    for call in (store.read, store.stat):
        with pytest.raises(MissingArtifactError, match=f"{tmp_path}/nothing.json: it does not exist"):
            call("nothing.json")
    assert not store.exists("nothing.json")
    store.delete("nothing.json")  # nothing to do


def test_a_write_under_a_file_fails_before_any_work_naming_it(tmp_path):
    (tmp_path / "folder").write_text("a file where a folder belongs")
    with pytest.raises(PermanentStorageError, match=f"cannot write {tmp_path}/folder/x.json: "):
        LocalObjectStore(tmp_path).reserve("folder/x.json")


@pytest.mark.integrity
def test_prune_never_deletes_the_temp_file_of_a_live_writer(tmp_path):
    """16.2 and 16.9 at the store: a temp file goes only when no live writer holds its flock, so
    even with no grace period a write cannot lose its file between write and rename. A writer
    that stands still at each point keeps its temp file; once done, the object is whole."""
    store = LocalObjectStore(tmp_path)
    for point in ("reserved", "written", "committing"):
        paused, resume = threading.Event(), threading.Event()

        def stand_still(at, name, temporary, point=point, paused=paused, resume=resume):
            if at == point and name == "pointers/x.json":
                paused.set()
                resume.wait(30)

        with FAULTS.installed(stand_still):
            writer = threading.Thread(target=store.write, args=("pointers/x.json", point.encode()))
            writer.start()
            assert paused.wait(30)
            [held] = temp_files(tmp_path)
            assert store.delete_abandoned_temporaries(0) == []
            assert held.exists()
            resume.set()
            writer.join(30)
        assert store.read("pointers/x.json") == point.encode()
        assert temp_files(tmp_path) == []


@pytest.mark.integrity
def test_the_temp_file_of_a_killed_writer_goes_once_older_than_the_grace_period(tmp_path):
    """16.9 at the store: a process killed after reserving leaves its temp file (outside runs/ too);
    nobody holds its flock, so it goes once older than the grace period."""
    store = LocalObjectStore(tmp_path)
    for name in ("production.json", "models/0123456789abcdef/model.txt", "scored/b.csv.parquet"):
        pid = os.fork()
        if pid == 0:  # the killed writer: reserves, writes, and dies without discarding
            try:
                FAULTS.install(lambda point, _, temporary: os._exit(0) if point == "written" else None)
                store.write(name, b"half")
            finally:
                os._exit(1)
        assert os.waitpid(pid, 0)[1] == 0
    left = sorted(str(path.relative_to(tmp_path)) for path in temp_files(tmp_path))
    assert len(left) == 3
    assert store.delete_abandoned_temporaries(3600) == []  # younger than an hour
    assert sorted(store.delete_abandoned_temporaries(0)) == left
    assert temp_files(tmp_path) == []


def test_update_is_a_compare_and_swap(tmp_path):
    """Eight threads adding one, twenty times each: every increment lands."""
    store = LocalObjectStore(tmp_path)
    barrier = threading.Barrier(8)

    def add_twenty():
        barrier.wait()
        for _ in range(20):
            store.update("counter", lambda current: str(int(current or b"0") + 1).encode())

    threads = [threading.Thread(target=add_twenty) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.read("counter") == b"160"


def test_a_change_that_raises_abandons_the_update(tmp_path):
    store = LocalObjectStore(tmp_path)
    store.write("pointer.json", b"1")

    def refuse(current):
        raise ValueError("the champion changed")

    with pytest.raises(ValueError, match="the champion changed"):
        store.update("pointer.json", refuse)
    assert store.read("pointer.json") == b"1" and temp_files(tmp_path) == []


def test_list_is_recursive_and_leaves_out_temp_files_and_symlinks(tmp_path):
    store = LocalObjectStore(tmp_path)
    store.write("runs/r/a.parquet", b"12")
    store.write("runs/r/b/c.json", b"3")
    pending = store.reserve("runs/r/d.json")
    (tmp_path / "runs" / "r" / "link.json").symlink_to(tmp_path / "runs" / "r" / "a.parquet")
    try:
        assert sorted((info.name, info.size) for info in store.list("runs")) == [
            ("runs/r/a.parquet", 2), ("runs/r/b/c.json", 1)
        ]
        temporary = [info.name for info in store.list("runs", temporary=True) if info.name.endswith(TEMP_SUFFIX)]
        assert len(temporary) == 1 and temporary[0].startswith("runs/r/.d.json.")
        assert store.list("nothing-here") == []
    finally:
        pending.discard()


def test_listdir_refuses_bad_entries_one_by_one(tmp_path):
    """Each entry that cannot be used is refused with its reason; the listing goes on."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.csv").write_text("a\n1\n")
    (inbox / ".hidden.csv").write_text("x")
    (inbox / "sub").mkdir()
    os.symlink("loop.csv", inbox / "loop.csv")
    (inbox / "link.csv").symlink_to(inbox / "good.csv")
    os.mkfifo(inbox / "pipe.csv")
    with open(os.path.join(os.fsencode(inbox), b"bad\xff\xfe.csv"), "w") as handle:
        handle.write("a\n1\n")
    found, refused = LocalObjectStore(tmp_path).listdir("inbox")
    assert [info.name for info in found] == ["inbox/good.csv"]
    assert sorted((entry.name, entry.reason) for entry in refused) == [
        ("bad\\xff\\xfe.csv", "the file name is not valid UTF-8: rename the file"),
        ("link.csv", "a symbolic link: copy the file into the folder instead"),
        ("loop.csv", "a symbolic link: copy the file into the folder instead"),
        ("pipe.csv", "not a regular file"),
    ]
    with pytest.raises(MissingArtifactError, match="does not exist"):
        LocalObjectStore(tmp_path).listdir("no-inbox")


def test_open_store_picks_the_backend_by_url(tmp_path):
    assert isinstance(open_store(str(tmp_path)), LocalObjectStore)
    local = open_store(f"file://{tmp_path}/")
    assert isinstance(local, LocalObjectStore) and local.root == tmp_path
    remote = open_store("gs://bucket/some/prefix/", retry_deadline=5)
    assert isinstance(remote, GcsObjectStore)  # no client until first use: nothing leaves the machine
    assert remote.url("pointers/x.json") == "gs://bucket/some/prefix/pointers/x.json"
    with pytest.raises(StorageError, match="only a local folder or gs://bucket/prefix"):
        open_store("ftp://example.org/census")
