"""Benchmark: the reference pipeline and ours, stage by stage, in one process; then the whole run.

    python -m benchmarks.bench [--scale N] [--no-reference] [--reference-cv] [--no-cli] [--repeats R]
    python -m benchmarks.bench --batches   # batch scoring only (docs/batches.md)

Run from the repository root. Prints one JSON line: seconds per stage for both implementations,
ratios, whether the fold scores are identical, peak memory (RSS) per stage; then `whole_run`: the
training selection through `dagster asset materialize` against what it cannot avoid, Dagster's floor
(a graph of the same shape with empty bodies, benchmarks.floor, through the same CLI) plus the bare
LightGBM fits, interleaved R times, with the ratio `training_over_floor_plus_fits`, and the median
training run split into start, steps and exit. `--scale N` runs everything on the bundled table
replicated N times with a small jitter (census_assets.core.scaling); above 1x the reference CV is
skipped unless --reference-cv (its object matrix and oversubscribed fits cannot finish at 100x).
"""

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from benchmarks.floor import SHAPE_VARIABLE, graph_shape
from benchmarks.reference import reference_clean, reference_cv, reference_features
from census_assets.assets.specs import TRAINING_SELECTION
from census_assets.core.cleaning import clean
from census_assets.core.features import VOCABULARY_ATTR, Vocabulary, encode, split_target
from census_assets.core.lightgbm_runtime import lightgbm
from census_assets.core.scaling import replicate
from census_assets.core.training import (
    TrainedModel,
    compact_split,
    cross_validate,
    final_fit_threads,
    fit_final,
    fold_splits,
    plan_threads,
)
from census_assets.sources.common import BUNDLED_TRAIN, BUNDLED_VOCABULARY, bundled_file


class PeakMemory:
    """Samples this process's RSS every 10 ms; the peak seen within a `stage()`."""

    def __init__(self):
        self.process = psutil.Process()
        self.peak = 0
        self._running = True
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self):
        while self._running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)

    @contextmanager
    def stage(self, results: dict, name: str):
        self.peak = self.process.memory_info().rss
        started = time.perf_counter()
        yield
        results[name] = {
            "seconds": round(time.perf_counter() - started, 3),
            "peak_rss_mib": round(max(self.peak, self.process.memory_info().rss) / 2**20, 1),
        }


def import_seconds(module: str, repeats: int = 3) -> float:
    """The best of `repeats` fresh interpreters' time to import `module` (start-up excluded)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
            for _ in range(repeats)]
    return round(min(runs), 3)


ROOT = Path(__file__).resolve().parents[1]


def load_average() -> list[float]:
    """The machine's load average (1, 5, 15 minutes), as the reports print it."""
    return [round(load, 2) for load in os.getloadavg()]


def compile_bytecode() -> None:
    """Compile the project's and the floor's modules, so both code locations start from bytecode as
    an installed package does (pip compiles a wheel's modules when it installs them). Otherwise, in
    an editable install under PYTHONDONTWRITEBYTECODE, every run compiles the sources again."""
    for package in ("census_assets", "benchmarks"):
        compileall.compile_dir(ROOT / package, quiet=1)


def materialize(module: str, env: dict) -> dict:
    """`dagster asset materialize -m module --select TRAINING_SELECTION` in a fresh DAGSTER_HOME: the
    wall and CPU seconds, where the wall time goes (process start to run start, the run, each step's
    compute, run end to exit) and the peak RSS (MiB) of the process (with the in-process executor,
    the whole graph)."""
    from dagster import DagsterInstance

    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryFile() as output:
        started_at, started = time.time(), time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "dagster", "asset", "materialize", "-m", module, "-d", str(ROOT)]
            + ["--select", TRAINING_SELECTION],
            env={**os.environ, **env, "DAGSTER_HOME": home}, stdout=output, stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(process.pid, 0)  # this child's own CPU time and peak RSS
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            output.seek(0)
            raise RuntimeError(f"{module}: exit status {process.returncode}\n{output.read().decode()[-3000:]}")
        with DagsterInstance.from_config(home) as instance:
            [run] = instance.get_runs()
            stats = instance.get_run_stats(run.run_id)
            steps = {s.step_key: round(s.end_time - s.start_time, 3) for s in instance.get_run_step_stats(run.run_id)}
    return {
        "wall_seconds": round(seconds, 3),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
        "start_to_run_start_seconds": round(stats.start_time - started_at, 3),
        "run_seconds": round(stats.end_time - stats.start_time, 3),
        "run_end_to_exit_seconds": round(started_at + seconds - stats.end_time, 3),
        "step_seconds": steps,
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
    }


