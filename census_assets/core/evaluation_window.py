"""Which labelled batches train models and which judge them (no Dagster, no storage).

The evaluation window is the newest labelled batches, by when their current label revision was
committed, taken whole until they hold at least `window_rows` labelled rows; every other labelled
batch is training data. Models are compared on the window's rows when enough of them are left once
the batches either model trained on are taken out (a larger window can reach back to batches an
older champion was trained on); otherwise on the held-out table.

A batch is known by its partition and its content fingerprint: the same partition with other
content is another batch (its labels were voided with the old content).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass

DEFAULT_WINDOW_ROWS = 5000
DEFAULT_MIN_EVALUATION_ROWS = 2000


@dataclass(frozen=True)
class LabelledBatch:
    """One batch with valid labels: where its labelled rows are committed and how many there are."""

    partition: str
    batch_fingerprint: str
    label_revision: str
    committed_at: float  # seconds since the epoch: when this label revision was committed
    labelled_rows: int
    commit: str  # the run that committed the labelled rows

    @property
    def identity(self) -> tuple[str, str]:
        return self.partition, self.batch_fingerprint

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LabelledBatch:
        return cls(
            partition=str(data["partition"]),
            batch_fingerprint=str(data["batch_fingerprint"]),
            label_revision=str(data["label_revision"]),
            committed_at=float(data["committed_at"]),
            labelled_rows=int(data["labelled_rows"]),
            commit=str(data["commit"]),
        )


def _rows(batches: Iterable[LabelledBatch]) -> int:
    return sum(batch.labelled_rows for batch in batches)


@dataclass(frozen=True)
class WindowSplit:
    window: tuple[LabelledBatch, ...]  # newest first
    training: tuple[LabelledBatch, ...]

    @property
    def window_rows(self) -> int:
        return _rows(self.window)

    @property
    def training_rows(self) -> int:
        return _rows(self.training)


def split_window(batches: Iterable[LabelledBatch], window_rows: int = DEFAULT_WINDOW_ROWS) -> WindowSplit:
    """The newest batches, whole, until they hold >= window_rows labelled rows; the rest train.
    Ties in commit time are broken by partition, so the split never depends on listing order."""
    if window_rows < 0:
        raise ValueError(f"the evaluation window must hold at least 0 rows, got {window_rows}")
    newest_first = sorted(batches, key=lambda batch: (-batch.committed_at, batch.partition))
    window: list[LabelledBatch] = []
    for batch in newest_first:
        if _rows(window) >= window_rows:
            break
        window.append(batch)
    return WindowSplit(tuple(window), tuple(newest_first[len(window) :]))


@dataclass(frozen=True)
class EvaluationPlan:
    """Where models are compared: the window's batches no model trained on, or the held-out table."""

    use_window: bool
    batches: tuple[LabelledBatch, ...]  # the window batches compared on (all of them when use_window)
    left_out: tuple[LabelledBatch, ...]  # window batches a compared model was trained on
    min_rows: int

    @property
    def rows(self) -> int:
        return _rows(self.batches)

    @property
    def left_out_rows(self) -> int:
        return _rows(self.left_out)

    def describe(self) -> str:
        left_out = (
            f"; {self.left_out_rows} row(s) of {len(self.left_out)} window batch(es) left out: a compared model "
            f"was trained on them ({', '.join(batch.partition for batch in self.left_out)})"
            if self.left_out
            else ""
        )
        if self.use_window:
            return f"the evaluation window: {self.rows} labelled row(s) of {len(self.batches)} batch(es){left_out}"
        if not self.batches and not self.left_out:
            return "the held-out table: no labelled batch in the evaluation window"
        return (
            f"the held-out table: the evaluation window holds {self.rows} usable labelled row(s), fewer than "
            f"the minimum {self.min_rows}{left_out}"
        )


def plan_evaluation(
    window: Iterable[LabelledBatch],
    trained_on: Collection[tuple[str, str]],
    min_rows: int = DEFAULT_MIN_EVALUATION_ROWS,
) -> EvaluationPlan:
    """The window batches no compared model was trained on (`trained_on`: (partition, batch
    fingerprint) of every batch in either model's training data); the window is used when they hold
    at least `min_rows` labelled rows."""
    window = tuple(window)
    trained = set(trained_on)
    usable = tuple(batch for batch in window if batch.identity not in trained)
    left_out = tuple(batch for batch in window if batch.identity in trained)
    return EvaluationPlan(
        use_window=bool(usable) and _rows(usable) >= min_rows, batches=usable, left_out=left_out, min_rows=min_rows
    )
