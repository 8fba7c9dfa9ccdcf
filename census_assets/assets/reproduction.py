"""`census-assets reproduce`: a registry version rebuilt from the raw rows it kept, with its recorded
parameters, in this environment, and compared with the version on its evaluation rows."""

from __future__ import annotations

import pandas as pd

from census_assets.assets.evaluation import HOLDOUT_NAME, TRAINING_METRICS, WINDOW_NAME, read_holdout
from census_assets.assets.labelled_rows import load_labelled_rows, source_rows
from census_assets.core.evaluation_window import LabelledBatch
from census_assets.core.features import Vocabulary
from census_assets.core.rebuild import FIT_VOCABULARY, RebuildReport, compare_rebuild, rebuild
from census_assets.sources.common import BUNDLED_SOURCE, BUNDLED_VOCABULARY, bundled_file
from census_assets.storage.builds import NotReproducibleError, read_build
from census_assets.storage.registry import Registry


def evaluation_rows_of(registry: Registry, version: str) -> tuple[pd.DataFrame, str]:
    """The raw rows the version was judged on when promoted: the evaluation window's labelled
    batches as committed, else the bundled held-out table."""
    evidence = registry.read_json(version, TRAINING_METRICS).get("evidence") or {}
    recorded = evidence.get("evaluation_rows") or {}
    if recorded.get("kind") == "window":
        batches = [LabelledBatch.from_dict(batch) for batch in recorded["batches"]]
        return pd.concat([source_rows(load_labelled_rows(registry.store, batch)) for batch in batches]), WINDOW_NAME
    return read_holdout(), HOLDOUT_NAME


def reproduce_version(registry: Registry, version: str) -> RebuildReport:
    record, raw = read_build(registry, version)
    if record.vocabulary not in (FIT_VOCABULARY, BUNDLED_SOURCE):
        raise NotReproducibleError(f"version {version} was built on an unknown vocabulary {record.vocabulary!r}")
    fixed = Vocabulary.load(bundled_file(BUNDLED_VOCABULARY)) if record.vocabulary == BUNDLED_SOURCE else None
    rows, rows_from = evaluation_rows_of(registry, version)
    return compare_rebuild(registry.load(version), rebuild(raw, record, fixed), rows, rows_from, record.libraries)