def _timed(function) -> tuple[dict, object]:
    started, cpu = time.perf_counter(), time.process_time()
    result = function()
    return {"wall_seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu}, result


def bare_fits(frame: pd.DataFrame) -> tuple[dict, TrainedModel]:
    """The training run's LightGBM work as bare LGBMClassifier calls on float32 copies of the rows:
    the CV's 15 fits, each predicting its test fold as cross_val_score does, side by side with the
    threads cv_accuracy gives them, then the final fit with lgbm_model's threads. (wall and CPU
    seconds, the final model)."""
    X, y = split_target(frame)
    splits = fold_splits(y)  # the folds are the protocol's, not part of the fits
    workers, threads = plan_threads(None)
    classifier = lightgbm().LGBMClassifier

    def fit_fold(split: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        train, test = split
        return classifier(n_jobs=threads, verbose=-1).fit(X[train], y[train]).predict(X[test])

    def fit_all():
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(fit_fold, splits))
        return classifier(n_jobs=final_fit_threads(len(y)), verbose=-1).fit(X, y).booster_

    seconds, booster = _timed(fit_all)
    return seconds, TrainedModel(booster, Vocabulary.from_dict(frame.attrs[VOCABULARY_ATTR]))


def bare_evaluation(model: TrainedModel, rows: pd.DataFrame, resources: dict) -> dict:
    """holdout_metrics' arithmetic without Dagster or storage, on the rows it judges a first model on
    (the held-out table, cleaned): both predictions, the metrics overall and per group, the audit's
    per-group rates with intervals, calibration and contributions, with the code location's
    settings (`resources`). Wall and CPU seconds."""
    from census_assets.core.audit import audit_same_rows
    from census_assets.core.comparison import evaluate_on_rows

    evaluation, audit = resources["evaluation"], resources["audit"]

    def evaluate():
        same_rows = evaluate_on_rows(rows, model, None, evaluation.group_columns)
        return audit_same_rows(same_rows, rows, model, "holdout", audit.min_group_rows, audit.group_tolerance)

    return _timed(evaluate)[0]


def whole_run(raw_source: str, frame: pd.DataFrame, repeats: int) -> dict:
    """The training selection through the CLI against the work it cannot avoid: Dagster's floor for
    the same graph (benchmarks.floor, through the same CLI), the bare fits and holdout_metrics'
    arithmetic timed bare. Interleaved `repeats` times, so a change in the machine's load reaches
    all alike; medians."""
    from census_assets import defs
    from census_assets.assets.evaluation import read_holdout

    compile_bytecode()
    load_at_start = load_average()
    holdout = clean(read_holdout())
    with tempfile.TemporaryDirectory() as work:
        shape = Path(work, "shape.json")
        shape.write_text(json.dumps(graph_shape(defs, TRAINING_SELECTION)))
        runs: dict[str, list] = {"training": [], "floor": [], "bare_fits": [], "evaluation": []}
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as storage:
                env = {"CENSUS_STORAGE_URL": storage, "CENSUS_SOURCE": raw_source}
                runs["training"].append(materialize("census_assets", env))
            runs["floor"].append(materialize("benchmarks.floor_location", {SHAPE_VARIABLE: str(shape)}))
            fits, model = bare_fits(frame)
            runs["bare_fits"].append(fits)
            runs["evaluation"].append(bare_evaluation(model, holdout, defs.resources))

    def median(name: str, measure: str) -> float:
        return round(statistics.median(run[measure] for run in runs[name]), 3)

    wall = {name: median(name, "wall_seconds") for name in runs}
    cpu = {name: median(name, "cpu_seconds") for name in runs}
    necessary = ("floor", "bare_fits", "evaluation")
    return {
        # The whole run over the work it cannot avoid (Dagster's floor, the fits, the evaluation
        # arithmetic); the target is 1.25 at most.
        "training_over_necessary": round(wall["training"] / sum(wall[name] for name in necessary), 2),
        "training_over_floor_plus_fits": round(wall["training"] / (wall["floor"] + wall["bare_fits"]), 2),
        # The same in CPU seconds, which a busy machine disturbs less than wall seconds.
        "cpu_training_over_necessary": round(cpu["training"] / sum(cpu[name] for name in necessary), 2),
        "median_wall_seconds": wall,
        "median_cpu_seconds": cpu,
        "wall_seconds": {name: [round(run["wall_seconds"], 3) for run in runs[name]] for name in runs},
        # The training run with the median wall time, split into start, run, steps and exit.
        "training_run": sorted(runs["training"], key=lambda run: run["wall_seconds"])[repeats // 2],
        "floor_run": sorted(runs["floor"], key=lambda run: run["wall_seconds"])[repeats // 2],
        # The machine's load average (1, 5, 15 minutes) when the runs began and ended: the other
        # jobs on it slow the floor and the fits more than the training run.
        "load_average_at_start": load_at_start,
        "load_average": load_average(),
    }


# ---- batch scoring (--batches) ------------------------------------------------------------------


def _best(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def _publish_bundled_model(storage: str):
    """The bundled table's model promoted in a fresh registry, as production_model publishes it."""
    from census_assets.assets.evaluation import REFERENCE_PROFILE
    from census_assets.core.drift import fit_reference
    from census_assets.core.promotion import model_version
    from census_assets.core.training import TrainedModel
    from census_assets.storage.objects import open_store
    from census_assets.storage.registry import Registry

    cleaned = clean(pd.read_parquet(bundled_file(BUNDLED_TRAIN)))
    vocabulary = Vocabulary.load(bundled_file(BUNDLED_VOCABULARY))
    X, y = compact_split(encode(cleaned, vocabulary).frame)
    model = TrainedModel(fit_final(X, y, vocabulary.feature_names), vocabulary)
    registry, version = Registry(open_store(storage)), model_version(model)
    registry.publish(version, model, {REFERENCE_PROFILE: fit_reference(cleaned, vocabulary).to_dict()})
    registry.promote(version, {"cv_accuracy": 0.83, "holdout_accuracy": 0.83}, run_id=None)
    return registry, model


def _tick_seconds(definitions, home: str, ticks: int) -> list[dict]:
    """census_inbox evaluated `ticks` times in a row on a persistent instance, as the daemon does."""
    import dagster as dg

    sensor = definitions.get_sensor_def("census_inbox")
    instance = dg.DagsterInstance.local_temp(tempdir=home)
    cursor, out = None, []
    for _ in range(ticks):
        started = time.perf_counter()
        with dg.build_sensor_context(
            cursor=cursor, instance=instance, instance_ref=instance.get_ref(), resources=definitions.resources,
            definitions=definitions,
        ) as context:
            result = sensor.evaluate_tick(context)
        for request in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        cursor = result.cursor
        out.append({"seconds": round(time.perf_counter() - started, 3), "runs_requested": len(result.run_requests),
                    "cursor_bytes": len(cursor or "")})
    return out


def _definitions(storage: str, inbox: str):
    from census_assets.definitions import build_definitions
    from census_assets.settings import load_environment

    return build_definitions(load_environment({"CENSUS_STORAGE_URL": storage, "CENSUS_INBOX_URL": inbox}))


def batches_report(rows: int = 100_000, files: int = 1000) -> dict:
    """scored_batch's compute on a `rows`-row batch (CSV and Parquet) against the bare LightGBM
    predict on the same encoded rows, the whole step in process, and census_inbox's tick with
    `files` files in a local inbox and in the GCS emulator."""
    import dagster as dg
    from threadpoolctl import threadpool_limits

    from census_assets.assets.batches import ScoreBatchConfig, score_batch
    from census_assets.core import batches

    threads = ScoreBatchConfig().lightgbm_threads
    max_unscorable_share = ScoreBatchConfig().max_unscorable_share
    report: dict = {"rows": rows, "cores": psutil.cpu_count(), "lightgbm_threads": threads}
    with tempfile.TemporaryDirectory() as root:
        storage, inbox = f"{root}/storage", f"{root}/inbox"
        os.makedirs(inbox)
        registry, model = _publish_bundled_model(storage)
        raw = pd.read_parquet(bundled_file(BUNDLED_TRAIN))
        batch = replicate(raw, -(-rows // len(raw))).head(rows).drop(columns="marital_status")
        batch.to_csv(f"{inbox}/batch.csv", index=False)
        batch.to_parquet(f"{inbox}/batch.parquet", index=False)
        for name in ("batch.csv", "batch.parquet"):
            data = Path(inbox, name).read_bytes()
            frame = batches.read_batch(data, name)
            seconds = {
                "parse": _best(lambda: batches.read_batch(data, name)),  # noqa: B023 - called at once
                "validate": _best(lambda: batches.check_batch(frame, max_unscorable_share)),  # noqa: B023
            }
            # What scored_batch calls: census-assets predict's path (model load included), then drift.
            runs = []
            for _ in range(3):
                started = time.perf_counter()
                scoring = score_batch(frame, registry, threads)[3]
                runs.append((time.perf_counter() - started, scoring))
            total, seconds["score_with_production"] = min(runs)
            seconds["drift"] = total - seconds["score_with_production"]
            compute = sum(seconds.values())
            report[name] = {
                **{f"{stage}_seconds": round(value, 3) for stage, value in seconds.items()},
                "compute_seconds": round(compute, 3),
                "rows_per_second": round(rows / compute),
                "score_with_production_rows_per_second": round(rows / seconds["score_with_production"]),
            }
        # The bare LightGBM predict on the same rows, encoded as scoring encodes them.
        cleaned = clean(batch.assign(marital_status="", __row__=np.arange(rows)))
        X, _ = split_target(encode(cleaned, model.vocabulary).frame)
        for count in sorted({threads, psutil.cpu_count()}):
            with threadpool_limits(limits=count, user_api="openmp"):
                seconds = _best(lambda: model.booster.predict(X))  # noqa: B023
            report[f"bare_predict_{count}_threads"] = {
                "seconds": round(seconds, 3), "rows_per_second": round(rows / seconds)
            }
        bare = report[f"bare_predict_{threads}_threads"]["seconds"]
        scoring = report["batch.parquet"]["score_with_production_seconds"]
        report["score_with_production_over_bare_predict"] = round(scoring / bare, 2)
        report["compute_over_bare_predict"] = {
            name: round(report[name]["compute_seconds"] / bare, 2) for name in ("batch.csv", "batch.parquet")
        }

        # The whole step as a run executes it (Dagster, the IO manager writing 100,000 rows).
        definitions = _definitions(storage, inbox)
        with dg.DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions("census_batches", ["batch.parquet"])
            job = definitions.resolve_job_def("score_batches")
            started = time.perf_counter()
            result = job.execute_in_process(partition_key="batch.parquet", instance=instance)
            stats = instance.get_run_step_stats(result.run_id)
            steps = {s.step_key: round(s.end_time - s.start_time, 3) for s in stats}
        report["in_process_run"] = {"wall_seconds": round(time.perf_counter() - started, 3), "step_seconds": steps}

        # The inbox sensor with `files` files: first look, then taken (100 runs a tick), then idle.
        small = raw.head(200)
        many = f"{root}/many"
        os.makedirs(many)
        for i in range(files):
            small.to_csv(f"{many}/batch-{i:05d}.csv", index=False)
        os.makedirs(f"{root}/home-local")
        report["sensor_local"] = {
            "files": files, "ticks": _tick_seconds(_definitions(storage, many), f"{root}/home-local", 3)
        }
        report["sensor_gcs"] = _gcs_sensor(root, storage, small, files)
    return report


def _gcs_sensor(root: str, storage: str, small: pd.DataFrame, files: int) -> dict:
    """The same ticks against fake-gcs-server (the test emulator), if installed."""
    try:
        from census_assets_tests.harness.emulators import OFFLINE_AUTH_ENV, start_gcs_emulator
    except ImportError as error:
        return {"skipped": f"no GCS emulator: {error}"}
    from google.cloud import storage as gcs

    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    os.environ.update(OFFLINE_AUTH_ENV)
    server = start_gcs_emulator()
    try:
        bucket = gcs.Client().create_bucket("census-bench")
        data = small.to_csv(index=False)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: bucket.blob(f"inbox/batch-{i:05d}.csv").upload_from_string(data), range(files)))
        url = "gs://census-bench/inbox"
        os.makedirs(f"{root}/home-gcs")
        return {"files": files, "ticks": _tick_seconds(_definitions(storage, url), f"{root}/home-gcs", 3)}
    finally:
        server.stop()


def training_run_only(scale: int) -> dict:
    """The training selection through the CLI on the bundled table replicated `scale` times, alone:
    the whole graph's peak memory is this one process's (the in-process executor)."""
    compile_bytecode()
    with tempfile.TemporaryDirectory() as work:
        source = os.path.join(work, f"census_x{scale}.parquet")
        replicate(pd.read_parquet(bundled_file(BUNDLED_TRAIN)), scale).to_parquet(source, index=False)
        env = {"CENSUS_SOURCE": source, "CENSUS_STORAGE_URL": os.path.join(work, "storage")}
        run = materialize("census_assets", env)
    return {"scale": scale, "training": run, "load_average": load_average()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-reference", action="store_true", help="skip the reference pipeline")
    parser.add_argument("--no-cli", action="store_true", help="skip the dagster CLI run")
    parser.add_argument("--scale", type=int, default=1, help="replicate the bundled table N times (jittered)")
    parser.add_argument("--reference-cv", action="store_true", help="run the reference CV above 1x too")
    parser.add_argument("--batches", action="store_true", help="batch scoring only: rows/s and the inbox sensor's tick")
    parser.add_argument("--repeats", type=int, default=3, help="training, floor and bare-fit runs, interleaved")
    parser.add_argument(
        "--training-run-only", action="store_true",
        help="only the training selection through the CLI on the (replicated) table: its time and peak memory",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.batches:
        report = batches_report()
        print(json.dumps(report))
        return report
    if args.training_run_only:
        report = training_run_only(args.scale)
        print(json.dumps(report))
        return report

    memory = PeakMemory()
    raw = replicate(pd.read_parquet(bundled_file(BUNDLED_TRAIN)), args.scale)
    ours: dict = {}
    with memory.stage(ours, "clean"):
        cleaned = clean(raw)
    with memory.stage(ours, "features"):
        frame = encode(cleaned, Vocabulary.fit(cleaned)).frame
    rows = len(raw)
    # The bare fits see what the features asset gives the CV: the bundled vocabulary's encoding.
    bare_frame = None if args.no_cli else encode(cleaned, Vocabulary.load(bundled_file(BUNDLED_VOCABULARY))).frame
    if args.no_reference and args.no_cli:
        # Nothing below needs them: each stage's peak is then that step's own working set, as in
        # the asset graph, where every step loads only its input.
        del raw, cleaned
    with memory.stage(ours, "cv"):
        X, y = compact_split(frame)  # as the cv_accuracy and lgbm_model assets read it
        result = cross_validate(X, y)
    with memory.stage(ours, "final_fit"):
        fit_final(X, y, [str(name) for name in frame.columns.drop("never_married")])
    report: dict = {
        "scale": args.scale, "rows": rows, "feature_rows": len(y), "cores": psutil.cpu_count(),
        "ours": ours, "cv_mean": result.mean,
    }

    if not args.no_reference:
        reference: dict = {}
        with memory.stage(reference, "clean"):
            ref_cleaned = reference_clean(raw)
        with memory.stage(reference, "features"):
            ref_frame = reference_features(ref_cleaned)
        if args.scale == 1 or args.reference_cv:
            with memory.stage(reference, "cv"):
                ref_scores = reference_cv(ref_frame)
            report["fold_scores_identical"] = ref_scores == result.scores
        report["reference"] = reference
        report["ratio_reference_over_ours"] = {
            stage: round(reference[stage]["seconds"] / max(ours[stage]["seconds"], 1e-9), 1)
            for stage in reference
        }
        report["features_identical"] = bool(
            np.array_equal(ref_frame.to_numpy().astype(np.float64), frame.to_numpy(dtype=np.float64), equal_nan=True)
        )
    report["compute_seconds_ours"] = round(sum(stage["seconds"] for stage in ours.values()), 3)
    if not args.no_cli:
        with tempfile.TemporaryDirectory() as source_dir:
            source = "bundled"
            if args.scale > 1:
                source = os.path.join(source_dir, f"census_x{args.scale}.parquet")
                raw.to_parquet(source)
            report["whole_run"] = whole_run(source, bare_frame, args.repeats)
        report["import_seconds"] = {module: import_seconds(module) for module in ("dagster", "census_assets")}
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
