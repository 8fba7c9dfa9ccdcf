"""Labelled rows as the training graph sees them: what `batch_performance` committed for a batch
(its labelled rows in the source schema, with the true label), and the split of the labelled
batches into training data and the evaluation window, which travels with raw_census.

raw_census decides the split once and keeps it in its table's attributes (Parquet key-value
metadata, as the feature vocabulary travels with `features`), so holdout_metrics judges models on
exactly the window that raw_census kept out of training.
"""

import pandas as pd

from census_assets.core.evaluation_window import LabelledBatch, WindowSplit
from census_assets.core.schema import SOURCE_COLUMNS
from census_assets.storage.codecs import codec_for, load
from census_assets.storage.commits import ArtifactKey, run_manifest
from census_assets.storage.errors import MissingArtifactError
from census_assets.storage.objects import ObjectStore

PERFORMANCE_ASSET = "batch_performance"
# Where batch_performance's published copies go: `<storage>/performance/<partition>.parquet`.
PERFORMANCE_FOLDER = "performance"
SPLIT_ATTR = "labelled_split"


def load_labelled_rows(store: ObjectStore, batch: LabelledBatch) -> pd.DataFrame:
    """The labelled rows `batch.commit` committed for the batch: the source columns (the scored
    inputs and the true label) and the row positions. MissingArtifactError when that commit's
    files are gone (pruned): another commit would be other labels."""
    key = ArtifactKey(PERFORMANCE_ASSET, batch.partition, PERFORMANCE_FOLDER)
    manifest = run_manifest(store, key, batch.commit)
    if manifest is None:
        raise MissingArtifactError(
            f"the labelled rows of batch {batch.partition} committed by run {batch.commit} are gone from "
            f"{store.url(key.run_stem(batch.commit))} (pruned?)"
        )
    return load(store, codec_for(pd.DataFrame), manifest["stem"], manifest["files"])


def source_rows(labelled: pd.DataFrame) -> pd.DataFrame:
    """The rows as a source table: the source schema's columns, in its order."""
    return labelled[list(SOURCE_COLUMNS)]


def attach_split(table: pd.DataFrame, split: WindowSplit) -> None:
    table.attrs[SPLIT_ATTR] = {
        "window": [batch.to_dict() for batch in split.window],
        "training": [batch.to_dict() for batch in split.training],
    }


def split_of(table: pd.DataFrame) -> WindowSplit:
    """The split raw_census recorded; empty when it read no labelled batch."""
    recorded = table.attrs.get(SPLIT_ATTR) or {}
    return WindowSplit(
        tuple(LabelledBatch.from_dict(batch) for batch in recorded.get("window", [])),
        tuple(LabelledBatch.from_dict(batch) for batch in recorded.get("training", [])),
    )
