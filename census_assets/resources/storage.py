"""The storage resources: where artifacts live (`ArtifactStorage`, shared) and the model registry
kept there (`ModelRegistry`, given to assets, checks, sensors and jobs as a `Registry`)."""

import dagster as dg

from census_assets.settings import GCP_CREDENTIALS, GCS_RETRY_DEADLINE, STORAGE_URL, setting_field
from census_assets.storage.objects import ObjectStore, open_store
from census_assets.storage.registry import Registry


class ArtifactStorage(dg.ConfigurableResource):
    """CENSUS_STORAGE_URL: a local folder or gs://bucket/prefix, with the GCS retry deadline and key."""

    url: str = setting_field(STORAGE_URL, default=...)
    gcs_retry_deadline: float = setting_field(GCS_RETRY_DEADLINE)
    gcp_credentials: str | None = setting_field(GCP_CREDENTIALS, default=None)

    def store(self) -> ObjectStore:
        return self.open(self.url)

    def open(self, url: str, deadline: float | None = None) -> ObjectStore:
        """Another location (an inbox, a labels folder) with the same key and retry deadline,
        capped at `deadline` (a sensor's listing must not wait out the whole retry budget)."""
        retry = self.gcs_retry_deadline if deadline is None else min(deadline, self.gcs_retry_deadline)
        return open_store(url, retry_deadline=retry, credentials=self.gcp_credentials)


class ModelRegistry(dg.ConfigurableResource):
    """The model registry (versions, production pointer, promotions) in the artifact storage.
    Ask for it as `model_registry: dg.ResourceParam[Registry]`."""

    storage: ArtifactStorage

    def create_resource(self, context: dg.InitResourceContext) -> Registry:
        return Registry(self.storage.store())
