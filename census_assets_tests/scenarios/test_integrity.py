"""Integrity of the stored artifacts under faults: crashes mid-run, concurrent runs, a full disk,
corrupted files, and (issue 16) prune, a failed publication and a rollback while runs are at work.
Run alone with `python -m pytest -m integrity`.

Whole-graph runs use small samples of the bundled table and run in children of two fork servers
(census_assets_tests.scenarios.integrity_support), each pinned to one CPU with one LightGBM thread, so two
runs side by side stay within two cores. Faults (a kill, a pause, an OSError) are injected at the
store's public seam, census_assets.storage.objects.FAULTS. One prepared storage per scenario is
shared by the module and copied (shutil.copytree) for each case; the fixtures only run and copy,
the tests assert.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from census_assets import cli as census_cli
from census_assets.core.cleaning import clean
from census_assets.core.features import Vocabulary, encode
from census_assets.core.promotion import model_version
from census_assets.core.schema import validate_source
from census_assets.core.training import TrainedModel
from census_assets.sources.common import BUNDLED_VOCABULARY, bundled_file
from census_assets.sources.files import read_file
from census_assets.storage.codecs import MODEL_CODEC, codec_for, load
from census_assets.storage.commits import (
    ArtifactKey,
    committed_manifest,
    load_committed,
    load_published,
    prune,
    run_manifest,
)
from census_assets.storage.errors import CorruptArtifactError, RegistryError
from census_assets.storage.leases import LEASE_SECONDS, read_lease
from census_assets.storage.manifests import MANIFEST_SUFFIX
from census_assets.storage.objects import FAULTS, LocalObjectStore
from census_assets.storage.registry import Registry
from census_assets_tests.scenarios.integrity_support import (
    PausedRun,
    run_graph,
    small_holdout,
    start_servers,
    summarize,
)

pytestmark = pytest.mark.integrity

# What the IO manager stores, and the Python type each is loaded as.
STORED = {
    "raw_census": pd.DataFrame,
    "clean_census": pd.DataFrame,
    "features": pd.DataFrame,
    "cv_accuracy": dict,
    "lgbm_model": TrainedModel,
    "holdout_metrics": dict,
    "drift": dict,
}
MODEL_SUFFIXES = (".vocabulary.json", ".json", ".importance.png", ".txt")


CONSOLE_SCRIPT = Path(sys.executable).parent / "census-assets"


# ---- the prepared storages ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("integrity")


@pytest.fixture(scope="module")
def holdout(workdir) -> Path:
    return small_holdout(workdir / "holdout.parquet")


@pytest.fixture(scope="module")
def servers(workdir, holdout):
    started = start_servers(workdir, holdout=holdout)
    yield started
    for server in started:
        server.close()


@pytest.fixture(scope="module")
def sources(workdir, bundled_raw) -> dict[str, Path]:
    """A and B: 2,000-row samples (B lacks categories A's bundled vocabulary has: a model fitted on
    B with `vocabulary: fit` has other features); C and D: 2,000 and 3,000 rows, for the races."""
    folder = workdir / "sources"
    folder.mkdir()
    paths = {}
    for name, rows, seed, ext in (("A", 2000, 0, "parquet"), ("B", 2000, 1, "csv"), ("C", 2000, 2, "parquet"),
                                  ("D", 3000, 3, "csv")):
        paths[name] = folder / f"{name}.{ext}"
        sample = bundled_raw.sample(rows, random_state=seed)
        sample.to_parquet(paths[name], index=False) if ext == "parquet" else sample.to_csv(paths[name], index=False)
    return paths


def expected_features(source: Path, vocabulary: Vocabulary) -> pd.DataFrame:
    """features as the pipeline must encode this source: read, validated, cleaned, encoded."""
    return encode(clean(validate_source(read_file(str(source)))), vocabulary).frame


def bundled_vocabulary() -> Vocabulary:
    return Vocabulary.load(bundled_file(BUNDLED_VOCABULARY))


def succeeded(run: dict) -> dict:
    assert run["returncode"] == 0 and run["result"] is not None, run["log"]
    assert run["result"]["success"], run["result"]["failures"]
    return run["result"]


@pytest.fixture(scope="module")
def base1(workdir, servers, sources) -> dict:
    """One run of the graph on A (bundled vocabulary): the state every crash case starts from."""
    storage = workdir / "base1"
    result = succeeded(servers[0].run(storage, sources["A"]))
    registry = Registry(LocalObjectStore(storage))
    return {
        "storage": storage,
        "run_id": result["run_id"],
        "version": registry.production()["version"],
        "vocabulary": bundled_vocabulary(),
    }


@pytest.fixture(scope="module")
def base2(workdir, servers, sources, base1) -> dict:
    """base1, then a complete run on B with `vocabulary: fit`: the reference for the crash cases
    (what a run that is not killed writes, in order) and the storage the corruption cases damage."""
    storage = workdir / "base2"
    shutil.copytree(base1["storage"], storage)
    run = servers[0].run(storage, sources["B"], vocabulary="fit")
    result = succeeded(run)
    store = LocalObjectStore(storage)
    model = load_committed(store, ArtifactKey("lgbm_model"), MODEL_CODEC)
    assert model.vocabulary != base1["vocabulary"]  # a mix of the two models' files is detectable
    assert len(model.vocabulary.feature_names) < len(base1["vocabulary"].feature_names)
    return {
        "storage": storage,
        "run_id": result["run_id"],
        "version": Registry(store).production()["version"],
        "vocabulary": model.vocabulary,
        "trace": run["trace"],
    }


# ---- checks shared by the scenarios ----------------------------------------------------------------


def same_object(a, b) -> bool:
    if isinstance(a, pd.DataFrame):
        return a.equals(b) and list(a.columns) == list(b.columns)
    if isinstance(a, TrainedModel):
        return a.booster.model_to_string() == b.booster.model_to_string() and a.vocabulary == b.vocabulary
    return a == b


def temp_files(storage: Path) -> list[Path]:
    return sorted(storage.rglob("*.tmp"))


def check_history(registry: Registry) -> list[dict]:
    """The promotion history as a chain: each record names the one before it, nothing skipped."""
    history = registry.history()
    for earlier, later in zip([None, *history], history):
        assert later["previous_record"] == (earlier["record"] if earlier else None)
        assert later["previous_version"] == (earlier["version"] if earlier else None)
        assert json.loads(registry.store.read(later["record"])) == later  # the record file itself
    return history


def published_names(done: list[str], asset: str) -> list[str]:
    """The published copies of `asset` among the object names written (not its manifest)."""
    return [
        name for name in done
        if "/" not in name and name.startswith(asset + ".") and not name.endswith(MANIFEST_SUFFIX)
    ]


def run_of(name: str) -> str:
    """The run id in `runs/<run id>/...` or `leases/<run id>/<holder>.json`."""
    return name.split("/")[1].removesuffix(".json")


def target_of(temporary: Path, storage: Path) -> str:
    """The object name a temp file (`.<name>.<32 hex digits>.tmp` beside it) was to become."""
    found = re.fullmatch(r"\.(.+)\.[0-9a-f]{32}\.tmp", temporary.name)
    assert found, temporary
    return str(temporary.with_name(found.group(1)).relative_to(storage))


def check_complete_state(storage: Path, done: list[str], base1: dict, base2: dict) -> dict:
    """After a kill: every loader sees a complete, verified state, old or new as far as the killed
    run's compare-and-swaps went, never a mix. Returns what each loader saw."""
    store = LocalObjectStore(storage)
    killed_runs = {run_of(name) for name in done if name.startswith(("runs/", "leases/"))}
    assert len(killed_runs) <= 1
    killed = next(iter(killed_runs), None)
    seen = {}
    for asset, python_type in STORED.items():
        key, codec = ArtifactKey(asset), codec_for(python_type)
        new = f"pointers/{asset}.json" in done
        manifest = committed_manifest(store, key)
        assert manifest["run_id"] == (killed if new else base1["run_id"]), asset
        committed = load_committed(store, key, codec)  # every file verified against the manifest
        if asset == "lgbm_model":
            assert committed.vocabulary == (base2["vocabulary"] if new else base1["vocabulary"])
            assert committed.booster.feature_name() == committed.vocabulary.feature_names
        previous = load_committed(store, key, codec, (base1["run_id"],))
        copies = published_names(done, asset)
        if f"{asset}{MANIFEST_SUFFIX}" in done:  # published after the pointer moved: the new one
            assert same_object(load_published(store, key, codec), committed), asset
            seen[asset] = "new"
        elif copies:
            # The publication was cut short: the copies, checked against their manifest (still the
            # previous one), are refused naming a file that does not match; the reader helper gives
            # the previous set whole, from the run files that manifest names.
            published = json.loads((storage / f"{asset}{MANIFEST_SUFFIX}").read_text())
            with pytest.raises(CorruptArtifactError, match="is not the file that was committed") as refused:
                load(store, codec, asset, published["files"])
            assert any(store.url(name) in str(refused.value) for name in copies)
            assert same_object(load_published(store, key, codec), previous), asset
            seen[asset] = "new committed, published copies torn: the previous set read"
            if asset == "lgbm_model" and "lgbm_model.txt" not in copies:
                # New vocabulary beside the old model text: even unverified, the mix is detected.
                with pytest.raises(CorruptArtifactError, match="does not match"):
                    load(store, codec, "lgbm_model", None)
        else:  # not published yet: the previous copy, whole
            assert same_object(load_published(store, key, codec), previous), asset
            seen[asset] = "new committed, old published" if new else "old"
    if killed is not None and any(name.startswith(f"leases/{killed}/") for name in done):
        # The killed run's lease is live until it runs out; it lists every asset whose pointer it moved.
        lease = read_lease(store, killed)
        assert lease.is_live(time.time())
        assert {asset for asset in STORED if f"pointers/{asset}.json" in done} <= set(lease.committed)
    registry = Registry(store)
    promoted = "production.json" in done
    pointer, model = registry.load_production()
    assert pointer["version"] == (base2["version"] if promoted else base1["version"])
    assert model.vocabulary == (base2["vocabulary"] if promoted else base1["vocabulary"])
    history = check_history(registry)
    assert [record["version"] for record in history] == [base1["version"], *([base2["version"]] if promoted else [])]
    assert (base2["version"] in registry.versions()) == (f"models/{base2['version']}/manifest.json" in done)
    seen["production"] = "new" if promoted else "old"
    seen["history"] = len(history)
    return seen


