"""One batch, without Dagster: its bytes read as `census-assets predict` reads the same file, the
checks that refuse it before anything is stored, and its drift against the production model's
training profile. Which files are batches and their keys: core.batch_names; the inbox sensor's
decisions: core.inbox; the summary across batches: core.batch_summary.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from census_assets.core.cleaning import DROPPED_COLUMNS
from census_assets.core.drift import DriftReport, ReferenceProfile, compare
from census_assets.core.file_formats import UnknownFormatError, file_format, read_table
from census_assets.core.labels import LABEL_COLUMN
from census_assets.core.schema import SOURCE_COLUMNS
from census_assets.core.scoring import Scored

# The columns a row needs to be scored (core.scoring): all but the label and the unused ones.
MODEL_INPUTS = tuple(name for name in SOURCE_COLUMNS if name not in (LABEL_COLUMN, *DROPPED_COLUMNS))


class BatchError(ValueError):
    """A batch file cannot be scored; the message says why (it becomes the partition's failure)."""


def read_batch(data: bytes, name: str) -> pd.DataFrame:
    """A batch file's bytes as the CLI reads the same file (`census-assets predict`: the same
    core.file_formats.read_table)."""
    try:
        kind = file_format(name)
    except UnknownFormatError as error:
        raise BatchError(str(error)) from None
    if not data:
        raise BatchError("the file is empty (0 bytes, not even a header row)")
    try:
        return read_table(data, name)
    except pd.errors.EmptyDataError:
        raise BatchError("the file is empty (not even a header row)") from None
    except Exception as error:  # pyarrow, the C parser, gzip: each has its own error types
        raise BatchError(f"not a readable {'CSV' if kind == 'csv' else 'Parquet'} file: "
                         f"{type(error).__name__}: {error}") from None  # fmt: skip


@dataclass(frozen=True)
class BatchProfile:
    rows: int
    unscorable_rows: int
    missing_by_column: dict[str, int]

    @property
    def unscorable_share(self) -> float:
        return self.unscorable_rows / self.rows if self.rows else 0.0


def check_batch(raw: pd.DataFrame, max_unscorable_share: float) -> BatchProfile:
    """Refuse a batch that has no rows, lacks a model input column, or has more than
    `max_unscorable_share` of rows that cannot be scored (a model input missing). Types are
    checked by scoring itself (core.schema), before anything is stored."""
    missing = [name for name in SOURCE_COLUMNS if name != LABEL_COLUMN and name not in raw.columns]
    if missing:
        raise BatchError(f"missing required column(s): {', '.join(missing)}")
    if raw.empty:
        raise BatchError("the table has no rows (a header only)")
    absent = raw[list(MODEL_INPUTS)].isna()
    unscorable = absent.any(axis=1)
    counts = absent.sum()
    profile = BatchProfile(
        rows=len(raw),
        unscorable_rows=int(unscorable.sum()),
        missing_by_column={name: int(count) for name, count in counts[counts > 0].items()},
    )
    if profile.unscorable_share > max_unscorable_share:
        worst = ", ".join(
            f"{name} in {count}" for name, count in sorted(profile.missing_by_column.items(), key=lambda kv: -kv[1])
        )
        raise BatchError(
            f"{profile.unscorable_rows} of {profile.rows} rows ({profile.unscorable_share:.1%}) cannot be "
            f"scored, more than max_unscorable_share {max_unscorable_share:.1%}: a model input is missing "
            f"({worst})"
        )
    return profile


def batch_drift(profile: ReferenceProfile, scored: Scored) -> DriftReport | None:
    """PSI of the batch's scorable rows against the production model's training profile, on the
    rows scoring cleaned (Scored.drift_rows: cleaned as the `drift` asset cleans raw_census);
    None when no row could be scored."""
    rows = scored.drift_rows()
    return None if rows is None else compare(profile, rows)
