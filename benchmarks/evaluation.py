"""The audit's evaluation budget (issue 18: the whole evaluation of both models within about 1 s at
1x): holdout_metrics' arithmetic for a challenger and a champion on the held-out rows (the bundled
adult.test, cleaned), timed bare, without Dagster or storage, with the code location's settings.
Prints one JSON document.

- `evaluate_on_rows`: both predictions, the metrics overall and per group, the paired comparison;
- `audit_same_rows`: both models' per-group rates with their intervals and calibration, the group
  gate, and the challenger's contributions on core.explanations.IMPORTANCE_ROWS rows;
- `contributions`: those contributions alone (a part of audit_same_rows).

    python -m benchmarks.evaluation [--repeats 5]
"""

import argparse
import json
import os
import statistics
from functools import partial

import pandas as pd

from benchmarks.bench import _timed, load_average
from census_assets.core.cleaning import clean
from census_assets.core.features import Vocabulary, encode, split_target
from census_assets.core.training import TrainedModel, compact_split, fit_final
from census_assets.sources.common import BUNDLED_TRAIN, BUNDLED_VOCABULARY, bundled_file


def fitted(cleaned: pd.DataFrame, vocabulary: Vocabulary) -> TrainedModel:
    X, y = compact_split(encode(cleaned, vocabulary).frame)
    return TrainedModel(fit_final(X, y, vocabulary.feature_names), vocabulary)


def evaluation_report(repeats: int) -> dict:
    from census_assets import defs
    from census_assets.assets.evaluation import read_holdout
    from census_assets.core.audit import audit_same_rows
    from census_assets.core.comparison import evaluate_on_rows
    from census_assets.core.explanations import explain, importance_rows

    load_before = load_average()
    cleaned = clean(pd.read_parquet(bundled_file(BUNDLED_TRAIN)))
    vocabulary = Vocabulary.load(bundled_file(BUNDLED_VOCABULARY))
    challenger = fitted(cleaned, vocabulary)
    champion = fitted(cleaned.iloc[::2], vocabulary)  # another model: every other training row
    rows = clean(read_holdout())
    evaluation, audit = defs.resources["evaluation"], defs.resources["audit"]
    sample = importance_rows(len(rows))
    X, _ = split_target(encode(rows.iloc[sample], challenger.vocabulary).frame)

    runs: dict[str, list[dict]] = {"evaluate_on_rows": [], "audit_same_rows": [], "contributions": []}
    for _ in range(repeats):
        seconds, same_rows = _timed(partial(evaluate_on_rows, rows, challenger, champion, evaluation.group_columns))
        runs["evaluate_on_rows"].append(seconds)
        settings = (audit.min_group_rows, audit.group_tolerance)
        audit_call = partial(audit_same_rows, same_rows, rows, challenger, "holdout", *settings)
        runs["audit_same_rows"].append(_timed(audit_call)[0])
        runs["contributions"].append(_timed(partial(explain, challenger, X))[0])

    def median(name: str, measure: str) -> float:
        return round(statistics.median(run[measure] for run in runs[name]), 3)

    whole = ("evaluate_on_rows", "audit_same_rows")
    totals = {
        measure: [round(sum(runs[name][i][measure] for name in whole), 3) for i in range(repeats)]
        for measure in ("wall_seconds", "cpu_seconds")
    }
    return {
        "rows": len(rows),
        "importance_rows": len(sample),
        "cores": os.cpu_count(),
        "repeats": repeats,
        "both_models_wall_seconds": totals["wall_seconds"],
        "both_models_cpu_seconds": totals["cpu_seconds"],
        "median_wall_seconds": {name: median(name, "wall_seconds") for name in runs},
        "median_cpu_seconds": {name: median(name, "cpu_seconds") for name in runs},
        "load_average": {
            "before": load_before,
            "after": load_average(),
        },
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds of the three measures")
    args = parser.parse_args(argv)
    report = evaluation_report(args.repeats)
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
