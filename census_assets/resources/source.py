"""Dagster resources: the source, the training protocol and gate, the CV parallelism."""

from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd
from pydantic import Field

from census_assets.core.training import CVProtocol
from census_assets.settings import BUNDLED_SOURCE, DEFAULT_ACCURACY_THRESHOLD
from census_assets.sources import BIGQUERY_SCHEME, file_fingerprint, read_source

if TYPE_CHECKING:
    from dagster_gcp import BigQueryResource


class CensusSource(dg.ConfigurableResource):
    """Where raw_census comes from: `bundled`, a CSV/Parquet path, a gs:// URL or a BigQuery table."""

    uri: str = Field(
        default=BUNDLED_SOURCE,
        description="CENSUS_SOURCE: `bundled`, a CSV/Parquet path, a gs:// URL, "
        "or bq://project.dataset.table",
    )
    project: str = Field(
        default="",
        description="GCP_PROJECT: the project billed for bq:// queries (empty: from credentials)",
    )

    gcp_credentials: str | None = Field(
        default=None,
        description="GCP_CREDENTIALS (an EnvVar): a base64 service-account key; unset: default credentials",
    )

    def bigquery(self) -> "BigQueryResource":
        # dagster-gcp's resource: the client (and credential lookup) only when a bq:// source is read;
        # imported here since dagster-gcp takes seconds to import and local runs never need it.
        from dagster_gcp import BigQueryResource

        return BigQueryResource(project=self.project or None, gcp_credentials=self.gcp_credentials)

    @property
    def is_bigquery(self) -> bool:
        return self.uri.startswith(BIGQUERY_SCHEME)

    def read(self) -> pd.DataFrame:
        return read_source(self.uri, bigquery=self.bigquery() if self.is_bigquery else None)

    def fingerprint(self) -> str:
        """Changes whenever the source's content changes; the source sensor compares it."""
        return file_fingerprint(self.uri, bigquery=self.bigquery() if self.is_bigquery else None)

    def table_info(self):
        """A bq:// source's last-modified time and row count (census_assets.gcp.TableInfo); None
        for files."""
        if not self.is_bigquery:
            return None
        from census_assets.gcp import table_info

        return table_info(self.bigquery(), self.uri)


class TrainingSettings(dg.ConfigurableResource):
    """The CV protocol, the model seed, the accuracy gate and how many fits run side by side."""

    accuracy_threshold: float = Field(
        default=DEFAULT_ACCURACY_THRESHOLD,
        description="CENSUS_ACCURACY_THRESHOLD: minimum mean CV accuracy to fit lgbm_model",
    )
    n_splits: int = Field(default=5, description="RepeatedStratifiedKFold n_splits")
    n_repeats: int = Field(default=3, description="RepeatedStratifiedKFold n_repeats")
    cv_random_state: int = Field(default=1, description="RepeatedStratifiedKFold random_state")
    model_seed: int = Field(default=1, description="LightGBM random_state")
    workers: int = Field(
        default=0,
        description="CENSUS_WORKERS: CV fits side by side; 0 = one per core "
        "(LightGBM threads per fit = cores // workers)",
    )

    @property
    def protocol(self) -> CVProtocol:
        return CVProtocol(self.n_splits, self.n_repeats, self.cv_random_state, self.model_seed)
