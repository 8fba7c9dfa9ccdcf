"""Benchmark: the reference pipeline and ours, stage by stage, in one process; then the CLI.

    python -m census_assets.bench [--scale N] [--no-reference] [--reference-cv] [--no-cli]

Prints one JSON line: seconds per stage for both implementations, ratios, whether the fold
scores are identical, peak memory (RSS) per stage, and the wall time and peak RSS of a full
`dagster asset materialize` run in a subprocess. `--scale N` runs everything on the bundled table
replicated N times with a small jitter (census_assets.core.scaling); above 1x the reference CV is
skipped unless --reference-cv (its object matrix and oversubscribed fits cannot finish at 100x).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager

import numpy as np
import pandas as pd
import psutil

from census_assets.constants import TRAINING_SELECTION
from census_assets.core.cleaning import clean
from census_assets.core.features import Vocabulary, encode
from census_assets.core.scaling import replicate
from census_assets.core.training import compact_split, cross_validate, fit_final
from census_assets.sources.common import BUNDLED_TRAIN, bundled_file


def reference_clean(df: pd.DataFrame) -> pd.DataFrame:
    """The Airflow pipeline's preprocessing, row-wise apply and all."""
    df = df.copy()
    df.dropna(inplace=True)
    df.drop_duplicates(inplace=True)
    for col in df.columns:
        if df.dtypes[col] == "object":
            df[col] = df[col].apply(lambda x: x.rstrip().lstrip())
    for col in ["workclass", "occupation", "native_country"]:
        df[col] = df[col].apply(lambda x: "Unknown" if x == "?" else x)
    return df.drop(columns=["education_num", "relationship", "functional_weight"])


def reference_features(df: pd.DataFrame) -> pd.DataFrame:
    for col in ["workclass", "education", "occupation", "race", "sex", "income_bracket", "native_country"]:
        df = pd.get_dummies(df, prefix=col, columns=[col])
    df["age_bins"] = pd.cut(x=df["age"], bins=[16, 29, 39, 49, 59, 100], labels=[1, 2, 3, 4, 5])
    df["never_married"] = df["marital_status"].apply(lambda x: 1 if x == "Never-married" else 0)
    return df.drop(columns=["income_bracket_<=50K", "marital_status", "age"])


def reference_cv(df: pd.DataFrame) -> list[float]:
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score

    from census_assets.core.lightgbm_runtime import lightgbm

    y = df["never_married"].values
    X = df.drop(columns=["never_married"]).values  # an object matrix, as the reference has it
    cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=3, random_state=1)
    model = lightgbm().LGBMClassifier(verbose=-1)  # the reference's LGBMClassifier(); verbose changes no tree
    # The reference's joblib workers get LightGBM's default (busy) OpenMP waiting, not ours.
    passive = os.environ.pop("OMP_WAIT_POLICY", None)
    try:
        return list(cross_val_score(model, X, y, scoring="accuracy", cv=cv, n_jobs=-1))
    finally:
        if passive is not None:
            os.environ["OMP_WAIT_POLICY"] = passive


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


def run_cli(raw_source: str) -> dict:
    """`dagster asset materialize --select TRAINING_SELECTION` on fresh storage and DAGSTER_HOME: the
    wall time, where it goes (process start to run start, the run, each step's compute) and the peak RSS (MiB)
    of the largest process it started (with the default in-process executor, the whole graph)."""
    from dagster import DagsterInstance

    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as storage:
        env = {**os.environ, "DAGSTER_HOME": home, "CENSUS_STORAGE_URL": storage, "CENSUS_SOURCE": raw_source}
        started_at, started = time.time(), time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "census_assets", "--select"]
            + [TRAINING_SELECTION],
            env=env, check=True, capture_output=True,
        )
        seconds = round(time.perf_counter() - started, 3)
        with DagsterInstance.from_config(home) as instance:
            [run] = instance.get_runs()
            stats = instance.get_run_stats(run.run_id)
            steps = {s.step_key: round(s.end_time - s.start_time, 3) for s in instance.get_run_step_stats(run.run_id)}
    return {
        "wall_seconds": seconds,
        "start_to_run_start_seconds": round(stats.start_time - started_at, 3),
        "run_seconds": round(stats.end_time - stats.start_time, 3),
        "run_end_to_exit_seconds": round(started_at + seconds - stats.end_time, 3),
        "step_seconds": steps,
        "wall_over_cv_step": round(seconds / steps["cv_accuracy"], 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-reference", action="store_true", help="skip the reference pipeline")
    parser.add_argument("--no-cli", action="store_true", help="skip the dagster CLI run")
    parser.add_argument("--scale", type=int, default=1, help="replicate the bundled table N times (jittered)")
    parser.add_argument("--reference-cv", action="store_true", help="run the reference CV above 1x too")
    args = parser.parse_args(argv)

    memory = PeakMemory()
    raw = replicate(pd.read_parquet(bundled_file(BUNDLED_TRAIN)), args.scale)
    ours: dict = {}
    with memory.stage(ours, "clean"):
        cleaned = clean(raw)
    with memory.stage(ours, "features"):
        frame = encode(cleaned, Vocabulary.fit(cleaned)).frame
    rows = len(raw)
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
            report["cli_materialize"] = run_cli(source)
        report["import_seconds"] = {module: import_seconds(module) for module in ("dagster", "census_assets")}
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
