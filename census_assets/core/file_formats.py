"""The table files the package reads and writes (training sources, inbox batches, `census-assets
predict`'s input and output, the stored tables): which suffix is which format, reading one, and
Parquet both ways."""

import io
import json
from os import PathLike

import pandas as pd

# Where pandas keeps DataFrame.attrs in a Parquet file's key-value metadata.
PANDAS_ATTRS = "PANDAS_ATTRS"

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
        return pd.read_parquet(source)  # pandas' reader: a path may also be a folder of parts
    return pd.read_csv(source, compression="gzip" if name.lower().endswith(".gz") else None)


def parquet_frame(data: bytes | str | PathLike) -> pd.DataFrame:
    """The DataFrame pd.read_parquet gives for one Parquet file the package wrote or ships (its
    bytes or a local path), attrs included, read as one file: pandas' reader goes through pyarrow's
    dataset layer, whose import and setup cost more than reading the bundled table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.ParquetFile(pa.BufferReader(data) if isinstance(data, bytes) else data).read()
    frame = table.to_pandas()
    attrs = (table.schema.metadata or {}).get(PANDAS_ATTRS.encode())
    if attrs:
        frame.attrs = json.loads(attrs)
    return frame


def parquet_bytes(frame: pd.DataFrame, compression: str) -> bytes:
    """What frame.to_parquet(compression=compression, index=False) writes, byte for byte, with
    frame.attrs (the feature vocabulary) in the key-value metadata under pandas' key, so pandas
    reads them back. The columns are converted one after the other: pandas would start a thread
    pool per frame for it, whose threads cost more to start than they save at this table's size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)
    if frame.attrs:
        table = table.replace_schema_metadata({**table.schema.metadata, PANDAS_ATTRS: json.dumps(frame.attrs)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression=compression)
    return buffer.getvalue()
