"""What storing the reasons costs batch scoring: scored_batch's scoring (census_assets.assets.batches.
score_batch, `census-assets predict`'s path, model load included) on the bundled held-out table
replicated N times, without reasons and with the config `explain` K. Prints one JSON document.

    python -m benchmarks.reasons [--scales 1 10] [--explain 3] [--threads 1] [--repeats 3]
"""

import argparse
import json
import tempfile
from functools import partial

import pandas as pd

from benchmarks.bench import _publish_bundled_model, _timed, load_average
from census_assets.assets.batches import ScoreBatchConfig, score_batch
from census_assets.core.scaling import replicate
from census_assets.sources.common import BUNDLED_HOLDOUT, bundled_file


def scoring_seconds(batch: pd.DataFrame, registry, threads: int, explain: int, repeats: int) -> dict:
    """The fastest of `repeats` score_batch calls: its scoring (the reasons included) in wall
    seconds and rows per second, and the whole call (drift against the model's reference too) in
    wall and CPU seconds, which a busy machine disturbs less."""
    runs = [_timed(partial(score_batch, batch, registry, threads, explain)) for _ in range(repeats)]
    seconds, result = min(runs, key=lambda run: run[0]["wall_seconds"])
    scoring = result[3]
    return {
        "scoring_seconds": round(scoring, 3),
        "scoring_rows_per_second": round(len(batch) / scoring),
        "call_wall_seconds": round(seconds["wall_seconds"], 3),
        "call_cpu_seconds": round(seconds["cpu_seconds"], 3),
        "call_rows_per_second": round(len(batch) / seconds["wall_seconds"]),
    }


def reasons_report(scales: list[int], explain: int, threads: int, repeats: int) -> dict:
    load_before = load_average()
    holdout = pd.read_parquet(bundled_file(BUNDLED_HOLDOUT)).drop(columns="marital_status")
    report: dict = {"explain": explain, "lightgbm_threads": threads, "repeats": repeats}
    with tempfile.TemporaryDirectory() as storage:
        registry, _ = _publish_bundled_model(storage)
        for scale in scales:
            batch = replicate(holdout, scale)
            plain = scoring_seconds(batch, registry, threads, 0, repeats)
            explained = scoring_seconds(batch, registry, threads, explain, repeats)
            report[f"{scale}x"] = {
                "rows": len(batch),
                "without_reasons": plain,
                "with_reasons": explained,
                "scoring_with_over_without": round(explained["scoring_seconds"] / plain["scoring_seconds"], 2),
                "call_cpu_with_over_without": round(explained["call_cpu_seconds"] / plain["call_cpu_seconds"], 2),
            }
    report["load_average"] = {
        "before": load_before,
        "after": load_average(),
    }
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10], help="replicate the held-out table N times")
    parser.add_argument("--explain", type=int, default=3, help="reasons per row (scored_batch's config explain)")
    threads = ScoreBatchConfig().lightgbm_threads
    parser.add_argument("--threads", type=int, default=threads, help="scored_batch's config lightgbm_threads")
    parser.add_argument("--repeats", type=int, default=3, help="calls per measure; the fastest is kept")
    args = parser.parse_args(argv)
    report = reasons_report(args.scales, args.explain, args.threads, args.repeats)
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
