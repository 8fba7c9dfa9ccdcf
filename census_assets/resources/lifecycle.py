"""The `lifecycle` resource: champion/challenger tolerance, the drift limits and the largest accuracy
drop tolerated on labelled batches."""

import dagster as dg
from pydantic import Field

from census_assets.core.monitoring import DEFAULT_MAX_ACCURACY_DROP


class LifecycleSettings(dg.ConfigurableResource):
    """Champion/challenger tolerance, the drift limits (PSI per feature) and the live accuracy limit."""

    champion_tolerance: float = Field(
        default=0.01,
        description="A challenger is promoted when the lower bound of the 95% paired-bootstrap interval of its "
        "accuracy minus the champion's, on the same evaluation rows, is at least minus this.",
    )
    drift_warn_psi: float = Field(
        default=0.1, description="PSI above this on any feature: the non-blocking drift warning fails (WARN)."
    )
    drift_fail_psi: float = Field(
        default=0.25,
        description="PSI above this on any feature: the blocking drift gate fails and promotion stops.",
    )
    max_accuracy_drop: float = Field(
        default=DEFAULT_MAX_ACCURACY_DROP,
        description="performance_within_limit fails when a labelled batch's accuracy (the upper bound of its 95% "
        "interval) is below the scoring model's evaluation accuracy minus this.",
    )