def check_after_next_run(storage: Path, result: dict, base1: dict, base2: dict) -> None:
    """The run after a crash: everything committed, published and promoted is its own, whole."""
    store = LocalObjectStore(storage)
    for asset, python_type in STORED.items():
        key, codec = ArtifactKey(asset), codec_for(python_type)
        assert committed_manifest(store, key)["run_id"] == result["run_id"], asset
        assert same_object(load_published(store, key, codec), load_committed(store, key, codec)), asset
    registry = Registry(store)
    pointer, model = registry.load_production()
    assert pointer["version"] == base2["version"] and model.vocabulary == base2["vocabulary"]
    assert [record["version"] for record in check_history(registry)] == [base1["version"], base2["version"]]


# ---- 1. crash consistency ------------------------------------------------------------------------


@dataclass(frozen=True)
class Crash:
    id: str
    pattern: str  # the object name of the write, a regular expression
    mode: str  # before (its temp file just reserved), after (committed), mid (the temp file half written)


RUN = r"^runs/[^/]+/"
VERSION = r"^models/[0-9a-f]{16}/"


def before_and_after(name: str, pattern: str) -> list[Crash]:
    return [Crash(f"{mode}-{name}", pattern, mode) for mode in ("before", "after")]


CRASHES = [
    Crash("before-lease", r"^leases/", "before"),  # the run's first write: nothing else written yet
    *before_and_after("run-features.parquet", RUN + r"features\.parquet$"),
    *(
        crash
        for suffix in MODEL_SUFFIXES
        for crash in before_and_after(f"run-lgbm_model{suffix}", RUN + "lgbm_model" + re.escape(suffix) + "$")
    ),
    *before_and_after("run-lgbm_model.manifest", RUN + r"lgbm_model\.manifest\.json$"),
    *before_and_after("pointer-lgbm_model", r"^pointers/lgbm_model\.json$"),
    Crash("after-published-features.parquet", r"^features\.parquet$", "after"),
    Crash("after-published-lgbm_model.vocabulary", r"^lgbm_model\.vocabulary\.json$", "after"),
    *before_and_after("published-lgbm_model.txt", r"^lgbm_model\.txt$"),
    *before_and_after("published-lgbm_model.manifest", r"^lgbm_model\.manifest\.json$"),
    *before_and_after("registry-model.txt", VERSION + r"model\.txt$"),
    *before_and_after("registry-manifest", VERSION + r"manifest\.json$"),
    *before_and_after("promotion-record", r"^promotions/"),
    *before_and_after("production.json", r"^production\.json$"),
    # Killed while the bytes go to disk: the temp file is left half written.
    Crash("mid-run-lgbm_model.txt", RUN + r"lgbm_model\.txt$", "mid"),
    Crash("mid-pointer-lgbm_model", r"^pointers/lgbm_model\.json$", "mid"),
    Crash("mid-registry-model.txt", VERSION + r"model\.txt$", "mid"),
    Crash("mid-production.json", r"^production\.json$", "mid"),
]
# This case also keeps a Dagster instance (DAGSTER_HOME) to look at the killed run afterwards.
INSTANCE_CASE = "mid-run-lgbm_model.txt"


