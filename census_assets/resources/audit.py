"""The `audit` resource: the group gate's rule, the limits of the fairness and calibration
warnings, and whether promotion needs the model card's human-written parts."""

import dagster as dg
from pydantic import Field

from census_assets.core.calibration import ECE_LIMIT
from census_assets.core.fairness import GROUP_TOLERANCE, MIN_GROUP_ROWS


class AuditSettings(dg.ConfigurableResource):
    """What holdout_metrics' audit judges: per group, between groups, calibration, the card."""

    min_group_rows: int = Field(
        default=MIN_GROUP_ROWS,
        description="The group gate judges a group (a value of a CENSUS_GROUP_COLUMNS column) only when it has at "
        "least this many evaluation rows; smaller groups are listed as too small to judge and never fail it.",
    )
    group_tolerance: float = Field(
        default=GROUP_TOLERANCE,
        description="The group gate fails when, for a group it judges, the upper bound of the 95% interval of "
        "challenger − champion accuracy on the same rows is below minus this.",
    )
    max_demographic_parity_difference: float = Field(
        default=0.2,
        description="The fairness warning (WARN) fails when the selection rates of two groups of a column differ "
        "by more than this.",
    )
    max_equalized_odds_difference: float = Field(
        default=0.2,
        description="The fairness warning (WARN) fails when the true- or false-positive rates of two groups of a "
        "column differ by more than this.",
    )
    calibration_limit: float = Field(
        default=ECE_LIMIT,
        description="The calibration warning (WARN) fails when the expected calibration error (10 equal-width "
        "bins) passes this; the model card then says what the probabilities can and cannot be used for.",
    )
    require_model_card: bool = Field(
        default=False,
        description="Promotion waits until the model card's human-written parts (intended use, out-of-scope "
        "uses, limitations, owners in census_assets/model_card_template.md) are filled in.",
    )
