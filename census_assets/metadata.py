"""Metadata builders: what a person sees in the UI without opening a file."""

import dagster as dg
import pandas as pd

PREVIEW_ROWS = 10


def table_schema(frame: pd.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(str(name), str(dtype)) for name, dtype in frame.dtypes.items()]
    )


def markdown_table(frame: pd.DataFrame) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.to_markdown(index=False))


def frame_metadata(frame: pd.DataFrame) -> dict:
    return {
        "dagster/row_count": len(frame),
        "column_count": len(frame.columns),
        "dagster/column_schema": table_schema(frame),
        "preview": markdown_table(frame.head(PREVIEW_ROWS)),
        "memory_bytes": int(frame.memory_usage(deep=False).sum()),
    }