def crash_case(crash: Crash, server, workdir: Path, sources: dict, base1: dict) -> dict:
    """Kill a run on B (from base1) at the crash's write; keep a copy of the storage as the kill
    left it; then run again. Only runs and copies here: the test checks what they left."""
    case = workdir / "crash" / crash.id
    storage, after_kill = case / "storage", case / "after_kill"
    shutil.copytree(base1["storage"], storage)
    home = None
    if crash.id == INSTANCE_CASE:
        home = case / "dagster_home"
        home.mkdir()
    outcome: dict = {"storage": storage, "after_kill": after_kill, "home": home}
    outcome["killed"] = server.run(storage, sources["B"], vocabulary="fit", kill=(crash.pattern, crash.mode),
                                   dagster_home=home)
    shutil.copytree(storage, after_kill)
    if home is not None:
        outcome["later"] = server.run(storage, sources["B"], selection=["holdout_metrics"], dagster_home=home)
    outcome["next"] = server.run(storage, sources["B"], vocabulary="fit", dagster_home=home)
    return outcome


@pytest.fixture(scope="module")
def crashes(workdir, servers, sources, base1) -> dict[str, dict]:
    """Every crash case, two at a time (one per fork server, one CPU each)."""
    (workdir / "crash").mkdir()
    free = list(servers)
    lock = threading.Lock()

    def one(crash: Crash) -> tuple[str, dict]:
        with lock:
            server = free.pop()
        try:
            return crash.id, crash_case(crash, server, workdir, sources, base1)
        finally:
            with lock:
                free.append(server)

    started = time.time()
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        outcomes = dict(pool.map(one, CRASHES))
    print(f"\n{len(CRASHES)} crash cases in {time.time() - started:.0f} s")
    return outcomes


def relative_temp_files(storage: Path) -> list[str]:
    return [str(path.relative_to(storage)) for path in temp_files(storage)]


@pytest.mark.parametrize("crash", CRASHES, ids=[crash.id for crash in CRASHES])
def test_a_kill_at_any_write_leaves_a_complete_state_and_the_next_run_succeeds(crash, crashes, base1, base2):
    outcome = crashes[crash.id]
    killed = outcome["killed"]
    assert killed["returncode"] == -signal.SIGKILL, f"not killed ({killed['returncode']}): {killed['log']}"
    done = killed["trace"]
    assert any(re.search(crash.pattern, name) for name in done) == (crash.mode == "after")
    leftovers = temp_files(outcome["after_kill"])
    if crash.mode == "after":
        assert leftovers == []
    else:  # only the write that was cut: its temp file beside its target, empty or half written
        [leftover] = leftovers
        assert re.search(crash.pattern, target_of(leftover, outcome["after_kill"])), leftover
        assert (leftover.stat().st_size == 0) == (crash.mode == "before")
    seen = check_complete_state(outcome["after_kill"], done, base1, base2)
    print(crash.id, seen)
    after = succeeded(outcome["next"])
    check_after_next_run(outcome["storage"], after, base1, base2)
    # The next run wrote no temp file either (and removed none: that is prune's job).
    assert relative_temp_files(outcome["storage"]) == relative_temp_files(outcome["after_kill"])


def test_a_killed_dagster_run_leaves_nothing_a_later_run_reads_as_committed(crashes, base1, base2):
    """Killed while writing lgbm_model.txt: its files and the half temp file are never read."""
    import dagster as dg

    outcome = crashes[INSTANCE_CASE]
    done = outcome["killed"]["trace"]
    killed_run = next(run_of(name) for name in done if name.startswith("runs/"))
    # The run committed features (its pointer moved), but not lgbm_model: no manifest, old pointer.
    assert "pointers/features.json" in done and "pointers/lgbm_model.json" not in done
    later = succeeded(outcome["later"])
    # A later run reading lgbm_model (from the pointer) evaluated the previous model, not the killed one.
    assert later["materialized"]["holdout_metrics"]["model_version"] == base1["version"]
    instance = dg.DagsterInstance.from_config(str(outcome["home"]))
    try:
        run = instance.get_run_by_id(killed_run)
        assert run.status == dg.DagsterRunStatus.STARTED  # it never finished: killed
        records = instance.get_records_for_run(killed_run, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
        materialized = {record.event_log_entry.dagster_event.asset_key.to_user_string() for record in records}
        assert "features" in materialized and "lgbm_model" not in materialized
    finally:
        instance.dispose()


def test_prune_clears_what_a_killed_run_left(crashes, workdir):
    """A killed run's lease is not renewed: while it would still be live, prune touches none of
    the run's files; once it has run out, the run's uncommitted files go after the grace period,
    its committed ones stay. The half-written temp file goes at once: no live writer holds it."""
    outcome = crashes[INSTANCE_CASE]
    storage = workdir / "prune"
    shutil.copytree(outcome["after_kill"], storage)
    store = LocalObjectStore(storage)
    killed_run = next(run_of(name) for name in outcome["killed"]["trace"] if name.startswith("runs/"))
    run_folder = storage / "runs" / killed_run
    uncommitted, committed = run_folder / "lgbm_model.json", run_folder / "features.parquet"
    [temporary] = relative_temp_files(storage)
    assert uncommitted.exists()

    # The lease is live: only the temp file goes (no live writer holds its flock).
    assert prune(store, keep=100, grace_seconds=0) == [temporary]
    assert uncommitted.exists() and committed.exists()

    prune(store, keep=100, grace_seconds=0, now=time.time() + LEASE_SECONDS + 1)  # the lease has run out
    assert run_manifest(store, ArtifactKey("lgbm_model"), killed_run) is None
    assert not uncommitted.exists()  # uncommitted: deleted
    assert committed.exists()  # committed: kept


# ---- 2. concurrency ------------------------------------------------------------------------------

ROUNDS = [("together", 0.0, 0.0), ("D 1 s after C", 0.0, 1.0), ("C 1 s after D", 1.0, 0.0)]


@pytest.fixture(scope="module")
def races(workdir, servers, sources) -> dict:
    """Two whole-graph runs at once (C: 2,000 rows, D: 3,000) on one storage, three rounds."""
    storage = workdir / "race"
    rounds = []
    for name, delay_c, delay_d in ROUNDS:
        def run(server, source, delay):
            time.sleep(delay)
            started = time.time()
            outcome = server.run(storage, sources[source])
            return {**outcome, "source": source, "window": (started, time.time())}

        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(run, servers[0], "C", delay_c), pool.submit(run, servers[1], "D", delay_d)]
            rounds.append((name, [future.result() for future in futures]))
    return {"storage": storage, "rounds": rounds}


