"""The `training` resource: the CV protocol, the model seed, the accuracy gate, the parallelism."""

import dagster as dg
from pydantic import Field

from census_assets.core.training import CVProtocol
from census_assets.settings import ACCURACY_THRESHOLD, WORKERS, setting_field


class TrainingSettings(dg.ConfigurableResource):
    """The CV protocol, the model seed, the accuracy gate and how many fits run side by side."""

    accuracy_threshold: float = setting_field(ACCURACY_THRESHOLD)
    n_splits: int = Field(default=5, description="RepeatedStratifiedKFold n_splits")
    n_repeats: int = Field(default=3, description="RepeatedStratifiedKFold n_repeats")
    cv_random_state: int = Field(default=1, description="RepeatedStratifiedKFold random_state")
    model_seed: int | None = Field(
        default=None,
        description="LightGBM random_state; empty: none passed, exactly the seed's LGBMClassifier()",
    )
    workers: int = setting_field(WORKERS)

    @property
    def protocol(self) -> CVProtocol:
        return CVProtocol(self.n_splits, self.n_repeats, self.cv_random_state, self.model_seed)
