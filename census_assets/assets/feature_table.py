"""feature_table: the features published as a BigQuery table for other teams (gcp deployment).

Written by dagster-gcp-pandas' BigQueryPandasIOManager into CENSUS_BQ_DATASET. In the local
deployment there is no warehouse: the asset yields no output, so it is skipped, not failed.
"""

import re
from collections.abc import Iterable

import dagster as dg
import pandas as pd

from census_assets.assets.specs import spec
from census_assets.resources.warehouse import FeatureWarehouse

# The feature table: BigQuery column names allow letters, digits and underscores only (and are
# case-insensitive); feature names such as `occupation_Adm-clerical` are mapped onto that.
_NOT_IDENTIFIER = re.compile(r"[^0-9A-Za-z_]")


def warehouse_column_names(names: Iterable[str]) -> dict[str, str]:
    """Feature name -> BigQuery column name, one to one, or ValueError naming the collision."""
    mapping: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name in names:
        column = _NOT_IDENTIFIER.sub("_", str(name))
        if not column or column[0].isdigit():
            column = f"_{column}"
        if (other := seen.get(column.lower())) is not None:
            raise ValueError(f"features {other!r} and {name!r} both map to BigQuery column {column!r}")
        seen[column.lower()] = str(name)
        mapping[str(name)] = column
    return mapping


@dg.asset(**spec("feature_table"), output_required=False)
def feature_table(context: dg.AssetExecutionContext, features: pd.DataFrame, warehouse: FeatureWarehouse):
    """The feature frame as a BigQuery table (`<GCP_PROJECT>.<CENSUS_BQ_DATASET>.feature_table`).

    BigQuery column names hold only letters, digits and underscores and ignore case, so
    `occupation_Adm-clerical` becomes OCCUPATION_ADM_CLERICAL (dagster-gcp-pandas upper-cases
    names); the mapping is in the metadata.
    """
    if not warehouse.dataset:
        context.log.info("feature_table is published only with CENSUS_DEPLOYMENT=gcp: skipped")
        return
    mapping = warehouse_column_names(features.columns)
    table = features.rename(columns=mapping)
    table.attrs = {}  # the vocabulary stays with features.parquet; BigQuery has no place for it
    yield dg.Output(
        table,
        metadata={
            "bigquery_table": warehouse.table(context.asset_key.path[-1]),
            "column_count": len(table.columns),
            "column_mapping": dg.MetadataValue.json({k: v.upper() for k, v in mapping.items()}),
        },
    )
