"""Integrity of the stored artifacts under faults: crashes mid-run, concurrent runs, a full disk and
corrupted files. Run alone with `python -m pytest -m integrity`.

Whole-graph runs use small samples of the bundled table and run in children of two fork servers
(census_assets_tests.integrity_support), each pinned to one CPU with one LightGBM thread, so two
runs side by side stay within two cores. One prepared storage per scenario is shared by the module
and copied (shutil.copytree) for each case.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from census_assets import cli as census_cli
from census_assets.artifacts import (
    CODECS,
    MANIFEST_SUFFIX,
    ArtifactKey,
    ArtifactStore,
    CorruptArtifactError,
    committed_manifest,
    load,
    load_committed,
    load_production,
    load_published,
    prune,
    run_manifest,
    write_files,
)
from census_assets.core.cleaning import clean
from census_assets.core.features import Vocabulary, encode
from census_assets.core.registry import Registry, RegistryError, model_version
from census_assets.core.schema import validate_source
from census_assets.core.training import TrainedModel
from census_assets.sources.common import BUNDLED_VOCABULARY, bundled_file
from census_assets.sources.files import read_file
from census_assets_tests.integrity_support import run_graph, start_servers, summarize

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


def codec_of(python_type: type):
    return CODECS[next(known for known in CODECS if issubclass(python_type, known))]
CONSOLE_SCRIPT = Path(sys.executable).parent / "census-assets"


# ---- the prepared storages ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("integrity")


@pytest.fixture(scope="module")
def servers(workdir):
    started = start_servers(workdir)
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
    registry = Registry(ArtifactStore(str(storage)))
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
    store = ArtifactStore(str(storage))
    model = load_committed(store, ArtifactKey("lgbm_model"), CODECS[TrainedModel])
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
        assert json.loads(registry.store.read_bytes(later["record"])) == later  # the record file itself
    return history


def published_names(done: list[str], asset: str) -> list[str]:
    """The published copies of `asset` among the object names written (not its manifest)."""
    return [
        name for name in done
        if "/" not in name and name.startswith(asset + ".") and not name.endswith(MANIFEST_SUFFIX)
    ]


def check_complete_state(storage: Path, done: list[str], base1: dict, base2: dict) -> dict:
    """After a kill: every loader sees a complete, verified state, old or new as far as the killed
    run's compare-and-swaps went, never a mix. Returns what each loader saw."""
    store = ArtifactStore(str(storage))
    killed_runs = {name.split("/")[1] for name in done if name.startswith("runs/")}
    assert len(killed_runs) <= 1
    killed = next(iter(killed_runs), None)
    seen = {}
    for asset, python_type in STORED.items():
        key, codec = ArtifactKey(asset), codec_of(python_type)
        new = f"pointers/{asset}.json" in done
        manifest = committed_manifest(store, key)
        assert manifest["run_id"] == (killed if new else base1["run_id"]), asset
        committed = load_committed(store, key, codec)  # every file verified against the manifest
        if asset == "lgbm_model":
            assert committed.vocabulary == (base2["vocabulary"] if new else base1["vocabulary"])
            assert committed.booster.feature_name() == committed.vocabulary.feature_names
        copies = published_names(done, asset)
        if f"{asset}{MANIFEST_SUFFIX}" in done:  # published after the pointer moved: the new one
            assert same_object(load_published(store, key, python_type), committed), asset
            seen[asset] = "new"
        elif copies:  # the publication was cut short: refused, with the URL of a file that does not match
            with pytest.raises(CorruptArtifactError, match="is not the file that was committed") as refused:
                load_published(store, key, python_type)
            assert any(store.url(name) in str(refused.value) for name in copies)
            seen[asset] = "new committed, published copy torn: refused"
            if asset == "lgbm_model" and "lgbm_model.txt" not in copies:
                # New vocabulary beside the old model text: even unverified, the mix is detected.
                with pytest.raises(CorruptArtifactError, match="does not match"):
                    load(store, codec, "lgbm_model", None)
        else:  # not published yet: the previous copy, whole
            previous = load_committed(store, key, codec, (base1["run_id"],))
            assert same_object(load_published(store, key, python_type), previous), asset
            seen[asset] = "new committed, old published" if new else "old"
    registry = Registry(store)
    promoted = "production.json" in done
    pointer, model = load_production(registry)
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
    store = ArtifactStore(str(storage))
    for asset, python_type in STORED.items():
        key, codec = ArtifactKey(asset), codec_of(python_type)
        assert committed_manifest(store, key)["run_id"] == result["run_id"], asset
        assert same_object(load_published(store, key, python_type), load_committed(store, key, codec)), asset
    registry = Registry(store)
    pointer, model = load_production(registry)
    assert pointer["version"] == base2["version"] and model.vocabulary == base2["vocabulary"]
    assert [record["version"] for record in check_history(registry)] == [base1["version"], base2["version"]]


