"""Can the model's probabilities be read as probabilities? Brier score, expected calibration error
and the reliability diagram, overall and per group (no Dagster, no storage).

Bins are 10 equal-width intervals of the predicted probability, right-closed as scikit-learn's
calibration_curve makes them: [0, 0.1], (0.1, 0.2], ..., (0.9, 1]. The expected calibration error
is the mean, weighted by each bin's rows, of |mean predicted probability − observed positive rate|
over the non-empty bins.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np

from census_assets.core.reporting import Bars, Line, line_chart_png

BINS = 10
ECE_LIMIT = 0.05
DIAGONAL = (136, 136, 136)  # the grey of the perfectly calibrated line

# holdout_metrics and production_model put the same diagrams of the same model on its card; in one
# process (a training run with the in-process executor) the second gets the bytes the first drew.
# Keyed by everything a diagram is drawn from, so a changed value is drawn afresh; the oldest go first.
_DRAWN: dict[str, bytes] = {}
_DRAWN_KEPT = 16


def brier_score(y_true: Sequence[int], probability: Sequence[float]) -> float:
    """The mean squared difference between the probability and the 0/1 outcome."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(probability, dtype=float)
    return float(np.mean((p - y) ** 2))


def reliability_bins(y_true: Sequence[int], probability: Sequence[float], bins: int = BINS) -> list[dict]:
    """Every bin: its bounds, rows, mean predicted probability and observed positive rate (both
    None for an empty bin)."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(probability, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], p)
    rows = np.bincount(index, minlength=bins)
    predicted = np.bincount(index, weights=p, minlength=bins)
    observed = np.bincount(index, weights=y, minlength=bins)
    return [
        {
            "low": float(edges[i]),
            "high": float(edges[i + 1]),
            "rows": int(rows[i]),
            "mean_probability": float(predicted[i] / rows[i]) if rows[i] else None,
            "observed_rate": float(observed[i] / rows[i]) if rows[i] else None,
        }
        for i in range(bins)
    ]


def expected_calibration_error(table: Sequence[Mapping]) -> float:
    """ECE of reliability_bins' table: NaN when no bin has rows."""
    filled = [b for b in table if b["rows"]]
    total = sum(b["rows"] for b in filled)
    if not total:
        return float("nan")
    return float(sum(b["rows"] * abs(b["mean_probability"] - b["observed_rate"]) for b in filled) / total)


def calibration(y_true: Sequence[int], probability: Sequence[float], bins: int = BINS) -> dict:
    """{"rows", "brier", "ece", "bins"} for one set of rows."""
    table = reliability_bins(y_true, probability, bins)
    return {
        "rows": int(len(np.asarray(y_true))),
        "brier": brier_score(y_true, probability),
        "ece": expected_calibration_error(table),
        "bins": table,
    }


def calibration_report(
    y_true: Sequence[int], probability: Sequence[float], groups: Mapping[str, Sequence], bins: int = BINS
) -> dict:
    """{"overall": calibration(...), "groups": {column: {value: calibration(...)}}}."""
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probability, dtype=float)
    report = {"overall": calibration(y, p, bins), "groups": {}}
    for column, values in groups.items():
        values = np.asarray(values).astype(str)
        report["groups"][column] = {
            str(value): calibration(y[values == value], p[values == value], bins) for value in np.unique(values)
        }
    return report


def calibration_warning(report: Mapping, limit: float = ECE_LIMIT) -> str | None:
    """What the probabilities can and cannot be used for when the overall ECE passes `limit`;
    None when it does not."""
    ece = report["overall"]["ece"]
    if not ece > limit:
        return None
    worst = max((b for b in report["overall"]["bins"] if b["rows"]),
                key=lambda b: abs(b["mean_probability"] - b["observed_rate"]))
    direction = "over" if worst["mean_probability"] > worst["observed_rate"] else "under"
    return (
        f"expected calibration error {ece:.4f} > {limit:.4f}: the scores rank rows (a higher score is "
        "likelier to be positive) and the decisions at the evaluated threshold keep the accuracy reported, "
        "but a score is not a frequency: do not read 0.8 as an 80% chance, or sum scores to estimate a count. "
        f"Worst bin ({worst['low']:.1f}, {worst['high']:.1f}]: mean score {worst['mean_probability']:.3f}, "
        f"observed rate {worst['observed_rate']:.3f} ({direction}confident)"
    )


def diagram_curves(report: Mapping, column: str | None = None) -> dict[str, Mapping]:
    """The curves one diagram shows: all rows, then each group of `column` (if given)."""
    curves = {"all rows": report["overall"]}
    if column is not None:
        curves.update({f"{column}={value}": result for value, result in report["groups"][column].items()})
    return curves


def reliability_diagram_png(curves: Mapping[str, Mapping], title: str = "reliability diagram") -> bytes:
    """Observed positive rate against mean predicted probability per bin, one line per curve
    (calibration() results), the diagonal for perfect calibration, and the first curve's rows
    per bin as bars: a PNG, drawn once per process for the same curves and title."""
    # The curves in their order (the lines' order and colours), each curve's fields in any order (a
    # stored report's keys come back sorted); numpy scalars as the numbers they hold.
    key = json.dumps([list(curves.items()), title], sort_keys=True, default=lambda value: value.item())
    if key not in _DRAWN:
        if len(_DRAWN) >= _DRAWN_KEPT:
            del _DRAWN[next(iter(_DRAWN))]
        _DRAWN[key] = _draw_diagram(curves, title)
    return _DRAWN[key]


def _draw_diagram(curves: Mapping[str, Mapping], title: str) -> bytes:
    first_name, first = next(iter(curves.items()))
    bins = first["bins"]
    lines = [Line("perfectly calibrated", [0, 1], [0, 1], dashed=True, markers=False, color=DIAGONAL)]
    for label, result in curves.items():
        filled = [b for b in result["bins"] if b["rows"]]
        lines.append(
            Line(
                f"{label} (ECE {result['ece']:.3f}, {result['rows']} rows)",
                [b["mean_probability"] for b in filled],
                [b["observed_rate"] for b in filled],
            )
        )
    rows = Bars(
        [(b["low"] + b["high"]) / 2 for b in bins],
        [b["rows"] for b in bins],
        bins[0]["high"] - bins[0]["low"],
        f"rows per bin ({first_name})",
    )
    return line_chart_png(
        lines, title, "mean predicted probability in the bin", "observed positive rate", (0, 1), (0, 1), bars=rows
    )
