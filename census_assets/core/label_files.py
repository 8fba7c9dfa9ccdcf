"""Label files matched to the batch they label (no Dagster, no storage).

A label file has the name of the inbox batch it labels and holds the true `marital_status`:

- keyed by a `row_id` column when the batch has one (each id once; ids the batch lacks are refused);
- otherwise one label per batch row, in the batch's order (the row counts must agree).

An empty cell means "not labelled". Every problem refuses the whole file with the reason (nothing is
half taken), and the labels are bound to the content fingerprint of the batch they were matched
against: a batch whose content changes voids them until they arrive again.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from census_assets.core.batches import BatchError, read_batch
from census_assets.core.labels import LABEL_COLUMN, is_target

ROW_ID = "row_id"
# Every marital status of the census schema (the bundled tables hold exactly these).
MARITAL_STATUSES = (
    "Divorced",
    "Married-AF-spouse",
    "Married-civ-spouse",
    "Married-spouse-absent",
    "Never-married",
    "Separated",
    "Widowed",
)
EXAMPLES = 5  # values named in a refusal; the count says how many there are in all


class LabelError(ValueError):
    """A label file cannot be matched to its batch; the message says why."""


@dataclass(frozen=True)
class BatchLabels:
    """The labelled rows of one batch: their positions in the batch (ascending) and true statuses,
    bound to the batch content and the label file content they were matched from."""

    positions: np.ndarray  # int64 row positions in the batch
    statuses: np.ndarray  # the stripped marital_status of each labelled row
    batch_rows: int
    batch_fingerprint: str
    label_fingerprint: str
    keyed_by: str  # ROW_ID or "position"

    @property
    def labelled_rows(self) -> int:
        return len(self.positions)

    @property
    def coverage(self) -> float:
        """The share of the batch's rows that carry a label."""
        return self.labelled_rows / self.batch_rows if self.batch_rows else 0.0

    @property
    def never_married(self) -> np.ndarray:
        """The target the model predicts, 0/1 per labelled row."""
        return is_target(pd.Series(self.statuses))

    @property
    def revision(self) -> str:
        """What makes these labels what they are: the label file's content on the batch's content."""
        return f"{self.label_fingerprint}@{self.batch_fingerprint}"


def read_label_file(data: bytes, name: str) -> pd.DataFrame:
    """A label file's bytes as a table, read as the batch of the same name is read (the same
    formats and refusals), except that a blank line of a CSV is a row: one label per batch row,
    and a row not labelled may be an empty line."""
    try:
        table = read_batch(data, name)
    except BatchError as error:
        raise LabelError(str(error)) from None
    lowered = name.lower()
    if lowered.endswith((".csv", ".csv.gz")):
        compression = "gzip" if lowered.endswith(".gz") else None
        table = pd.read_csv(io.BytesIO(data), compression=compression, skip_blank_lines=False)
    return table


def _examples(values: Sequence) -> str:
    shown = ", ".join(repr(value) for value in list(values)[:EXAMPLES])
    return shown + (f" ... ({len(values)} in all)" if len(values) > EXAMPLES else "")


