"""Dagster resources: the source, the training protocol and gate, the CV parallelism."""

import dagster as dg
import pandas as pd

from census_assets.core.training import CVProtocol
from census_assets.settings import BUNDLED_SOURCE, DEFAULT_ACCURACY_THRESHOLD
from census_assets.sources import file_fingerprint, read_source


class CensusSource(dg.ConfigurableResource):
    """Where raw_census comes from: `bundled`, a CSV/Parquet path, or a gs:// URL."""

    uri: str = BUNDLED_SOURCE

    def read(self) -> pd.DataFrame:
        return read_source(self.uri)

    def fingerprint(self) -> str:
        """Changes whenever the source's content changes; the source sensor compares it."""
        return file_fingerprint(self.uri)


class TrainingSettings(dg.ConfigurableResource):
    """The CV protocol, the model seed, the accuracy gate and how many fits run side by side."""

    accuracy_threshold: float = DEFAULT_ACCURACY_THRESHOLD
    n_splits: int = 5
    n_repeats: int = 3
    cv_random_state: int = 1
    model_seed: int = 1
    workers: int = 0  # parallel CV fits; 0 = one per core (threads per fit = cores // workers)

    @property
    def protocol(self) -> CVProtocol:
        return CVProtocol(self.n_splits, self.n_repeats, self.cv_random_state, self.model_seed)
