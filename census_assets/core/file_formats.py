"""The table files the package reads (training sources, inbox batches, `census-assets predict`'s
input and output): which suffix is which format, and reading one."""

import io
from os import PathLike

import pandas as pd

FILE_FORMATS = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
SUFFIXES = tuple(FILE_FORMATS)


class UnknownFormatError(ValueError):
    """A file name whose suffix is none of FILE_FORMATS."""


def file_format(name: str) -> str:
    """`csv` or `parquet`, by the name's suffix (any case)."""
    lowered = name.lower()
    for suffix, kind in FILE_FORMATS.items():
        if lowered.endswith(suffix):
            return kind
    raise UnknownFormatError(f"cannot tell the format of {name!r}: expected one of {', '.join(FILE_FORMATS)}")


def read_table(data: bytes | str | PathLike, name: str) -> pd.DataFrame:
    """A file's rows, given its bytes or a local path, in the format its `name` says (a `.gz`
    CSV decompressed). pandas' and pyarrow's own errors pass through."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    if file_format(name) == "parquet":
        return pd.read_parquet(source)
    return pd.read_csv(source, compression="gzip" if name.lower().endswith(".gz") else None)
