"""The label loop's benchmark: the label join and metrics of one batch (batch_performance's compute:
read the label file, match it to the batch, keep the labelled rows, accuracy with its interval,
ROC AUC, log loss, per group) and census_labels' tick over many label files, in a local folder and
in the GCS emulator (fake-gcs-server, the tests' emulator). Prints one JSON document.

    python -m benchmarks.labels [--rows 100000] [--files 1000]
"""

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from benchmarks.bench import _best, _publish_bundled_model
from census_assets.core.evaluation import GROUP_COLUMNS
from census_assets.core.label_files import match_labels, read_label_file
from census_assets.core.performance import labelled_rows, performance_report
from census_assets.core.scoring import score, training_ranges
from census_assets.sources.common import BUNDLED_HOLDOUT, bundled_file

TICKS = 3  # first look, then taken (up to 100 runs a tick), then the next 100


def join_and_metrics(model, rows: int) -> dict:
    """batch_performance's compute on a `rows`-row batch scored by `model`, with one label per row."""
    holdout = pd.read_parquet(bundled_file(BUNDLED_HOLDOUT))
    batch = pd.concat([holdout] * -(-rows // len(holdout)), ignore_index=True).head(rows)
    scored = score(batch.drop(columns="marital_status"), model.predict_proba, model.vocabulary,
                   ranges=training_ranges(model.booster)).frame  # fmt: skip
    data = batch[["marital_status"]].to_csv(index=False).encode()

    def measure():
        labels = match_labels(read_label_file(data, "batch.csv"), scored, batch_fingerprint="b", label_fingerprint="l")
        return performance_report(labelled_rows(scored, labels), labels, GROUP_COLUMNS)

    seconds = _best(measure)
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_second": round(rows / seconds),
            "accuracy": round(measure()["overall"]["accuracy"], 4)}  # fmt: skip


def _tick_seconds(labels_url: str, storage: str, home: str, names: list[str]) -> list[dict]:
    """census_labels evaluated TICKS times on a persistent instance where every batch was scored."""
    import dagster as dg

    from census_assets.definitions import build_definitions
    from census_assets.settings import load_environment

    definitions = build_definitions(load_environment({"CENSUS_STORAGE_URL": storage, "CENSUS_LABELS_URL": labels_url}))
    instance = dg.DagsterInstance.local_temp(tempdir=home)
    instance.add_dynamic_partitions("census_batches", names)
    for name in names:  # what the inbox's scoring runs leave: a materialization per batch
        instance.report_runless_asset_event(
            dg.AssetMaterialization("scored_batch", partition=name, metadata={"content_fingerprint": name})
        )
    sensor, cursor, out = definitions.get_sensor_def("census_labels"), None, []
    for _ in range(TICKS):
        started = time.perf_counter()
        with dg.build_sensor_context(
            cursor=cursor, instance=instance, instance_ref=instance.get_ref(), resources=definitions.resources,
            definitions=definitions,
        ) as context:  # fmt: skip
            result = sensor.evaluate_tick(context)
        cursor = result.cursor
        out.append({"seconds": round(time.perf_counter() - started, 3), "runs_requested": len(result.run_requests)})
    return out


def _gcs_ticks(root: str, storage: str, data: bytes, names: list[str]) -> dict:
    try:
        from census_assets_tests.harness.emulators import OFFLINE_AUTH_ENV, start_gcs_emulator
    except ImportError as error:
        return {"skipped": f"no GCS emulator: {error}"}
    from google.cloud import storage as gcs

    os.environ.update(OFFLINE_AUTH_ENV)
    server = start_gcs_emulator()
    try:
        bucket = gcs.Client().create_bucket("census-labels-bench")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda name: bucket.blob(f"labels/{name}").upload_from_string(data), names))
        os.makedirs(f"{root}/home-gcs")
        return {"files": len(names), "ticks": _tick_seconds("gs://census-labels-bench/labels", storage,
                                                            f"{root}/home-gcs", names)}  # fmt: skip
    finally:
        server.stop()


def labels_report(rows: int = 100_000, files: int = 1000) -> dict:
    with tempfile.TemporaryDirectory() as root:
        storage = f"{root}/storage"
        _, model = _publish_bundled_model(storage)
        report = {"join_and_metrics": join_and_metrics(model, rows)}
        names = [f"batch-{i:05d}.csv" for i in range(files)]
        data = b"marital_status\nNever-married\nDivorced\n"
        os.makedirs(f"{root}/labels")
        for name in names:
            with open(f"{root}/labels/{name}", "wb") as handle:
                handle.write(data)
        os.makedirs(f"{root}/home-local")
        report["labels_tick_local"] = {
            "files": files, "ticks": _tick_seconds(f"{root}/labels", storage, f"{root}/home-local", names)
        }
        report["labels_tick_gcs"] = _gcs_ticks(root, storage, data, names)
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the labelled batch")
    parser.add_argument("--files", type=int, default=1000, help="label files the sensor lists")
    args = parser.parse_args(argv)
    report = labels_report(args.rows, args.files)
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
