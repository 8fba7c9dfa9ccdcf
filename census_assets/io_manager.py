"""The Dagster IO manager: each materialisation written under its run's prefix and committed with a
per-asset pointer (census_assets.artifacts.commit); each input read from this run, the run it
re-executes, or the pointer, verified against its manifest."""

from typing import Any

import dagster as dg
from pydantic import Field

from census_assets.artifacts import (
    ArtifactKey,
    ArtifactStore,
    PermanentStorageError,
    codec_for,
    commit,
    load_committed,
)
from census_assets.core.registry import Registry
from census_assets.settings import DEFAULT_GCS_RETRY_DEADLINE

# Definition metadata of a partitioned asset: the folder its published copies go to (`scored`).
PUBLISHED_AS = "census/published_as"


def _key(context: dg.OutputContext | dg.InputContext, partition: str | None) -> ArtifactKey:
    output = context.upstream_output if isinstance(context, dg.InputContext) else context
    return ArtifactKey(
        asset="_".join(context.asset_key.path),
        partition=partition,
        published_as=((output.definition_metadata if output else None) or {}).get(PUBLISHED_AS),
    )


def _lineage(context: dg.InputContext) -> tuple[str, ...]:
    """This run, then the runs it re-executes: where an upstream output of this run's lineage is."""
    step = context.step_context
    runs, run = [step.run_id], step.dagster_run
    while run is not None and run.parent_run_id:
        runs.append(run.parent_run_id)
        run = step.instance.get_run_by_id(run.parent_run_id)
    return tuple(runs)


class CensusIOManager(dg.ConfigurableIOManager):
    """Stores each asset in an open format under CENSUS_STORAGE_URL (local or gs://): run-scoped
    files, a committed pointer, and published copies at `<base_url>/<asset_name>.<ext>`."""

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
        key = _key(context, context.partition_key if context.has_partition_key else None)
        files = codec_for(type(obj)).encode(obj)
        try:
            manifest = commit(store, key, context.run_id, files)
        except PermanentStorageError as error:  # no space, no permission, no bucket: once is enough
            raise dg.Failure(description=str(error), allow_retries=False) from error
        sizes = {name: len(data) for name, data in zip(manifest["files"], files.values(), strict=True)}
        context.add_output_metadata(
            {
                # The last file is the asset's own (the model's .txt); the published copy's URL.
                "path": dg.MetadataValue.path(store.url(key.published_stem + next(reversed(files)))),
                "run_path": dg.MetadataValue.path(store.url(manifest["stem"] + next(reversed(files)))),
                "size_bytes": sum(sizes.values()),
                "files": dg.MetadataValue.json(sizes),
            }
        )

    def load_input(self, context: dg.InputContext) -> Any:
        store, codec, lineage = self.store(), codec_for(context.dagster_type.typing_type), _lineage(context)
        try:
            if not context.has_asset_partitions:
                return load_committed(store, _key(context, None), codec, lineage)
            keys = context.asset_partition_keys
            loaded = {key: load_committed(store, _key(context, key), codec, lineage) for key in keys}
        except PermanentStorageError as error:  # a corrupt or unreadable artifact: retrying cannot help
            raise dg.Failure(description=str(error), allow_retries=False) from error
        return loaded[keys[0]] if len(keys) == 1 else loaded
