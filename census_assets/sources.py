"""Readers for the census source: the bundled table, or a CSV/Parquet file on a path or gs://.

A source is named by one string (CENSUS_SOURCE): `bundled`, `/path/to/file.csv`, `gs://b/o.parquet`.
Schemes are dispatched in `read_source`; BigQuery (`bq://`) plugs in there too.
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


def read_source(uri: str, storage_options: dict | None = None) -> pd.DataFrame:
    if uri == BUNDLED_SOURCE:
        return pd.read_parquet(bundled_file(BUNDLED_TRAIN))
    return read_file(uri, storage_options)


def file_fingerprint(uri: str, storage_options: dict | None = None) -> str:
    """A content hash for local files; the store's own checksum (etag/generation) for remote ones."""
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
