"""Which batches have valid labels, read from the instance, and the labelled rows raw_census trains on.

A batch has valid labels when `batch_performance`'s latest attempt at its partition succeeded and
the labels it matched are bound to the batch's current content (scored_batch's latest
materialization). A batch whose latest labels were refused, or whose content changed since its
labels were matched, is left out, with the reason; it never fails training.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import dagster as dg
import pandas as pd

from census_assets.assets.batches import census_batches, latest_failure, scored_batch
from census_assets.assets.labelled_rows import PERFORMANCE_ASSET, attach_split, load_labelled_rows, source_rows
from census_assets.assets.source import CENSUS_SOURCE, DATA_VERSION_TAG
from census_assets.core.evaluation_window import LabelledBatch, WindowSplit, split_window
from census_assets.core.schema import validate_source
from census_assets.core.validation import impossible_values
from census_assets.metadata import markdown_table
from census_assets.storage.errors import PermanentStorageError
from census_assets.storage.objects import ObjectStore

PERFORMANCE_KEY = dg.AssetKey(PERFORMANCE_ASSET)
# batch_performance's metadata that identifies its labels (written by assets/performance.py).
BATCH_FINGERPRINT = "batch_fingerprint"
LABEL_REVISION = "label_revision"
LABEL_COMMITTED_AT = "label_committed_at"
LABELLED_ROWS = "labelled_rows"
# scored_batch's metadata: the content its scores are of.
CONTENT_FINGERPRINT = "content_fingerprint"
CHUNK = 500


def latest_materializations(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partitions: Sequence[str] | None = None
) -> dict[str, dg.EventLogRecord]:
    """partition -> the latest materialization record (of `partitions`, or of all)."""
    latest = instance.get_latest_storage_id_by_partition(asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION)
    wanted = [latest[key] for key in (partitions if partitions is not None else latest) if key in latest]
    records: dict[str, dg.EventLogRecord] = {}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=chunk), limit=len(chunk)
        )
        records.update({record.partition_key: record for record in result.records})
    return records


def metadata_of(record: dg.EventLogRecord) -> dict:
    return {name: value.value for name, value in record.asset_materialization.metadata.items()}


@dataclass(frozen=True)
class LabelledInventory:
    batches: tuple[LabelledBatch, ...]
    left_out: dict[str, str] = field(default_factory=dict)  # partition -> why its labels are not used


def labelled_inventory(instance: dg.DagsterInstance) -> LabelledInventory:
    """Every batch with valid labels, and every labelled batch left out with the reason."""
    performance = latest_materializations(instance, PERFORMANCE_KEY)
    keys = instance.get_dynamic_partitions(census_batches.name)
    statuses = instance.get_status_by_partition(PERFORMANCE_KEY, keys, census_batches) or {}
    refused = sorted(key for key, status in statuses.items() if status == dg.AssetPartitionStatus.FAILED)
    left_out = {key: f"its latest labels were refused: {latest_failure(instance, PERFORMANCE_KEY, key)[1]}"
                for key in refused}  # fmt: skip
    contents = latest_materializations(instance, scored_batch.key, sorted(performance))
    batches = []
    for key, record in sorted(performance.items()):
        if key in left_out:
            continue
        metadata = metadata_of(record)
        current = metadata_of(contents[key]).get(CONTENT_FINGERPRINT) if key in contents else None
        if current != metadata[BATCH_FINGERPRINT]:
            left_out[key] = (
                "its content changed since its labels were matched, which voids them: deliver its labels again"
            )
            continue
        batches.append(
            LabelledBatch(
                partition=key,
                batch_fingerprint=metadata[BATCH_FINGERPRINT],
                label_revision=metadata[LABEL_REVISION],
                committed_at=float(metadata[LABEL_COMMITTED_AT]),
                labelled_rows=int(metadata[LABELLED_ROWS]),
                commit=record.run_id,
            )
        )
    return LabelledInventory(tuple(batches), left_out)


@dataclass(frozen=True)
class LabelledTraining:
    """The split of the labelled batches, the training part's rows, and the batches left out."""

    split: WindowSplit
    rows: pd.DataFrame
    left_out: dict[str, str]
    impossible_rows: int  # labelled rows left out of training: a value no person can have

    @property
    def any(self) -> bool:
        return bool(self.split.window or self.split.training)

    def revisions(self) -> str:
        """What the labelled part of the training data and the window are: changes whenever either does."""
        parts = [f"{role}:{batch.partition}:{batch.label_revision}"
                 for role, batches in (("window", self.split.window), ("training", self.split.training))
                 for batch in batches]  # fmt: skip
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def table(self) -> pd.DataFrame:
        """One row per labelled batch, as raw_census shows it."""
        rows = [
            {"partition": batch.partition, "role": role, "labelled_rows": batch.labelled_rows,
             "label_revision": batch.label_revision.split("@")[0][:19], "committed_at": batch.committed_at}
            for role, batches in (("evaluation window", self.split.window), ("training", self.split.training))
            for batch in batches
        ]  # fmt: skip
        table = pd.DataFrame(rows, columns=["partition", "role", "labelled_rows", "label_revision", "committed_at"])
        committed = pd.to_datetime(table["committed_at"], unit="s", utc=True)
        table["committed_at"] = committed.dt.strftime("%Y-%m-%d %H:%M:%S")
        return table