def _ids(column: pd.Series) -> pd.Series:
    """Row ids as text, so a CSV's 7, a Parquet file's "7" and a float column's 7.0 are the same id;
    missing stays NA. Text ids are kept as they are (stripped): "007" is not 7."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        numbers = column.astype("Float64")
        integral = (numbers == numbers.round()).fillna(False)
        text = column.astype("string").mask(integral, numbers.round().astype("Int64").astype("string"))
    else:
        text = column.astype("string").str.strip()
    return text.mask(text == "")


def _statuses(column: pd.Series) -> pd.Series:
    """Stripped label text, NA for an empty cell (not labelled)."""
    text = column.astype("string").str.strip()
    return text.mask(text == "")


def _refuse_unknown_statuses(statuses: pd.Series) -> None:
    present = statuses.dropna()
    unknown = present[~present.isin(MARITAL_STATUSES)]
    if len(unknown):
        counts = unknown.value_counts()
        listed = ", ".join(
            f"{value!r} ({count} row{'s' if count > 1 else ''})" for value, count in counts.head(EXAMPLES).items()
        )
        more = f" ... ({len(counts)} values in all)" if len(counts) > EXAMPLES else ""
        raise LabelError(
            f"unknown {LABEL_COLUMN} value(s): {listed}{more}; known values: {', '.join(MARITAL_STATUSES)} "
            "(an empty cell means not labelled)"
        )


def _positions_by_id(labels: pd.DataFrame, batch: pd.DataFrame) -> np.ndarray:
    """The batch position of each label row, matched by row_id; refuses what cannot be matched."""
    batch_ids = _ids(batch[ROW_ID])
    if batch_ids.isna().any():
        raise LabelError(
            f"the batch has {int(batch_ids.isna().sum())} row(s) without a {ROW_ID}: labels cannot be matched by id"
        )
    if batch_ids.duplicated().any():
        repeated = batch_ids[batch_ids.duplicated()].unique()
        raise LabelError(f"the batch's {ROW_ID} is not unique ({_examples(repeated)}): labels cannot be matched by id")
    label_ids = _ids(labels[ROW_ID])
    if label_ids.isna().any():
        raise LabelError(f"{int(label_ids.isna().sum())} label row(s) have no {ROW_ID}")
    if label_ids.duplicated().any():
        repeated = label_ids[label_ids.duplicated()].unique()
        raise LabelError(f"duplicate {ROW_ID}(s) in the label file: {_examples(repeated)}; each id may appear once")
    positions = pd.Index(batch_ids.to_numpy()).get_indexer(label_ids.to_numpy())
    unknown = label_ids.to_numpy()[positions < 0]
    if len(unknown):
        raise LabelError(f"{ROW_ID}(s) not in the batch: {_examples(unknown)}")
    return positions


def match_labels(
    labels: pd.DataFrame, batch: pd.DataFrame, *, batch_fingerprint: str, label_fingerprint: str
) -> BatchLabels:
    """Match a label file's table to its batch's table; LabelError with the reason when it cannot be."""
    if LABEL_COLUMN not in labels.columns:
        columns = ", ".join(map(str, labels.columns))
        raise LabelError(f"the label file has no {LABEL_COLUMN} column (columns: {columns})")
    batch_keyed, labels_keyed = ROW_ID in batch.columns, ROW_ID in labels.columns
    if batch_keyed and not labels_keyed:
        raise LabelError(
            f"the batch has a {ROW_ID} column: the label file must have one too (a {ROW_ID} and a {LABEL_COLUMN} "
            "per labelled row)"
        )
    if labels_keyed and not batch_keyed:
        raise LabelError(
            f"the label file has a {ROW_ID} column but the batch has none: give one label per batch row, in the "
            f"batch's order, without {ROW_ID}"
        )
    statuses = _statuses(labels[LABEL_COLUMN])
    _refuse_unknown_statuses(statuses)
    if batch_keyed:
        positions = _positions_by_id(labels, batch)
    else:
        if len(labels) != len(batch):
            raise LabelError(
                f"the label file has {len(labels)} row(s) but the batch has {len(batch)}: without {ROW_ID}, give one "
                "label per batch row in the batch's order (an empty cell for a row not labelled)"
            )
        positions = np.arange(len(labels))
    labelled = statuses.notna().to_numpy()
    positions, values = positions[labelled], statuses.to_numpy(dtype=object)[labelled]
    order = np.argsort(positions, kind="stable")
    return BatchLabels(
        positions=positions[order].astype(np.int64),
        statuses=values[order].astype(str),
        batch_rows=len(batch),
        batch_fingerprint=batch_fingerprint,
        label_fingerprint=label_fingerprint,
        keyed_by=ROW_ID if batch_keyed else "position",
    )
