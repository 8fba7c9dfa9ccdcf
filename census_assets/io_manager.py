"""The Dagster IO manager: every asset in an open format under CENSUS_STORAGE_URL (local or gs://),
through census_assets.artifacts."""

from typing import Any

import dagster as dg
from pydantic import Field

from census_assets.artifacts import ArtifactStore, BucketNotFoundError, codec_for
from census_assets.core.registry import Registry
from census_assets.settings import DEFAULT_GCS_RETRY_DEADLINE


class CensusIOManager(dg.ConfigurableIOManager):
    """Stores each asset at `<base_url>/<asset_name>.<ext>` in an open format (local or gs://)."""

    base_url: str = Field(description="CENSUS_STORAGE_URL: a local directory or gs://bucket/prefix")
    gcs_retry_deadline: float = Field(
        default=DEFAULT_GCS_RETRY_DEADLINE,
        description="CENSUS_GCS_RETRY_DEADLINE: seconds a gs:// read or write retries transient errors",
    )
    gcp_credentials: str | None = Field(
        default=None,
        description="GCP_CREDENTIALS (a dg.EnvVar): a base64 service-account key; unset: default credentials",
    )

    def store(self) -> ArtifactStore:
        return ArtifactStore(
            self.base_url, retry_deadline=self.gcs_retry_deadline, gcp_credentials=self.gcp_credentials
        )

    def registry(self) -> Registry:
        """The model registry, kept in the same storage."""
        return Registry(self.store())

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        store = self.store()
        name = "_".join(context.asset_key.path)
        try:
            files = codec_for(type(obj)).dump(store, name, obj)
        except BucketNotFoundError as error:
            raise dg.Failure(description=str(error), allow_retries=False) from error
        sizes = {key: len(data) for key, data in files.items()}
        context.add_output_metadata(
            {
                # The last object written is the asset's own file (the model's .txt).
                "path": dg.MetadataValue.path(store.url(next(reversed(files)))),
                "size_bytes": sum(sizes.values()),
                "files": dg.MetadataValue.json(sizes),
            }
        )

    def load_input(self, context: dg.InputContext) -> Any:
        name = "_".join(context.asset_key.path)
        return codec_for(context.dagster_type.typing_type).load(self.store(), name)
