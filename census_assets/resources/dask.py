"""The `dask` resource: where the heavy compute runs (CENSUS_DASK_ADDRESS), or locally."""

from contextlib import contextmanager
from typing import TYPE_CHECKING

import dagster as dg
import numpy as np
from pydantic import Field

from census_assets.core import training
from census_assets.core.training import CVProtocol, CVResult
from census_assets.settings import DASK_ADDRESS, DASK_FIT_MIN_ROWS, DEFAULT_LIGHTGBM_PORT, setting_field

if TYPE_CHECKING:
    import lightgbm as lgb

class DaskResource(dg.ConfigurableResource):
    """Where the heavy compute runs: a Dask scheduler address, or locally when empty."""

    address: str = setting_field(DASK_ADDRESS)
    distributed_fit_min_rows: int = setting_field(DASK_FIT_MIN_ROWS)
    lightgbm_port: int = Field(
        default=DEFAULT_LIGHTGBM_PORT,
        description="first of the ports LightGBM listens on (all interfaces), one per worker: firewall them",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.address.strip())

    @contextmanager
    def client(self):
        from distributed import Client

        client = Client(self.address.strip(), timeout="30s")
        try:
            yield client
        finally:
            client.close()

    def cross_validate(
        self, X: training.Features, y: np.ndarray, protocol: CVProtocol, workers: int | None = None
    ) -> CVResult:
        if not self.enabled:
            return training.cross_validate(X, y, protocol, workers)
        from census_assets.distributed import cross_validate_on  # dask: only with a cluster

        with self.client() as client:
            return cross_validate_on(client, X, y, protocol)

    def fits_on_cluster(self, rows: int) -> bool:
        return self.enabled and rows >= self.distributed_fit_min_rows

    def fit_final(
        self, X: training.Features, y: np.ndarray, feature_names: list[str], model_seed: int | None
    ) -> "lgb.Booster":
        if not self.fits_on_cluster(len(y)):
            return training.fit_final(X, y, feature_names, model_seed)
        from census_assets.distributed import fit_final_on

        with self.client() as client:
            return fit_final_on(client, X, y, feature_names, model_seed, self.lightgbm_port)
