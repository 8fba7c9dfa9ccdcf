"""CSV and Parquet sources on a local path or gs:// (through the storage layer's one GCS client
stack, with the GCP_CREDENTIALS key), and their fingerprints."""

import pandas as pd

from census_assets.core import file_formats
from census_assets.core.fingerprints import stream_fingerprint
from census_assets.sources.common import SourceError
from census_assets.storage.objects import open_store, split_url


def file_format(uri: str) -> str:
    """`csv` or `parquet` (core.file_formats), refused as a SourceError naming the file."""
    try:
        return file_formats.file_format(uri)
    except file_formats.UnknownFormatError as error:
        raise SourceError(str(error)) from None


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def read_bytes(uri: str, credentials: str | None = None) -> bytes:
    """A remote file's bytes (gs://), read with the key; FileNotFoundError when absent."""
    folder, name = split_url(uri)
    return open_store(folder, credentials=credentials).read(name)


def read_file(uri: str, credentials: str | None = None) -> pd.DataFrame:
    """A CSV or Parquet file from a local path or gs:// (`credentials`: a base64 service-account key)."""
    file_format(uri)
    try:
        data = read_bytes(uri, credentials) if is_remote(uri) else uri.removeprefix("file://")
        return file_formats.read_table(data, uri)
    except FileNotFoundError:
        raise SourceError(f"source file not found: {uri}") from None


def file_fingerprint(uri: str, credentials: str | None = None) -> str:
    """A content hash for local files; the store's own checksum for remote ones (gs://: the md5
    or crc32c GCS keeps), so a `touch` or a re-upload of the same bytes changes nothing."""
    try:
        if is_remote(uri):
            folder, name = split_url(uri)
            return open_store(folder, credentials=credentials).stat(name).checksum
        with open(uri.removeprefix("file://"), "rb") as handle:
            return stream_fingerprint(handle)
    except FileNotFoundError:
        raise SourceError(f"source file not found: {uri}") from None