def labelled_training(instance: dg.DagsterInstance, store: ObjectStore, window_rows: int) -> LabelledTraining:
    """The evaluation window (kept out) and the other labelled batches' rows, oldest label revision
    first. A training batch whose committed rows are gone is left out, with the reason."""
    inventory = labelled_inventory(instance)
    split = split_window(inventory.batches, window_rows)
    left_out = dict(inventory.left_out)
    training, frames, impossible = [], [], 0
    for batch in sorted(split.training, key=lambda b: (b.committed_at, b.partition)):
        try:
            rows = source_rows(load_labelled_rows(store, batch))
        except PermanentStorageError as error:  # pruned or corrupt: this batch only
            left_out[batch.partition] = str(error)
            continue
        masks = impossible_values(rows)
        if masks:
            bad = pd.concat([pd.Series(mask) for mask in masks.values()], axis=1).any(axis=1).to_numpy()
            impossible += int(bad.sum())
            rows = rows[~bad]
        training.append(batch)
        frames.append(rows)
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return LabelledTraining(WindowSplit(split.window, tuple(training)), rows, left_out, impossible)


def source_version(instance: dg.DagsterInstance) -> str:
    """The source's data version as last observed (census_source), what raw_census's own version
    follows when no labelled batch is read."""
    record = instance.get_latest_data_version_record(CENSUS_SOURCE, is_source=True)
    return ((record.event_log_entry.tags or {}).get(DATA_VERSION_TAG) if record else None) or "unobserved"


def with_labelled_rows(table: pd.DataFrame, labelled: LabelledTraining) -> pd.DataFrame:
    """The source table and the training batches' labelled rows, carrying the split (attributes)."""
    combined = validate_source(pd.concat([table, labelled.rows], ignore_index=True)) if len(labelled.rows) else table
    attach_split(combined, labelled.split)
    return combined


def labelled_metadata(labelled: LabelledTraining) -> dict:
    """What raw_census shows of the labelled batches: which train, which judge, which are left out and why."""
    metadata = {}
    if labelled.any:
        metadata.update(
            {
                "labelled_batches_in_training": float(len(labelled.split.training)),
                "labelled_rows_in_training": float(len(labelled.rows)),
                "evaluation_window_batches": float(len(labelled.split.window)),
                "evaluation_window_rows": float(labelled.split.window_rows),
                "labelled_batches": markdown_table(labelled.table()),
            }
        )
        if labelled.impossible_rows:
            metadata["labelled_rows_with_impossible_values"] = float(labelled.impossible_rows)
    if labelled.left_out:
        metadata["labelled_batches_left_out"] = dg.MetadataValue.json(labelled.left_out)
    return metadata