# The other run promoted after this run's holdout_metrics compared against the champion: refused.
LOST_THE_PROMOTION = re.compile(
    r"the champion is \S+ but holdout_metrics compared against \S+|champion changed from \S+ to \S+ during the decision"
)


def raced(run: dict) -> dict:
    """A race's run: it succeeded, or only its promotion was refused because the other run's
    promotion landed after its holdout_metrics compared against the champion."""
    assert run["returncode"] == 0 and run["result"] is not None, run["log"]
    result = run["result"]
    if not result["success"]:
        assert list(result["failures"]) == ["production_model"], result["failures"]
        assert LOST_THE_PROMOTION.search(result["failures"]["production_model"]), result["failures"]
        assert result["restarted"] == []
    return result


def test_concurrent_runs_each_train_on_their_own_source(races, sources):
    store = LocalObjectStore(races["storage"])
    vocabulary = bundled_vocabulary()
    expected = {name: expected_features(sources[name], vocabulary) for name in ("C", "D")}
    assert len(expected["C"]) != len(expected["D"])
    for name, runs in races["rounds"]:
        (start_c, end_c), (start_d, end_d) = (run["window"] for run in runs)
        assert start_c < end_d and start_d < end_c, f"{name}: the runs did not overlap"
        for run in runs:
            result = raced(run)
            rows = len(expected[run["source"]])
            assert result["materialized"]["lgbm_model"]["training_rows"] == rows, (name, run["source"])
            stored = pd.read_parquet(races["storage"] / "runs" / result["run_id"] / "features.parquet")
            pd.testing.assert_frame_equal(stored, expected[run["source"]].reset_index(drop=True), check_like=False)
            # Downstream of the model, each run saw its own model.
            own = load_committed(store, ArtifactKey("lgbm_model"), MODEL_CODEC, (result["run_id"],))
            version = model_version(own)
            assert result["materialized"]["holdout_metrics"]["model_version"] == version
            if result["success"]:
                assert result["materialized"]["production_model"]["version"] == version


def test_concurrent_promotions_are_all_in_the_history(races):
    registry = Registry(LocalObjectStore(races["storage"]))
    history = check_history(registry)
    promotions = [
        (result["run_id"], result["materialized"]["production_model"]["version"])
        for _, runs in races["rounds"]
        for result in map(raced, runs)
        if result["success"] and not result["materialized"]["production_model"]["already_in_production"]
    ]
    assert sorted((record["run_id"], record["version"]) for record in history) == sorted(promotions)
    assert len(history) >= 2
    # Under a flock each swap runs once: no record was written outside the chain (a refused
    # promotion writes none).
    assert len(list((races["storage"] / "promotions").iterdir())) == len(history)
    assert registry.production() == history[-1]


# ---- 3. a full disk --------------------------------------------------------------------------------


def file_bytes(storage: Path, names) -> dict[str, bytes]:
    return {name: (storage / name).read_bytes() for name in names}


def relative_files(storage: Path, *folders: str) -> list[str]:
    return [str(path.relative_to(storage)) for folder in folders for path in (storage / folder).rglob("*")
            if path.is_file() and not path.name.startswith(".filler")]


def model_files(storage: Path) -> list[str]:
    """The published model and its pointer."""
    return [f"lgbm_model{suffix}" for suffix in (*MODEL_SUFFIXES, MANIFEST_SUFFIX)] + ["pointers/lgbm_model.json"]


def registry_files(storage: Path) -> list[str]:
    return ["production.json", *relative_files(storage, "models", "promotions")]


def check_failed_once(run: dict, storage: Path, reason: str) -> tuple[str, str]:
    """The run failed in one step, once, naming the object and the reason, and left no temp file.
    Returns (step, URL of the object)."""
    assert run["returncode"] == 0 and run["result"] is not None, run["log"]
    result = run["result"]
    assert not result["success"]
    assert result["restarted"] == [], f"a permanent error was retried: {result['restarted']} {result['failures']}"
    [(step, message)] = result["failures"].items()
    assert reason in message, message
    found = re.search(re.escape(f"{storage}/") + r"\S+?(?=:|\s|$)", message)
    assert found, message
    assert temp_files(storage) == []
    return step, found.group(0).removeprefix(f"{storage}/")


def check_previous_model(storage: Path, base1: dict) -> None:
    """The production model of base1, loadable (verified)."""
    pointer, production = Registry(LocalObjectStore(storage)).load_production()
    assert pointer["version"] == base1["version"] and production.vocabulary == base1["vocabulary"]


