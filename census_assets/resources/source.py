"""The `source` resource: where raw_census comes from (CENSUS_SOURCE)."""

from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd

from census_assets.settings import GCP_CREDENTIALS, GCP_PROJECT, SOURCE, setting_field
from census_assets.sources import read_source, source_fingerprint
from census_assets.sources.common import BIGQUERY_SCHEME

if TYPE_CHECKING:
    from dagster_gcp import BigQueryResource

    from census_assets.sources.bigquery import TableInfo


class CensusSource(dg.ConfigurableResource):
    """Where raw_census comes from: `bundled`, a CSV/Parquet path, a gs:// URL or a BigQuery table."""

    uri: str = setting_field(SOURCE)
    project: str = setting_field(GCP_PROJECT)
    gcp_credentials: str | None = setting_field(GCP_CREDENTIALS, default=None)

    def bigquery(self) -> "BigQueryResource":
        # dagster-gcp's resource: the client (and credential lookup) only when a bq:// source is read;
        # imported here since dagster-gcp takes seconds to import and local runs never need it.
        from dagster_gcp import BigQueryResource

        return BigQueryResource(project=self.project or None, gcp_credentials=self.gcp_credentials)

    @property
    def is_bigquery(self) -> bool:
        return self.uri.startswith(BIGQUERY_SCHEME)

    def _client(self) -> "BigQueryResource | None":
        return self.bigquery() if self.is_bigquery else None

    def read(self) -> pd.DataFrame:
        return read_source(self.uri, credentials=self.gcp_credentials, bigquery=self._client())

    def fingerprint(self) -> str:
        """Changes whenever the source's content changes; the source sensor compares it."""
        return source_fingerprint(self.uri, credentials=self.gcp_credentials, bigquery=self._client())

    def table_info(self) -> "TableInfo | None":
        """A bq:// source's last-modified time and row count; None for files."""
        if not self.is_bigquery:
            return None
        from census_assets.sources.bigquery import table_info

        return table_info(self.bigquery(), self.uri)
