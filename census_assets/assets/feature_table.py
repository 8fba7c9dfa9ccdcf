"""feature_table: the features published as a BigQuery table for other teams (gcp deployment).

Written by dagster-gcp-pandas' BigQueryPandasIOManager into CENSUS_BQ_DATASET. In the local
deployment there is no warehouse: the asset yields no output, so it is skipped, not failed.
"""

import dagster as dg
import pandas as pd
from pydantic import Field

from census_assets.assets.census import GROUP, OWNERS, STORAGE_RETRY
from census_assets.gcp import warehouse_column_names

WAREHOUSE_IO_MANAGER = "warehouse_io_manager"


class FeatureWarehouse(dg.ConfigurableResource):
    """Where feature_table is published; an empty dataset means not published (local)."""

    project: str = Field(default="", description="GCP_PROJECT: the project holding the dataset")
    dataset: str = Field(default="", description="CENSUS_BQ_DATASET: the feature table's dataset")

    def table(self, name: str) -> str:
        return f"{self.project}.{self.dataset}.{name}"


class UnpublishedIOManager(dg.ConfigurableIOManager):
    """The local deployment's warehouse: feature_table yields nothing there, so this never runs."""

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        raise dg.Failure("feature_table is published to BigQuery only with CENSUS_DEPLOYMENT=gcp")

    def load_input(self, context: dg.InputContext):
        raise dg.Failure("feature_table lives in BigQuery only with CENSUS_DEPLOYMENT=gcp")


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    retry_policy=STORAGE_RETRY,
    io_manager_key=WAREHOUSE_IO_MANAGER,
    kinds={"bigquery", "pandas"},
    output_required=False,
    code_version="1",
)
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