@contextmanager
def small_filesystem(mountpoint: Path, leave: int, copy_from: Path):
    """A tmpfs mounted at mountpoint, holding a copy of `copy_from`, then filled up (a hidden
    filler file) to `leave` free bytes. mount needs root: skipped, with the reason, when refused."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mountpoint)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs refused: {done.stderr.strip()}")
    try:
        shutil.copytree(copy_from, mountpoint, dirs_exist_ok=True)
        stats = os.statvfs(mountpoint)
        with open(mountpoint / ".filler", "wb") as handle:
            os.posix_fallocate(handle.fileno(), 0, stats.f_bavail * stats.f_frsize - leave)
        stats = os.statvfs(mountpoint)
        assert abs(stats.f_bavail * stats.f_frsize - leave) <= 64 * 1024
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def bytes_written_before(base2: dict, pattern: str) -> int:
    """What a run on B from base1 writes (whole 4 KiB pages) before the first object matching
    pattern (counting overwritten copies in full: more than it takes)."""
    total = 0
    for name in base2["trace"]:
        if re.search(pattern, name):
            return total
        total += -(-(base2["storage"] / name).stat().st_size // 4096) * 4096
    raise AssertionError(pattern)


def test_a_full_disk_fails_the_run_once_naming_the_object(tmp_path, servers, sources, base1, base2):
    """The whole storage on a small file system with room for the run's files up to half of the
    model's JSON dump: lgbm_model fails, once; the previous model stays published and promoted."""
    dump = (base2["storage"] / "lgbm_model.json").stat().st_size
    leave = bytes_written_before(base2, RUN + r"lgbm_model\.json$") + dump // 2
    with small_filesystem(tmp_path / "storage", leave, base1["storage"]) as storage:
        before = file_bytes(storage, model_files(storage) + registry_files(storage))
        run = servers[0].run(storage, sources["B"], vocabulary="fit")
        step, name = check_failed_once(run, storage, "no space left on the device")
        assert step == "lgbm_model" and re.fullmatch(RUN + r"lgbm_model\.json", name), (step, name)
        assert file_bytes(storage, before) == before  # the model set published before, intact
        model = load_published(LocalObjectStore(storage), ArtifactKey("lgbm_model"), MODEL_CODEC)
        assert model.vocabulary == base1["vocabulary"]
        check_previous_model(storage, base1)


def test_a_full_registry_disk_fails_the_promotion_once_naming_the_object(tmp_path, servers, sources, base1):
    """models/ on its own small file system (256 KiB free): the new version cannot be written;
    production_model fails once naming the file; production and the history are unchanged."""
    storage = tmp_path / "storage"
    shutil.copytree(base1["storage"], storage, ignore=shutil.ignore_patterns("models"))
    with small_filesystem(storage / "models", 256 * 1024, base1["storage"] / "models"):
        before = file_bytes(storage, registry_files(storage))
        run = servers[0].run(storage, sources["B"], vocabulary="fit")
        step, name = check_failed_once(run, storage, "no space left on the device")
        assert step == "production_model" and re.fullmatch(VERSION + r"model\.json", name), (step, name)
        assert file_bytes(storage, before) == before
        check_previous_model(storage, base1)
        assert [record["version"] for record in check_history(Registry(LocalObjectStore(storage)))] == [
            base1["version"]
        ]


def test_a_file_size_limit_fails_the_run_once_naming_the_object(workdir, servers, sources, base1, base2):
    """RLIMIT_FSIZE in the run's process (CPython ignores SIGXFSZ: writes fail with EFBIG)."""
    storage = workdir / "fsize"
    shutil.copytree(base1["storage"], storage)
    before = file_bytes(storage, model_files(storage) + registry_files(storage))
    limit = 1 << 20  # 1 MiB: the model's JSON dump (about 1.8 MB) is the first file above it
    assert (base2["storage"] / "lgbm_model.json").stat().st_size > limit
    run = servers[0].run(storage, sources["B"], vocabulary="fit", fsize=limit, quiet=True)
    step, name = check_failed_once(run, storage, "file too large")
    assert step == "lgbm_model" and re.fullmatch(RUN + r"lgbm_model\.json", name), (step, name)
    assert file_bytes(storage, before) == before
    check_previous_model(storage, base1)


# ---- 4. corruption ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    id: str
    asset: str | None  # the run artifact (None: the registry)
    suffix: str  # of the run's file; "pointer" for the asset's pointer
    downstream: str  # the asset whose in-process run loads it


KINDS = [
    Kind("raw_census.parquet", "raw_census", ".parquet", "clean_census"),
    Kind("clean_census.parquet", "clean_census", ".parquet", "features"),
    Kind("features.parquet", "features", ".parquet", "cv_accuracy"),
    Kind("cv_accuracy.json", "cv_accuracy", ".json", "lgbm_model"),
    Kind("lgbm_model.txt", "lgbm_model", ".txt", "holdout_metrics"),
    Kind("lgbm_model.vocabulary.json", "lgbm_model", ".vocabulary.json", "holdout_metrics"),
    Kind("lgbm_model.json", "lgbm_model", ".json", "holdout_metrics"),
    Kind("pointers-features.json", "features", "pointer", "cv_accuracy"),
    Kind("registry-model.txt", None, "model.txt", "scored_census"),
    Kind("production.json", None, "production.json", "scored_census"),
]
DAMAGES = ("truncated", "garbage", "swapped")


def damaged_name(kind: Kind, store: LocalObjectStore, registry: Registry) -> str:
    if kind.asset is None:
        return registry.model_name(registry.production()["version"]) + ".txt" if kind.suffix == "model.txt" \
            else "production.json"
    key = ArtifactKey(kind.asset)
    return key.pointer if kind.suffix == "pointer" else committed_manifest(store, key)["stem"] + kind.suffix


def other_file(kind: Kind, name: str, storage: Path, base1: dict, other_registry: Path) -> bytes:
    """The same kind of file from another run / version / asset / registry."""
    if kind.suffix == "pointer":  # another asset's pointer
        return (storage / "pointers" / "clean_census.json").read_bytes()
    if kind.suffix == "production.json":  # the pointer of another registry (a version not here)
        return (other_registry / "production.json").read_bytes()
    if kind.suffix == "model.txt":  # another version's model
        return (storage / Registry.prefix(base1["version"]) / "model.txt").read_bytes()
    return (storage / re.sub(r"^runs/[^/]+/", f"runs/{base1['run_id']}/", name)).read_bytes()


def damage(path: Path, how: str, other: bytes) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(np.random.default_rng(len(data)).integers(0, 256, len(data), dtype=np.uint8).tobytes())
    else:
        assert other != data
        path.write_bytes(other)


@pytest.fixture(scope="module")
def other_registry(workdir) -> Path:
    """A registry elsewhere, with one tiny promoted model: its production.json names a version
    this storage lacks."""
    import lightgbm as lgb

    root = workdir / "other_registry"
    registry = Registry(LocalObjectStore(root))
    vocabulary = bundled_vocabulary()
    rng = np.random.default_rng(0)
    X = rng.random((100, len(vocabulary.feature_names)))
    booster = lgb.train({"verbose": -1, "num_threads": 1}, lgb.Dataset(X, X[:, 0] > 0.5,
                        feature_name=vocabulary.feature_names), 2)
    model = TrainedModel(booster, vocabulary)
    version = model_version(model)
    registry.publish(version, model, {})
    registry.promote(version, {"cv_accuracy": 0.5}, run_id=None)
    return root


