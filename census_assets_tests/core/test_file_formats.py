"""Parquet both ways: the bytes pandas writes and the frame pandas reads, attrs included."""

import io

import pandas as pd
import pytest

from census_assets.core.features import VOCABULARY_ATTR
from census_assets.core.file_formats import parquet_bytes, parquet_frame


@pytest.fixture
def frame(bundled_raw) -> pd.DataFrame:
    table = bundled_raw.head(500).copy()
    table.attrs[VOCABULARY_ATTR] = {"columns": ["age", "sex"]}
    return table


@pytest.mark.parametrize("compression", ["zstd", "snappy"])
def test_parquet_bytes_are_the_bytes_pandas_writes(frame, compression):
    buffer = io.BytesIO()
    frame.to_parquet(buffer, compression=compression, index=False)
    assert parquet_bytes(frame, compression) == buffer.getvalue()


def test_parquet_frame_is_the_frame_pandas_reads_from_bytes_or_a_path(frame, tmp_path):
    data = parquet_bytes(frame, "zstd")
    path = tmp_path / "table.parquet"
    path.write_bytes(data)
    expected = pd.read_parquet(io.BytesIO(data))
    for read in (parquet_frame(data), parquet_frame(path)):
        pd.testing.assert_frame_equal(read, expected, check_exact=True)
        assert read.attrs == expected.attrs == frame.attrs


def test_a_damaged_parquet_file_raises(frame):
    with pytest.raises(Exception, match="(?i)parquet|magic|footer"):
        parquet_frame(parquet_bytes(frame, "zstd")[:-100])
