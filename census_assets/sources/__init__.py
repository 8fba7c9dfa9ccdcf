"""Readers for the census source: the bundled table, a CSV/Parquet file on a path or gs://, or a
BigQuery table.

A source is named by one string (CENSUS_SOURCE): `bundled`, `/path/to/file.csv`, `gs://b/o.parquet`,
`bq://project.dataset.table`. Schemes are dispatched in `read_source`; BigQuery lives in
census_assets.gcp and needs a client factory (dagster-gcp's BigQueryResource).
"""

import hashlib
from importlib import resources
from pathlib import Path

import fsspec
import pandas as pd

from census_assets.settings import BUNDLED_SOURCE

BUNDLED_TRAIN = "census_train.parquet"
BUNDLED_HOLDOUT = "census_holdout.parquet"
BUNDLED_VOCABULARY = "vocabulary.json"
BIGQUERY_SCHEME = "bq://"
FILE_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".csv.gz": "csv"}


class SourceError(ValueError):
    """The source cannot be read; the message names it."""


def bundled_file(name: str) -> Path:
    return Path(str(resources.files("census_assets") / "data" / name))


def file_format(uri: str) -> str:
    for suffix, kind in FILE_FORMATS.items():
        if uri.lower().endswith(suffix):
            return kind
    raise SourceError(
        f"cannot tell the format of source {uri!r}: expected one of {', '.join(FILE_FORMATS)}"
    )


def read_file(uri: str, storage_options: dict | None = None) -> pd.DataFrame:
    """A CSV or Parquet file from a local path or any fsspec URL (gs://...)."""
    kind = file_format(uri)
    try:
        with fsspec.open(uri, "rb", compression="infer", **(storage_options or {})) as handle:
            return pd.read_parquet(handle) if kind == "parquet" else pd.read_csv(handle)
    except FileNotFoundError:
        raise SourceError(f"source file not found: {uri}") from None


def _bigquery(bigquery, uri: str):
    if bigquery is None:
        raise SourceError(f"source {uri} needs a BigQuery client (dagster-gcp's BigQueryResource)")
    from census_assets import gcp  # google-cloud-bigquery is imported only for bq:// sources

    return gcp


def read_source(uri: str, storage_options: dict | None = None, bigquery=None) -> pd.DataFrame:
    if uri == BUNDLED_SOURCE:
        return pd.read_parquet(bundled_file(BUNDLED_TRAIN))
    if uri.startswith(BIGQUERY_SCHEME):
        return _bigquery(bigquery, uri).read_bigquery_source(bigquery, uri)
    return read_file(uri, storage_options)


def file_fingerprint(uri: str, storage_options: dict | None = None, bigquery=None) -> str:
    """A content hash for local files; the store's own checksum (etag/generation) for remote ones;
    a BigQuery table's last-modified time and row count."""
    if uri.startswith(BIGQUERY_SCHEME):
        return _bigquery(bigquery, uri).table_info(bigquery, uri).version
    path = bundled_file(BUNDLED_TRAIN) if uri == BUNDLED_SOURCE else uri
    fs, fs_path = fsspec.core.url_to_fs(str(path), **(storage_options or {}))
    if not fs.exists(fs_path):
        raise SourceError(f"source file not found: {uri}")
    if "file" not in fs.protocol:
        return f"{fs.protocol[0]}:{fs.checksum(fs_path)}"
    digest = hashlib.sha256()
    with fs.open(fs_path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"
