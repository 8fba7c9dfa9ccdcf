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

    def open(self, url: str) -> ObjectStore:
        """Another location (an inbox, a labels folder) with the same retry deadline and key."""
        return open_store(url, retry_deadline=self.gcs_retry_deadline, credentials=self.gcp_credentials)


class ModelRegistry(dg.ConfigurableResource):
    """The model registry (versions, production pointer, promotions) in the artifact storage.
    Ask for it as `model_registry: dg.ResourceParam[Registry]`."""

    storage: ArtifactStorage

    def create_resource(self, context: dg.InitResourceContext) -> Registry:
        return Registry(self.storage.store())
