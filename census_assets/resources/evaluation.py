"""The `evaluation` resource: the rows models are judged on (the evaluation window of labelled
batches, else the held-out table) and the groups performance is reported for."""

import dagster as dg
import pandas as pd
from pydantic import Field

from census_assets.core.evaluation_window import DEFAULT_MIN_EVALUATION_ROWS, DEFAULT_WINDOW_ROWS
from census_assets.core.schema import validate_source
from census_assets.resources.source import CensusSource
from census_assets.settings import GROUP_COLUMNS, HOLDOUT, setting_field
from census_assets.sources import read_source
from census_assets.sources.common import BIGQUERY_SCHEME, BUNDLED_SOURCE


class EvaluationSettings(dg.ConfigurableResource):
    """The evaluation window, the held-out table it falls back to, and the groups reported."""

    holdout: str = setting_field(HOLDOUT)
    group_columns: list[str] = setting_field(GROUP_COLUMNS)
    evaluation_window_rows: int = Field(
        default=DEFAULT_WINDOW_ROWS,
        description="The evaluation window: the newest labelled batches (by when their labels were committed), "
        "taken whole until they hold at least this many labelled rows; they never reach training.",
    )
    min_evaluation_rows: int = Field(
        default=DEFAULT_MIN_EVALUATION_ROWS,
        description="Challenger and champion are compared on the evaluation window when it holds at least this "
        "many rows neither model trained on; otherwise on the held-out table (CENSUS_HOLDOUT).",
    )

    @property
    def bundled_holdout(self) -> bool:
        return self.holdout == BUNDLED_SOURCE

    def read_own_holdout(self, source: CensusSource) -> pd.DataFrame:
        """A CENSUS_HOLDOUT table other than the bundled one, read as a source is (with the
        source's project and key for gs:// and bq://), in the source schema."""
        bigquery = source.bigquery() if self.holdout.startswith(BIGQUERY_SCHEME) else None
        return validate_source(read_source(self.holdout, credentials=source.gcp_credentials, bigquery=bigquery))