# ---- 1. crash consistency ------------------------------------------------------------------------


@dataclass(frozen=True)
class Crash:
    id: str
    pattern: str  # the object name of the write, a regular expression
    mode: str  # before, after, mid (the temp file half written)


RUN = r"^runs/[^/]+/"
VERSION = r"^models/[0-9a-f]{16}/"


def before_and_after(name: str, pattern: str) -> list[Crash]:
    return [Crash(f"{mode}-{name}", pattern, mode) for mode in ("before", "after")]


CRASHES = [
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


def crash_case(crash: Crash, server, workdir: Path, sources: dict, base1: dict, base2: dict) -> dict:
    storage = workdir / "crash" / crash.id
    shutil.copytree(base1["storage"], storage)
    home = None
    if crash.id == INSTANCE_CASE:
        home = workdir / "crash" / "dagster_home"
        home.mkdir()
    outcome: dict = {"storage": storage, "home": home}
    try:
        killed = server.run(storage, sources["B"], vocabulary="fit", kill=(crash.pattern, crash.mode),
                            dagster_home=home)
        assert killed["returncode"] == -signal.SIGKILL, f"not killed ({killed['returncode']}): {killed['log']}"
        done = outcome["done"] = killed["trace"]
        target = next(name for name in base2["trace"] if re.search(crash.pattern, name))
        assert any(re.search(crash.pattern, name) for name in done) == (crash.mode == "after"), target
        leftovers = temp_files(storage)
        if crash.mode == "mid":  # only the write that was cut: a half temp file beside its target
            [leftover] = leftovers
            assert leftover.name.startswith("." + target.rsplit("/", 1)[-1] + ".")
        else:
            assert leftovers == []
        outcome["seen"] = check_complete_state(storage, done, base1, base2)
        if home is not None:
            outcome["later"] = server.run(storage, sources["B"], selection=["holdout_metrics"], dagster_home=home)
        after = server.run(storage, sources["B"], vocabulary="fit", dagster_home=home)
        outcome["next"] = succeeded(after)
        check_after_next_run(storage, outcome["next"], base1, base2)
        assert temp_files(storage) == leftovers  # the next run wrote none either
    except BaseException:
        outcome["error"] = traceback.format_exc()
    return outcome


@pytest.fixture(scope="module")
def crashes(workdir, servers, sources, base1, base2) -> dict[str, dict]:
    """Every crash case, two at a time (one per fork server, one CPU each)."""
    (workdir / "crash").mkdir()
    free = list(servers)
    lock = threading.Lock()

    def one(crash: Crash) -> tuple[str, dict]:
        with lock:
            server = free.pop()
        try:
            return crash.id, crash_case(crash, server, workdir, sources, base1, base2)
        finally:
            with lock:
                free.append(server)

    started = time.time()
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        outcomes = dict(pool.map(one, CRASHES))
    print(f"\n{len(CRASHES)} crash cases in {time.time() - started:.0f} s")
    for crash in CRASHES:
        outcome = outcomes[crash.id]
        seen = outcome.get("seen", {})
        shown = " ".join(f"{name}={seen[name]}" for name in ("features", "lgbm_model", "production", "history")
                         if name in seen)
        cpu = (outcome.get("next") or {}).get("cpu_seconds", 0.0)
        print(f"  {crash.id:<40} {'FAILED' if 'error' in outcome else 'ok'}  {shown}  (next run {cpu:.1f} s CPU)")
    return outcomes


@pytest.mark.parametrize("crash", CRASHES, ids=[crash.id for crash in CRASHES])
def test_a_kill_at_any_write_leaves_a_complete_state_and_the_next_run_succeeds(crash, crashes):
    outcome = crashes[crash.id]
    if "error" in outcome:
        pytest.fail(outcome["error"], pytrace=False)


def test_a_killed_dagster_run_leaves_nothing_a_later_run_reads_as_committed(crashes, base1, base2):
    """Killed while writing lgbm_model.txt: its files and the half temp file are never read."""
    import dagster as dg

    outcome = crashes[INSTANCE_CASE]
    if "error" in outcome:
        pytest.fail(outcome["error"], pytrace=False)
    done = outcome["done"]
    killed_run = next(name.split("/")[1] for name in done if name.startswith("runs/"))
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
    """A killed run's uncommitted files, its half-written temp file included, go after the grace
    period (prune's docstring: "uncommitted objects older than the grace period (failed or killed
    runs) go")."""
    outcome = crashes[INSTANCE_CASE]
    if "error" in outcome:
        pytest.fail(outcome["error"], pytrace=False)
    storage = workdir / "prune"
    shutil.copytree(outcome["storage"], storage)
    store = ArtifactStore(str(storage))
    killed_run = next(name.split("/")[1] for name in outcome["done"] if name.startswith("runs/"))
    prune(store, keep=100, grace_seconds=0)
    assert run_manifest(store, ArtifactKey("lgbm_model"), killed_run) is None
    assert not (storage / "runs" / killed_run / "lgbm_model.json").exists()  # uncommitted: deleted
    assert (storage / "runs" / killed_run / "features.parquet").exists()  # committed: kept
    assert temp_files(storage) == [], "prune left the killed run's temp file"


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


def test_concurrent_runs_each_train_on_their_own_source(races, sources):
    store = ArtifactStore(str(races["storage"]))
    vocabulary = bundled_vocabulary()
    expected = {name: expected_features(sources[name], vocabulary) for name in ("C", "D")}
    assert len(expected["C"]) != len(expected["D"])
    for name, runs in races["rounds"]:
        (start_c, end_c), (start_d, end_d) = (run["window"] for run in runs)
        assert start_c < end_d and start_d < end_c, f"{name}: the runs did not overlap"
        for run in runs:
            result = succeeded(run)
            rows = len(expected[run["source"]])
            assert result["materialized"]["lgbm_model"]["training_rows"] == rows, (name, run["source"])
            stored = pd.read_parquet(races["storage"] / "runs" / result["run_id"] / "features.parquet")
            pd.testing.assert_frame_equal(stored, expected[run["source"]].reset_index(drop=True), check_like=False)
            # Downstream of the model, each run saw its own model.
            own = load_committed(store, ArtifactKey("lgbm_model"), CODECS[TrainedModel], (result["run_id"],))
            version = model_version(own)
            assert result["materialized"]["holdout_metrics"]["model_version"] == version
            assert result["materialized"]["production_model"]["version"] == version


def test_concurrent_promotions_are_all_in_the_history(races):
    registry = Registry(ArtifactStore(str(races["storage"])))
    history = check_history(registry)
    promotions = [
        (run["result"]["run_id"], run["result"]["materialized"]["production_model"]["version"])
        for _, runs in races["rounds"]
        for run in runs
        if not run["result"]["materialized"]["production_model"]["already_in_production"]
    ]
    assert sorted((record["run_id"], record["version"]) for record in history) == sorted(promotions)
    assert len(history) >= 2
    # Under a flock each swap runs once: no record was written outside the chain.
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
    pointer, production = load_production(Registry(ArtifactStore(str(storage))))
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
        model = load_published(ArtifactStore(str(storage)), ArtifactKey("lgbm_model"), TrainedModel)
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
        assert [record["version"] for record in check_history(Registry(ArtifactStore(str(storage))))] == [
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


def damaged_name(kind: Kind, store: ArtifactStore, registry: Registry) -> str:
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
    registry = Registry(ArtifactStore(str(root)))
    vocabulary = bundled_vocabulary()
    rng = np.random.default_rng(0)
    X = rng.random((100, len(vocabulary.feature_names)))
    booster = lgb.train({"verbose": -1, "num_threads": 1}, lgb.Dataset(X, X[:, 0] > 0.5,
                        feature_name=vocabulary.feature_names), 2)
    model = TrainedModel(booster, vocabulary)
    version = model_version(model)
    registry.publish(version, lambda stem: write_files(registry.store, stem, CODECS[TrainedModel].encode(model)), {})
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
    kind, how, tmp_path, base1, base2, sources, other_registry, rows, capsys
):
    storage = tmp_path / "storage"
    shutil.copytree(base2["storage"], storage)
    store = ArtifactStore(str(storage))
    registry = Registry(store)
    name = damaged_name(kind, store, registry)
    url = store.url(name)
    damage(storage / name, how, other_file(kind, name, storage, base1, other_registry))

    if kind.asset is not None:
        # load_committed, verified against the manifest (the pointer itself when that is damaged).
        with pytest.raises(CorruptArtifactError) as refused:
            load_committed(store, ArtifactKey(kind.asset), codec_of(STORED[kind.asset]))
        assert url in str(refused.value)
    else:
        with pytest.raises((RegistryError, CorruptArtifactError)) as refused:
            load_production(registry)
        assert url in str(refused.value)

    # The IO manager (or the registry, for scored_census) in a downstream in-process run: one
    # attempt, failed with the file named.
    result = summarize(run_graph(storage, sources["A"], selection=[kind.downstream]))
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
from census_assets.artifacts import ArtifactStore, CorruptArtifactError, load_model_version
from census_assets.core.registry import Registry

storage, version = Path(sys.argv[1]), sys.argv[2]
registry = Registry(ArtifactStore(str(storage)))
text_path, manifest_path = storage / "models" / version / "model.txt", storage / "models" / version / "manifest.json"
text, manifest = text_path.read_bytes(), json.loads(manifest_path.read_text())
whole = load_model_version(registry, version).booster.model_to_string()
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
        loaded = load_model_version(registry, version)
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

