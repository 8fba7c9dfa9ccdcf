"""Held-out metrics for a binary classifier, overall and per group (no Dagster).

scikit-learn is imported when metrics are computed, not when this module is imported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

DECISION_THRESHOLD = 0.5
GROUP_COLUMNS = ("sex", "race")


def binary_metrics(
    y_true: Sequence[int], probability: Sequence[float], threshold: float = DECISION_THRESHOLD
) -> dict[str, float]:
    """accuracy, ROC AUC, log loss and the confusion matrix cells, all as plain floats.

    ROC AUC is NaN when only one class is present (a small group can have that).
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, log_loss, roc_auc_score

    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probability, dtype=float)
    predicted = (p >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, predicted, labels=[0, 1]).ravel()
    both_classes = len(np.unique(y)) == 2
    return {
        "rows": float(len(y)),
        "accuracy": float(accuracy_score(y, predicted)),
        "roc_auc": float(roc_auc_score(y, p)) if both_classes else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "positive_rate": float(y.mean()),
        "predicted_positive_rate": float(predicted.mean()),
        "true_negative": float(tn),
        "false_positive": float(fp),
        "false_negative": float(fn),
        "true_positive": float(tp),
    }


def holdout_report(
    y_true: Sequence[int],
    probability: Sequence[float],
    groups: Mapping[str, pd.Series],
) -> dict:
    """{"overall": metrics, "groups": {column: {value: metrics}}}."""
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probability, dtype=float)
    report = {"overall": binary_metrics(y, p), "groups": {}}
    for column, values in groups.items():
        values = np.asarray(values)
        report["groups"][column] = {
            str(value): binary_metrics(y[values == value], p[values == value])
            for value in sorted(pd.unique(values))
        }
    return report
