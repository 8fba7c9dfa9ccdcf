"""Metadata builders: what a person sees in the UI without opening a file."""

import base64
import math
from collections.abc import Mapping

import dagster as dg
import pandas as pd

from census_assets.core.model_card import card_charts, render_markdown

PREVIEW_ROWS = 10


def table_schema(frame: pd.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(str(name), str(dtype)) for name, dtype in frame.dtypes.items()]
    )


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = format(value, "g") if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> dg.MetadataValue:
    """A frame as a Markdown table (no index), numeric columns aligned right; floats as `g` formats
    them. Written directly: tabulate (DataFrame.to_markdown) pads every cell to its column's width,
    which the UI does not need, at many times the cost."""
    rule = ["---:" if pd.api.types.is_numeric_dtype(dtype) else ":---" for dtype in frame.dtypes]
    lines = [
        "| " + " | ".join(_cell(name) for name in frame.columns) + " |",
        "|" + "|".join(rule) + "|",
        *("| " + " | ".join(_cell(value) for value in row) + " |" for row in frame.itertuples(index=False)),
    ]
    return dg.MetadataValue.md("\n".join(lines))


def table_value(frame: pd.DataFrame) -> dg.TableMetadataValue:
    """A small frame as a typed table: the UI renders it with its schema."""
    records = [dg.TableRecord(row) for row in frame.to_dict(orient="records")]
    return dg.MetadataValue.table(records, schema=table_schema(frame))


def png_data_uri(png: bytes) -> str:
    return f"data:image/png;base64,{base64.b64encode(png).decode()}"


def png_markdown(png: bytes, alt: str) -> dg.MetadataValue:
    """An image embedded in Markdown (a data URI), so the UI shows it without opening a file."""
    return dg.MetadataValue.md(f"![{alt}]({png_data_uri(png)})")


def markdown_with_pngs(markdown: str, pngs: Mapping[str, bytes]) -> dg.MetadataValue:
    """A document whose images name files beside it (a model card names its reliability diagrams:
    `![...](reliability_sex.png)`) with each named PNG embedded as a data URI: the UI has no
    folder to fetch them from, and would show them broken."""
    for name, png in pngs.items():
        markdown = markdown.replace(f"]({name})", f"]({png_data_uri(png)})")
    return dg.MetadataValue.md(markdown)


def model_card_value(card: Mapping) -> dg.MetadataValue:
    """A model card as the UI shows it: its Markdown with the reliability diagrams it names embedded."""
    return markdown_with_pngs(render_markdown(card), card_charts(card))


def frame_metadata(frame: pd.DataFrame) -> dict:
    return {
        "dagster/row_count": len(frame),
        "column_count": len(frame.columns),
        "dagster/column_schema": table_schema(frame),
        "preview": markdown_table(frame.head(PREVIEW_ROWS)),
        "memory_bytes": int(frame.memory_usage(deep=False).sum()),
    }
