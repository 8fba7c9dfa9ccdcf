"""The census source, named by one string (CENSUS_SOURCE): `bundled`, `/path/to/file.csv`,
`gs://b/o.parquet` or `bq://project.dataset.table`.

Imports go one way: this dispatch -> files | bigquery -> common. BigQuery (and
google-cloud-bigquery) is imported only when a bq:// source is used.
"""

import pandas as pd

from census_assets.core.file_formats import parquet_frame
from census_assets.sources.common import (
    BIGQUERY_SCHEME,
    BUNDLED_SOURCE,
    BUNDLED_TRAIN,
    SourceError,
    bundled_file,
)


def _needs_client(bigquery, uri: str) -> None:
    if bigquery is None:
        raise SourceError(f"source {uri} needs a BigQuery client (dagster-gcp's BigQueryResource)")


def read_source(uri: str, credentials: str | None = None, bigquery=None) -> pd.DataFrame:
    """`credentials`: GCP_CREDENTIALS (a base64 service-account key) for gs://; None: default credentials."""
    from census_assets.sources.files import read_file

    if uri == BUNDLED_SOURCE:
        return parquet_frame(bundled_file(BUNDLED_TRAIN))
    if uri.startswith(BIGQUERY_SCHEME):
        _needs_client(bigquery, uri)
        from census_assets.sources.bigquery import read_bigquery_source

        return read_bigquery_source(bigquery, uri)
    return read_file(uri, credentials)


def source_fingerprint(uri: str, credentials: str | None = None, bigquery=None) -> str:
    """Changes whenever the source's content changes: a file's content hash or object checksum, a
    BigQuery table's last-modified time and row count."""
    if uri.startswith(BIGQUERY_SCHEME):
        _needs_client(bigquery, uri)
        from census_assets.sources.bigquery import table_info

        return table_info(bigquery, uri).version
    from census_assets.sources.files import file_fingerprint

    return file_fingerprint(str(bundled_file(BUNDLED_TRAIN)) if uri == BUNDLED_SOURCE else uri, credentials)
