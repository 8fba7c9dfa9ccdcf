"""The label: the source column that holds it, the value that is the positive class, and the
probability at or above which a model predicts that class. Training, validation, evaluation,
scoring and batch checks all ask here."""

import numpy as np
import pandas as pd

LABEL_COLUMN = "marital_status"
TARGET_VALUE = "Never-married"
DECISION_THRESHOLD = 0.5


def is_target(labels: pd.Series) -> np.ndarray:
    """1 where a label is the positive class, else 0. Spaces around a value do not count (raw
    files carry them, cleaned tables do not); a missing label is not the positive class. Each
    distinct value is judged once, so millions of rows cost a handful of comparisons."""
    verdicts = {value: isinstance(value, str) and value.strip() == TARGET_VALUE for value in labels.unique()}
    return labels.map(verdicts).fillna(False).to_numpy(dtype=np.uint8)
