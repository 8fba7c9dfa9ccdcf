"""CSV and Parquet sources on a local path or any fsspec URL (gs://...), and their fingerprints."""

import hashlib

import fsspec
import pandas as pd

from census_assets.sources.common import SourceError

FILE_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".csv.gz": "csv"}


def file_format(uri: str) -> str:
    for suffix, kind in FILE_FORMATS.items():
        if uri.lower().endswith(suffix):
            return kind
    raise SourceError(f"cannot tell the format of {uri!r}: expected one of {', '.join(FILE_FORMATS)}")


def read_file(uri: str, storage_options: dict | None = None) -> pd.DataFrame:
    """A CSV or Parquet file from a local path or any fsspec URL (gs://...)."""
    kind = file_format(uri)
    try:
        with fsspec.open(uri, "rb", compression="infer", **(storage_options or {})) as handle:
            return pd.read_parquet(handle) if kind == "parquet" else pd.read_csv(handle)
    except FileNotFoundError:
        raise SourceError(f"source file not found: {uri}") from None


def file_fingerprint(uri: str, storage_options: dict | None = None) -> str:
    """A content hash for local files; the store's own checksum for remote ones (gs://: the md5
    or crc32c GCS keeps), so a `touch` or a re-upload of the same bytes changes nothing."""
    fs, fs_path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    if not fs.exists(fs_path):
        raise SourceError(f"source file not found: {uri}")
    if "file" not in fs.protocol:
        return f"{fs.protocol[0]}:{fs.checksum(fs_path)}"
    digest = hashlib.sha256()
    with fs.open(fs_path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"
