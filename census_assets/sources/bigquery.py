"""The BigQuery source reader (no Dagster): `bq://project.dataset.table`.

A BigQuery source is named `bq://project.dataset.table`. Every part is checked against BigQuery's
identifier rules before it reaches SQL, and the column list comes from the census schema, so no
query is ever built from unchecked input. Queries are billed to the client's project (GCP_PROJECT).
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import pandas as pd

from census_assets.core.schema import SOURCE_COLUMNS, SchemaError
from census_assets.sources.common import BIGQUERY_SCHEME, SourceError

# BigQuery's naming rules, kept strict: a project id is 6-30 lowercase letters, digits and hyphens
# (optionally domain-scoped, `example.com:project`); datasets are letters, digits, underscores;
# tables may also hold hyphens. Anything else (quotes, backticks, spaces, `;`) is refused.
PROJECT_ID = re.compile(r"(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]")
DATASET_ID = re.compile(r"[A-Za-z0-9_]{1,1024}")
TABLE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,1023}")


class BigQueryNameError(SourceError):
    """A BigQuery project, dataset or table name that breaks the identifier rules."""


@dataclass(frozen=True)
class TableRef:
    project: str
    dataset: str
    table: str

    def __str__(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table}"

    @property
    def sql(self) -> str:
        """The quoted name for SQL; safe because every part matched its identifier rule."""
        return f"`{self}`"


def parse_table_uri(uri: str) -> TableRef:
    """`bq://project.dataset.table` -> TableRef, or BigQueryNameError naming the bad part."""
    if not uri.startswith(BIGQUERY_SCHEME):
        raise BigQueryNameError(f"not a BigQuery source {uri!r}: expected bq://project.dataset.table")
    parts = uri[len(BIGQUERY_SCHEME) :].split(".")
    # A domain-scoped project (example.com:project) has dots of its own: the last two are the rest.
    if len(parts) < 3:
        raise BigQueryNameError(f"BigQuery source {uri!r} must be bq://project.dataset.table")
    project, dataset, table = ".".join(parts[:-2]), parts[-2], parts[-1]
    for kind, value, rule in (
        ("project", project, PROJECT_ID),
        ("dataset", dataset, DATASET_ID),
        ("table", table, TABLE_ID),
    ):
        if not rule.fullmatch(value):
            raise BigQueryNameError(
                f"BigQuery source {uri!r}: {kind} name {value!r} is not a valid BigQuery identifier"
            )
    return TableRef(project, dataset, table)


class BigQueryClientFactory(Protocol):
    """What the reader needs: dagster-gcp's BigQueryResource (`with bq.get_client() as client`)."""

    def get_client(self): ...


@dataclass(frozen=True)
class TableInfo:
    """What identifies a version of the source table: its last change and its size."""

    table: str
    modified: datetime | None
    num_rows: int | None

    @property
    def version(self) -> str:
        modified = self.modified.isoformat() if self.modified else "unknown"
        return f"bq:{self.table}@{modified}/{self.num_rows}"

    def metadata(self) -> dict:
        return {
            "bigquery_table": self.table,
            "bigquery_last_modified": self.modified.isoformat() if self.modified else "unknown",
            "bigquery_num_rows": -1 if self.num_rows is None else int(self.num_rows),
        }


def _get_table(client, ref: TableRef):
    from google.api_core.exceptions import NotFound

    try:
        return client.get_table(str(ref))
    except NotFound as error:
        raise SourceError(f"BigQuery table {ref} not found ({error.message})") from None


def table_info(bigquery: BigQueryClientFactory, uri: str) -> TableInfo:
    ref = parse_table_uri(uri)
    with bigquery.get_client() as client:
        table = _get_table(client, ref)
    return TableInfo(str(ref), table.modified, table.num_rows)


def read_bigquery_source(bigquery: BigQueryClientFactory, uri: str) -> pd.DataFrame:
    """The census columns of a BigQuery table, as the file readers give them.

    The table's schema is checked first (a missing column fails before any query is billed).
    Results come through the REST API: the table is small, and this needs neither the BigQuery
    Storage client nor its read-session permission. Integer columns come back as int64 (float
    where NULLs occur), as from a file, so validation and cleaning see the same types.
    """
    ref = parse_table_uri(uri)
    with bigquery.get_client() as client:
        table = _get_table(client, ref)
        present = {field.name for field in table.schema}
        missing = [name for name in SOURCE_COLUMNS if name not in present]
        if missing:
            raise SchemaError(
                f"census source is invalid: BigQuery table {ref} is missing required column(s): "
                + ", ".join(missing)
            )
        # Column names are the schema's constants and the table name matched its rules above.
        query = f"SELECT {', '.join(SOURCE_COLUMNS)} FROM {ref.sql}"
        job = client.query(query)
        return job.result().to_dataframe(create_bqstorage_client=False, int_dtype=None)