def predict_args(storage: Path, rows: Path, output: Path) -> list[str]:
    return ["predict", "--input", str(rows), "--output", str(output), "--storage", str(storage)]


@pytest.fixture(scope="module")
def rows(workdir, bundled_raw) -> Path:
    path = workdir / "rows.csv"
    bundled_raw.head(50).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("kind", KINDS, ids=[kind.id for kind in KINDS])
def test_a_corrupt_artifact_is_refused_by_every_loader_naming_the_file(
    kind, how, tmp_path, base1, base2, sources, holdout, other_registry, rows, capsys
):
    storage = tmp_path / "storage"
    shutil.copytree(base2["storage"], storage)
    store = LocalObjectStore(storage)
    registry = Registry(store)
    name = damaged_name(kind, store, registry)
    url = store.url(name)
    damage(storage / name, how, other_file(kind, name, storage, base1, other_registry))

    if kind.asset is not None:
        # load_committed, verified against the manifest (the pointer itself when that is damaged).
        with pytest.raises(CorruptArtifactError) as refused:
            load_committed(store, ArtifactKey(kind.asset), codec_for(STORED[kind.asset]))
        assert url in str(refused.value)
    else:
        with pytest.raises((RegistryError, CorruptArtifactError)) as refused:
            registry.load_production()
        assert url in str(refused.value)

    # The IO manager (or the registry, for scored_census) in a downstream in-process run: one
    # attempt, failed with the file named.
    result = summarize(run_graph(storage, sources["A"], selection=[kind.downstream], holdout=holdout))
    assert not result["success"]
    assert list(result["failures"]) == [kind.downstream]
    assert url in result["failures"][kind.downstream], result["failures"]
    assert result["restarted"] == [], f"retried a permanent error: {result['restarted']}"

    # The CLI serves the production model: refused when the registry is damaged, unaffected otherwise.
    output = tmp_path / "scored.csv"
    code = census_cli.main(predict_args(storage, rows, output))
    err = capsys.readouterr().err
    if kind.asset is None:
        assert code == 2 and url in err and not output.exists(), err
    else:
        assert code == 0, err


def test_a_truncated_registry_model_never_reaches_lightgbm(tmp_path, base2, rows):
    """`census-assets predict` on a truncated model.txt: an error naming it, not a SIGABRT."""
    storage = tmp_path / "storage"
    shutil.copytree(base2["storage"], storage)
    name = f"models/{base2['version']}/model.txt"
    path = storage / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), *predict_args(storage, rows, tmp_path / "out.csv")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != -signal.SIGABRT
    assert done.returncode == 2 and f"{storage}/{name}" in done.stderr, done.stderr


TRUNCATIONS_SCRIPT = r"""
import hashlib, json, sys
from pathlib import Path
from census_assets.storage.errors import CorruptArtifactError
from census_assets.storage.objects import LocalObjectStore
from census_assets.storage.registry import Registry

storage, version = Path(sys.argv[1]), sys.argv[2]
registry = Registry(LocalObjectStore(storage))
text_path, manifest_path = storage / "models" / version / "model.txt", storage / "models" / version / "manifest.json"
text, manifest = text_path.read_bytes(), json.loads(manifest_path.read_text())
whole = registry.load(version).booster.model_to_string()
marks = [text.find(m) for m in (b"\nTree=0\n", b"\nend of trees\n", b"\nparameters:\n", b"\nend of parameters\n",
                                b"\npandas_categorical:")]
model_end = marks[3] + len(b"\nend of parameters\n")
cuts = sorted({*range(0, len(text), max(1, len(text) // 60)), *(m + d for m in marks for d in (-1, 0, 1, 5)),
               len(text) - 1, len(text) - 2})
outcome = {"refused": 0, "same model": 0, "other model": []}
for cut in cuts:
    truncated = text[:cut]
    text_path.write_bytes(truncated)
    # The manifest agrees with the truncated file: only the model check stands between it and LightGBM.
    manifest["files"]["model.txt"] = hashlib.sha256(truncated).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    try:
        loaded = registry.load(version)
    except CorruptArtifactError as error:
        assert str(text_path) in str(error), error
        outcome["refused"] += 1
    else:
        # Only the pandas_categorical trailer (after the parameters) may be cut without a refusal,
        # and only when that loses nothing (this model's is null: it reads numeric arrays).
        if cut >= model_end and loaded.booster.model_to_string() == whole:
            outcome["same model"] += 1
        else:
            outcome["other model"].append(cut)
print(json.dumps({"cuts": len(cuts), **outcome}))
"""


