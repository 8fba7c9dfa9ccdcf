"""The `warehouse` resource and IO manager: where feature_table is published (gcp: BigQuery)."""

import dagster as dg

from census_assets.settings import BQ_DATASET, GCP_PROJECT, setting_field

WAREHOUSE_IO_MANAGER = "warehouse_io_manager"


class FeatureWarehouse(dg.ConfigurableResource):
    """Where feature_table is published; an empty dataset means not published (local)."""

    project: str = setting_field(GCP_PROJECT)
    dataset: str = setting_field(BQ_DATASET)

    def table(self, name: str) -> str:
        return f"{self.project}.{self.dataset}.{name}"


class UnpublishedIOManager(dg.ConfigurableIOManager):
    """The local deployment's warehouse: feature_table yields nothing there, so this never runs."""

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        raise dg.Failure("feature_table is published to BigQuery only with CENSUS_DEPLOYMENT=gcp")

    def load_input(self, context: dg.InputContext):
        raise dg.Failure("feature_table lives in BigQuery only with CENSUS_DEPLOYMENT=gcp")
