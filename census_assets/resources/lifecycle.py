"""The `lifecycle` resource: champion/challenger tolerance and the drift limits."""

import dagster as dg
from pydantic import Field


class LifecycleSettings(dg.ConfigurableResource):
    """Champion/challenger tolerance and the drift limits (PSI per feature)."""

    champion_tolerance: float = Field(
        default=0.0, description="A challenger is promoted when its CV accuracy >= the champion's minus this."
    )
    drift_warn_psi: float = Field(
        default=0.1, description="PSI above this on any feature: the non-blocking drift warning fails (WARN)."
    )
    drift_fail_psi: float = Field(
        default=0.25,
        description="PSI above this on any feature: the blocking drift gate fails and promotion stops.",
    )