def test_truncated_model_text_is_refused_before_lightgbm_at_every_cut(tmp_path, base2):
    """Even with a manifest that agrees with the truncated file, LightGBM never gets a truncated
    model text: each cut is refused as an error (a subprocess, so an abort would show as -6)."""
    storage = tmp_path / "storage"
    shutil.copytree(base2["storage"], storage)
    done = subprocess.run(
        [sys.executable, "-c", TRUNCATIONS_SCRIPT, str(storage), base2["version"]],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode != -signal.SIGABRT, "LightGBM aborted on a truncated model text"
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["other model"] == [], summary  # cuts that LightGBM loaded as some other model
    assert summary["refused"] + summary["same model"] == summary["cuts"] and summary["refused"] > 60, summary



# ---- 5. prune, publication and promotion while runs are at work (issue 16) -------------------------


def run_folders(storage: Path) -> set[str]:
    return {path.name for path in (storage / "runs").iterdir()} if (storage / "runs").exists() else set()


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def own_model(storage: Path, run_id: str) -> TrainedModel:
    """The lgbm_model `run_id` committed, read from its own run folder."""
    return load_committed(LocalObjectStore(storage), ArtifactKey("lgbm_model"), MODEL_CODEC, (run_id,))


def lease_ran_out(storage: Path, run_id: str) -> None:
    """As if the run had ended more than a lease ago: each of its lease records expired."""
    for record in (storage / "leases" / run_id).iterdir():
        record.write_text(json.dumps({**json.loads(record.read_text()), "expires": time.time() - 1}))


def test_prune_during_a_run_leaves_the_run_its_own_data(workdir, servers, sources, base1):
    """16.1: run A (source C) stands still after committing (and publishing) features; run B (source D, more rows)
    finishes on the same storage; `census-assets prune --keep 1` (default grace); A resumes. A's
    lease is live, so prune deletes nothing of A: A trains on its own rows and promotes its own
    model under its own run (it used to train on B's rows and promote B's model)."""
    storage = workdir / "prune_during_run"
    shutil.copytree(base1["storage"], storage)
    lease_ran_out(storage, base1["run_id"])
    rows = {name: len(expected_features(sources[name], bundled_vocabulary())) for name in ("C", "D")}
    assert rows["C"] != rows["D"]
    with PausedRun(servers[0], storage, sources["C"], r"^features\.manifest\.json$") as run_a:
        run_a.wait_paused()
        [a_run] = run_folders(storage) - {base1["run_id"]}
        b = succeeded(servers[1].run(storage, sources["D"]))
        a_files = files_under(storage / "runs" / a_run)
        assert census_cli.main(["prune", "--keep", "1", "--storage", str(storage)]) == 0
        assert files_under(storage / "runs" / a_run) == a_files  # nothing of the running run
        assert files_under(storage / "runs" / base1["run_id"]) == {}  # superseded, finished: pruned
        a = succeeded(run_a.resume())
    assert a["run_id"] == a_run
    assert a["materialized"]["lgbm_model"]["training_rows"] == rows["C"]
    assert b["materialized"]["lgbm_model"]["training_rows"] == rows["D"]
    pd.testing.assert_frame_equal(pd.read_parquet(storage / "runs" / a_run / "features.parquet"),
                                  expected_features(sources["C"], bundled_vocabulary()).reset_index(drop=True))
    version_a = model_version(own_model(storage, a_run))
    assert version_a != model_version(own_model(storage, b["run_id"]))
    assert a["materialized"]["holdout_metrics"]["model_version"] == version_a
    production = Registry(LocalObjectStore(storage)).production()
    assert (production["run_id"], production["version"]) == (a_run, version_a)


def test_a_run_whose_own_output_was_pruned_refuses_instead_of_reading_another_runs(workdir, servers, sources,
                                                                                  base1):
    """16.1, the other way out: a run that froze past its lease (prune is told the time is later)
    has its superseded commits pruned; when it resumes, it finds its own features gone and refuses,
    naming them, instead of reading the pointer (B's features). It never trains; B stays."""
    storage = workdir / "pruned_under_a_run"
    shutil.copytree(base1["storage"], storage)
    store = LocalObjectStore(storage)
    with PausedRun(servers[0], storage, sources["C"], r"^features\.manifest\.json$") as run_a:
        run_a.wait_paused()
        [a_run] = run_folders(storage) - {base1["run_id"]}
        b = succeeded(servers[1].run(storage, sources["D"]))
        deleted = prune(store, keep=1, grace_seconds=24 * 3600, now=time.time() + LEASE_SECONDS + 1)
        assert f"runs/{a_run}/features.parquet" in deleted
        a = run_a.resume()
    assert a["returncode"] == 0 and a["result"] is not None, a["log"]
    result = a["result"]
    assert not result["success"] and "cv_accuracy" in result["failures"]
    assert f"run {a_run} committed features" in result["failures"]["cv_accuracy"]
    # Every step that read an output of A's (cv_accuracy; drift's checks read drift) refused.
    for step, message in result["failures"].items():
        assert f"run {a_run} committed" in message and "refusing to read another run's commit" in message, step
    assert result["restarted"] == []
    assert "lgbm_model" not in result["materialized"]
    assert committed_manifest(store, ArtifactKey("lgbm_model"))["run_id"] == b["run_id"]
    assert Registry(store).production()["run_id"] == b["run_id"]


def test_prune_with_no_grace_during_a_write_cannot_break_the_commit(workdir, servers, sources, base1):
    """16.2: a run stands still between writing lgbm_model.txt and committing it (renaming its temp
    file into place); `census-assets prune --keep 1 --grace-hours 0` runs then. The temp file is
    held by a live writer and the run's lease is live: nothing of it goes, and the commit names
    files that are all there."""
    storage = workdir / "grace_zero"
    shutil.copytree(base1["storage"], storage)
    with PausedRun(servers[0], storage, sources["C"], RUN + r"lgbm_model\.txt$", point="committing") as run:
        name = run.wait_paused()
        run_id = run_of(name)
        held = relative_temp_files(storage)
        assert len(held) == 1 and re.search(RUN + r"lgbm_model\.txt$", target_of(storage / held[0], storage))
        before = files_under(storage / "runs" / run_id)
        assert census_cli.main(["prune", "--keep", "1", "--grace-hours", "0", "--storage", str(storage)]) == 0
        assert files_under(storage / "runs" / run_id) == before  # the temp file included
        result = succeeded(run.resume())
    store = LocalObjectStore(storage)
    manifest = committed_manifest(store, ArtifactKey("lgbm_model"))
    assert manifest["run_id"] == result["run_id"] == run_id
    assert all((storage / name).exists() for name in manifest["files"])
    assert model_version(load_committed(store, ArtifactKey("lgbm_model"), MODEL_CODEC)) == \
        result["materialized"]["holdout_metrics"]["model_version"]
    assert temp_files(storage) == []


def failing_publication(pattern: str):
    """A FAULTS hook: the write of a published copy matching `pattern` fails as on a full disk."""

    def hook(point: str, name: str, temporary: Path | None) -> None:
        if point == "committing" and re.search(pattern, name):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)

    return hook


