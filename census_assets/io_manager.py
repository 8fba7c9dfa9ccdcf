"""The Dagster IO manager on the artifact storage: each materialisation committed under its run
(census_assets.storage.commits), each input read from this run, the run it re-executes, or the
pointer, verified against its manifest."""

import typing
from typing import Any

import dagster as dg

from census_assets.resources.storage import ArtifactStorage
from census_assets.storage.codecs import codec_for
from census_assets.storage.commits import ArtifactKey, commit, load_committed
from census_assets.storage.errors import PermanentStorageError
from census_assets.storage.leases import LEASE_HOLDER

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
    """Stores each asset in an open format in the artifact storage: run-scoped files, a committed
    pointer, and published copies at `<storage>/<asset_name>.<ext>`."""

    storage: ArtifactStorage

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # This process's part of the run is over: it stops renewing the run's lease, which runs out
        # on its own, so a step of the run in another process finds it live (census_assets.storage.leases).
        LEASE_HOLDER.stop_renewing(context.run_id)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        store = self.storage.store()
        key = _key(context, context.partition_key if context.has_partition_key else None)
        files = codec_for(type(obj)).encode(obj)
        try:
            LEASE_HOLDER.hold(store, context.run_id)
            done = commit(store, key, context.run_id, files)
        except PermanentStorageError as error:  # no space, no permission, no bucket: once is enough
            raise dg.Failure(description=str(error), allow_retries=False) from error
        own_file = next(reversed(files))  # the asset's own file is the last (the model's .txt)
        metadata = {
            "path": dg.MetadataValue.path(store.url(key.published_stem + own_file)),
            "run_path": dg.MetadataValue.path(store.url(done.manifest["stem"] + own_file)),
            "size_bytes": sum(len(data) for data in files.values()),
            "files": dg.MetadataValue.json({name: len(data) for name, data in files.items()}),
            "published": done.published,
        }
        if not done.published:
            # Committed: the step stands. The published copies still hold the previous commit.
            context.log.warning(f"committed, but the published copies were not refreshed: {done.publication_error}")
            metadata["publication_error"] = done.publication_error
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext) -> Any:
        annotated = context.dagster_type.typing_type
        # An input of several partitions is annotated dict[str, T] (partition key -> T), each stored as a T.
        several = context.has_asset_partitions and typing.get_origin(annotated) is dict
        store, lineage = self.storage.store(), _lineage(context)
        codec = codec_for(typing.get_args(annotated)[1] if several else annotated)
        try:
            # A step that only reads (a long CV, a check) holds the lease too: what the run
            # committed and reads again must outlast every step of the run. A re-execution also
            # holds the leases of the runs it reads from (its parent's commits may be superseded).
            for run_id in lineage:
                LEASE_HOLDER.hold(store, run_id, for_run=lineage[0])
            if not context.has_asset_partitions:
                return load_committed(store, _key(context, None), codec, lineage)
            keys = context.asset_partition_keys
            if not several and len(keys) != 1:
                raise TypeError(
                    f"input {context.name} reads {len(keys)} partitions: annotate it "
                    f"dict[str, {getattr(annotated, '__name__', annotated)}] (partition key -> value)"
                )
            loaded = {key: load_committed(store, _key(context, key), codec, lineage) for key in keys}
        except PermanentStorageError as error:  # corrupt, unreadable or missing: retrying cannot help
            raise dg.Failure(description=str(error), allow_retries=False) from error
        return loaded if several else loaded[keys[0]]