def test_a_failed_publication_keeps_the_commit_and_dagster_agrees(workdir, sources, holdout, base1):
    """16.3 and 16.4: writing the published lgbm_model.txt fails (no space) after the commit.
    The step succeeds, says the copies were not refreshed (metadata and a warning), and what
    Dagster shows as the latest lgbm_model is what the pointer serves and what holdout_metrics
    (in this run and a later one) evaluates. The published set is now mixed (the new vocabulary
    beside the old model text); the reader helper returns the previous set whole, and refuses
    once the run files it copies are gone."""
    import dagster as dg

    storage = workdir / "failed_publication"
    shutil.copytree(base1["storage"], storage)
    store, key = LocalObjectStore(storage), ArtifactKey("lgbm_model")
    instance = dg.DagsterInstance.ephemeral()
    with FAULTS.installed(failing_publication(r"^lgbm_model\.txt$")):
        result = run_graph(storage, sources["B"], vocabulary="fit", instance=instance, holdout=holdout)
    summary = summarize(result)
    assert summary["success"], summary["failures"]
    metadata = summary["materialized"]["lgbm_model"]
    assert metadata["published"] is False and "no space left on the device" in metadata["publication_error"]
    assert all(summary["materialized"][asset]["published"] for asset in ("features", "holdout_metrics"))
    warnings = [entry.user_message for entry in instance.all_logs(summary["run_id"])
                if "published copies were not refreshed" in entry.user_message]
    assert len(warnings) == 1 and "no space left on the device" in warnings[0]

    new = own_model(storage, summary["run_id"])
    assert committed_manifest(store, key)["run_id"] == summary["run_id"]
    assert instance.get_latest_materialization_event(dg.AssetKey("lgbm_model")).run_id == summary["run_id"]
    assert summary["materialized"]["holdout_metrics"]["model_version"] == model_version(new)
    later = summarize(run_graph(storage, sources["B"], selection=["holdout_metrics"], instance=instance,
                                holdout=holdout))
    assert later["success"] and later["materialized"]["holdout_metrics"]["model_version"] == model_version(new)

    # The published set is mixed: the new vocabulary, the old model text, the old manifest.
    assert (storage / "lgbm_model.vocabulary.json").read_bytes() == \
        (storage / "runs" / summary["run_id"] / "lgbm_model.vocabulary.json").read_bytes()
    with pytest.raises(CorruptArtifactError, match="does not match"):
        load(store, MODEL_CODEC, "lgbm_model", None)
    assert same_object(load_published(store, key, MODEL_CODEC), own_model(storage, base1["run_id"]))
    assert temp_files(storage) == []
    shutil.rmtree(storage / "runs" / base1["run_id"])
    with pytest.raises(CorruptArtifactError, match="are not one consistent set") as refused:
        load_published(store, key, MODEL_CODEC)
    assert store.url(key.pointer) in str(refused.value)


def test_a_rollback_during_a_promotion_is_kept(workdir, servers, sources, base1, base2):
    """16.5: production_model decides against champion v2 and stands still once the challenger's
    version is written; `census-assets rollback` to v1 lands then. The promotion is not made: the
    step fails (once) with "champion changed from v2 to v1 during the decision", and production
    stays on the rollback."""
    storage = workdir / "rollback_during_promotion"
    shutil.copytree(base2["storage"], storage)
    registry = Registry(LocalObjectStore(storage))
    v1, v2 = base1["version"], base2["version"]
    assert registry.production()["version"] == v2
    with PausedRun(servers[0], storage, sources["C"], VERSION + r"manifest\.json$") as run:
        challenger = run.wait_paused().split("/")[1]
        assert challenger not in (v1, v2)
        assert census_cli.main(["rollback", "--version", v1, "--reason", "during a promotion",
                                "--storage", str(storage)]) == 0
        outcome = run.resume()
    assert outcome["returncode"] == 0 and outcome["result"] is not None, outcome["log"]
    result = outcome["result"]
    assert not result["success"] and list(result["failures"]) == ["production_model"], result["failures"]
    assert f"champion changed from {v2} to {v1} during the decision" in result["failures"]["production_model"]
    assert result["restarted"] == []
    production = registry.production()
    assert (production["action"], production["version"], production["reason"]) == ("rollback", v1, "during a promotion")
    assert [(record["action"], record["version"]) for record in check_history(registry)] == [
        ("promote", v1), ("promote", v2), ("rollback", v1)
    ]
    assert challenger in registry.versions()  # published, never promoted


def test_prune_removes_abandoned_temp_files_anywhere(crashes, tmp_path):
    """16.9: a write killed outside runs/ (a pointer, a published copy, a registry version, a
    promotion record, production.json, a lease) leaves a temp file; prune removes each once it is
    older than the grace period, and nothing else (the killed run's lease is live)."""
    cases = [crash.id for crash in CRASHES if crash.mode != "after"]
    found = {}
    for case in cases:
        storage = Path(shutil.copytree(crashes[case]["after_kill"], tmp_path / case))
        [temporary] = relative_temp_files(storage)
        found[case] = target_of(storage / temporary, storage)
        if found[case].startswith("runs/"):
            continue
        before = files_under(storage)
        store = LocalObjectStore(storage)
        assert prune(store, keep=100, grace_seconds=24 * 3600) == []  # younger than the grace period: kept
        old = time.time() - 25 * 3600
        os.utime(storage / temporary, (old, old))
        assert census_cli.main(["prune", "--keep", "100", "--storage", str(storage)]) == 0
        assert temp_files(storage) == []
        assert files_under(storage) == {name: data for name, data in before.items() if name != temporary}
    outside = {name.split("/")[0] for name in found.values()}
    assert {"pointers", "lgbm_model.txt", "lgbm_model.manifest.json", "models", "promotions", "production.json",
            "leases"} <= outside, found


@pytest.mark.parametrize("how", ["run file deleted", "pointer deleted", ".locks is a file"])
def test_a_missing_committed_file_fails_the_step_once(how, tmp_path, base2, sources, holdout):
    """16.11: a committed file that is gone does not come back by waiting: the step that needs it
    fails once (no retries), naming it."""
    storage = Path(shutil.copytree(base2["storage"], tmp_path / "storage"))
    if how == "run file deleted":
        missing = storage / "runs" / base2["run_id"] / "features.parquet"
        missing.unlink()
        expected = f"cannot read {missing}: it does not exist"
    elif how == "pointer deleted":
        (storage / "pointers" / "features.json").unlink()
        expected = f"no committed features in {storage}: materialise it first"
    else:
        shutil.rmtree(storage / ".locks")
        (storage / ".locks").write_text("not a folder")
        expected = f"cannot lock {storage}/pointers/cv_accuracy.json: a file stands where a folder belongs"
    result = summarize(run_graph(storage, sources["A"], selection=["cv_accuracy"], holdout=holdout))
    assert not result["success"] and list(result["failures"]) == ["cv_accuracy"]
    assert expected in result["failures"]["cv_accuracy"], result["failures"]
    assert result["restarted"] == []  # the storage retry policy was not applied
