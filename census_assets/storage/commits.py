"""Run-scoped commits: each materialisation written under its run, committed by a pointer swap,
then published for outside readers; verified loads; retention (`prune`).

Layout under the storage base (CENSUS_STORAGE_URL):

  runs/<run_id>/<asset>.<ext>                 what one run wrote (partitioned: <asset>/<partition>.<ext>)
  runs/<run_id>/<asset>.manifest.json         written after the data: the sha256 of each file
  leases/<run_id>/<holder>.json               the run's lease (one record per process) and what it committed
  pointers/<asset>.json                       the committed materialisation and the earlier ones,
                                              swapped with a compare-and-swap (flock / GCS generation)
  <asset>.<ext>, <asset>.manifest.json        published copies for outside readers, written last

A run reads an upstream asset from its own run (or the run it re-executes) when it produced it
there, otherwise from the pointer: never another run's half-finished output, and never another
run's output for an asset it committed itself (if its own files are gone, it refuses).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from census_assets.core.names import is_safe_name
from census_assets.storage.codecs import Codec, load
from census_assets.storage.errors import CorruptArtifactError, MissingArtifactError, StorageError
from census_assets.storage.leases import LEASES, read_lease, read_leases, record_commit, run_of_record
from census_assets.storage.manifests import (
    MANIFEST_SUFFIX,
    digests,
    json_bytes,
    parse_json,
    read_json,
    utc_now,
    write_files,
)
from census_assets.storage.objects import LOCKS, TEMP_SUFFIX, ObjectStore, locked_object

RUNS = "runs"
POINTERS = "pointers"
KEEP_HISTORY = 100  # materialisations remembered per pointer (retention keeps the newest N of them)
def _safe(kind: str, value: str) -> str:
    if not is_safe_name(value):
        raise ValueError(f"{kind} {value!r} is not a safe object name ([A-Za-z0-9_.-], no '..')")
    return value


@dataclass(frozen=True)
class ArtifactKey:
    """One asset (and partition) in storage; `published_as` names the folder of a partitioned
    asset's published copies (scored_batch: `scored/<partition>`)."""

    asset: str
    partition: str | None = None
    published_as: str | None = None

    def __post_init__(self):
        _safe("asset name", self.asset)
        if self.partition is not None:
            _safe("partition key", self.partition)

    @property
    def relative(self) -> str:
        return self.asset if self.partition is None else f"{self.asset}/{self.partition}"

    def run_stem(self, run_id: str) -> str:
        return f"{RUNS}/{_safe('run id', run_id)}/{self.relative}"

    @property
    def pointer(self) -> str:
        return f"{POINTERS}/{self.relative}.json"

    @property
    def published_stem(self) -> str:
        if self.partition is None:
            return self.asset
        return f"{self.published_as or self.asset}/{self.partition}"


@dataclass(frozen=True)
class Commit:
    manifest: dict
    published: bool
    publication_error: str | None = None


def publish(store: ObjectStore, key: ArtifactKey, manifest: dict, files: dict[str, bytes]) -> None:
    """The published copies, then their manifest (the files' sha256 and the run files they copy)."""
    stem = key.published_stem
    copies = write_files(store, stem, files)
    store.write(
        stem + MANIFEST_SUFFIX,
        json_bytes({**manifest, "files": digests(copies), "stem": stem, "run_stem": manifest["stem"]}),
    )


def commit(store: ObjectStore, key: ArtifactKey, run_id: str, files: dict[str, bytes]) -> Commit:
    """Write one materialisation: the run's files, their manifest, the run's lease record, the
    pointer (compare-and-swap), then the published copies. A crash at any point before the swap
    leaves the previous commit in force for every loader. Publication comes after the commit: if
    it fails, the commit stands (the step succeeds, and says the copies were not refreshed)."""
    stem = key.run_stem(run_id)
    written = write_files(store, stem, files)
    manifest = {
        "asset": key.asset,
        "partition": key.partition,
        "run_id": run_id,
        "time": utc_now(),
        "stem": stem,
        "files": digests(written),
    }
    store.write(stem + MANIFEST_SUFFIX, json_bytes(manifest))
    record_commit(store, run_id, key.relative)

    def advance(current: bytes | None) -> bytes:
        url = store.url(key.pointer)
        earlier = pointer_history(parse_json(current, url), url) if current else []
        history = [run_id, *[earlier_run for earlier_run in earlier if earlier_run != run_id]]
        return json_bytes({"current": manifest, "history": history[:KEEP_HISTORY]})

    store.update(key.pointer, advance)
    try:
        publish(store, key, manifest, files)
    except OSError as error:
        return Commit(manifest, published=False, publication_error=str(error))
    return Commit(manifest, published=True)


def pointer_history(pointer: Any, url: str) -> list[str]:
    history = pointer.get("history") if isinstance(pointer, dict) else None
    if not isinstance(history, list) or not all(isinstance(run_id, str) for run_id in history):
        raise CorruptArtifactError(f"{url} is not an artifact pointer (no list of run ids)")
    return history


def run_manifest(store: ObjectStore, key: ArtifactKey, run_id: str) -> dict | None:
    """The manifest of what `run_id` committed for key, or None when it wrote none."""
    name = key.run_stem(run_id) + MANIFEST_SUFFIX
    try:
        data = store.read(name)
    except MissingArtifactError:
        return None
    return parse_json(data, store.url(name))


def committed_manifest(store: ObjectStore, key: ArtifactKey) -> dict:
    try:
        data = store.read(key.pointer)
    except MissingArtifactError:
        raise MissingArtifactError(f"no committed {key.relative} in {store.base_url}: materialise it first") from None
    pointer = parse_json(data, store.url(key.pointer))
    current = pointer.get("current") if isinstance(pointer, dict) else None
    if not isinstance(current, dict) or not isinstance(current.get("files"), dict):
        raise CorruptArtifactError(f"{store.url(key.pointer)} is not an artifact pointer")
    if (current.get("asset"), current.get("partition")) != (key.asset, key.partition):
        raise CorruptArtifactError(f"{store.url(key.pointer)} is not the pointer of {key.relative} (swapped?)")
    return current


def lineage_manifest(store: ObjectStore, key: ArtifactKey, run_ids: tuple[str, ...]) -> dict | None:
    """What the first run of `run_ids` (this run, then the runs it re-executes) that committed key
    committed. None when none of them did; MissingArtifactError when one did but its files are gone:
    reading the pointer instead would hand the run another run's data."""
    for run_id in run_ids:
        found = run_manifest(store, key, run_id)
        if found is not None:
            return found
        lease = read_lease(store, run_id)
        if lease is not None and key.relative in lease.committed:
            raise MissingArtifactError(
                f"run {run_id} committed {key.relative}, but its files under {store.url(key.run_stem(run_id))} "
                "are gone (pruned or deleted): refusing to read another run's commit instead; materialise it again"
            )
    return None


def load_committed(store: ObjectStore, key: ArtifactKey, codec: Codec, run_ids: tuple[str, ...] = ()) -> Any:
    """The object as the first of `run_ids` that committed it committed it, else as the pointer names."""
    manifest = lineage_manifest(store, key, run_ids) or committed_manifest(store, key)
    return load(store, codec, manifest["stem"], manifest["files"])


def load_published(store: ObjectStore, key: ArtifactKey, codec: Codec) -> Any:
    """One consistent set of published copies, as an outside reader should read them: every file
    checked against `<asset>.manifest.json`. When a publication is under way or was interrupted
    (a copy differs from the manifest), the run files the manifest names are read instead, which
    hold the same bytes; if those are gone too, the set is refused."""
    name = key.published_stem + MANIFEST_SUFFIX
    manifest = read_json(store, name)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise CorruptArtifactError(f"{store.url(name)} is not a manifest of published copies")
    try:
        return load(store, codec, key.published_stem, files)
    except (CorruptArtifactError, MissingArtifactError) as published_error:
        run_stem = manifest.get("run_stem") or key.run_stem(str(manifest.get("run_id")))
        run_files = {run_stem + file.removeprefix(key.published_stem): digest for file, digest in files.items()}
        try:
            return load(store, codec, run_stem, run_files)
        except (CorruptArtifactError, MissingArtifactError):
            raise CorruptArtifactError(
                f"the published copies of {key.relative} are not one consistent set ({published_error}) and "
                f"the run files they copy are gone: read the committed artifact ({store.url(key.pointer)})"
            ) from None


# ---- retention -----------------------------------------------------------------------------


def check_grace(grace_seconds: float) -> float:
    if not isinstance(grace_seconds, int | float) or not math.isfinite(grace_seconds) or grace_seconds < 0:
        raise ValueError(f"the grace period must be a finite number of hours, at least 0 (got {grace_seconds!r})")
    return float(grace_seconds)


def check_is_storage(store: ObjectStore) -> None:
    """Refuse a base that holds no census storage (a typo must not look like "nothing to prune")."""
    if not store.list(POINTERS) and not store.list(RUNS) and not store.list("models"):
        raise StorageError(f"{store.base_url} holds no census storage (no pointers/, runs/ or models/)")


def prune(store: ObjectStore, keep: int, grace_seconds: float, now: float | None = None) -> list[str]:
    """Delete run-scoped objects nobody needs, and temp files of writes nobody is doing.

    - A run whose lease is live (a process of it is at work, or stopped less than a lease ago) is
      never touched: neither what it committed nor what it is writing (census_assets.storage.leases).
    - Per asset and partition, the newest `keep` committed materialisations stay; older commits of
      finished runs go.
    - Uncommitted files of finished runs go once the run has been over for `grace_seconds` (a run
      without a lease record, from before leases: once the file is that old).
    - Temp files anywhere (a write killed mid-way) go once that old and no live writer holds them.
    - Lock files that earlier versions made for each lease go once the lease has run out (leases
      are no longer locked: each process writes only its own record).
    Pointers, published copies, leases and the registry are never deleted. Returns the names."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    grace_seconds = check_grace(grace_seconds)
    now = time.time() if now is None else now
    # Listed before the leases are read: a run takes its lease before its first write, so every
    # file listed here belongs to a run whose lease the read below sees.
    objects = store.list(RUNS)
    leases = read_leases(store)
    keeps: dict[str, bool] = {}  # run stem -> within the newest `keep` commits of its pointer
    for info in store.list(POINTERS):
        history = pointer_history(read_json(store, info.name), store.url(info.name))
        relative = info.name.removeprefix(f"{POINTERS}/").removesuffix(".json")
        for index, run_id in enumerate(history):
            keeps.setdefault(f"{RUNS}/{run_id}/{relative}", index < keep)
    deleted = []
    for info in objects:
        run_id = info.name.split("/")[1]
        lease = leases.get(run_id)
        if lease is not None and lease.is_live(now):
            continue
        # The object's stem is the longest committed stem it extends with a suffix (".parquet", ...).
        stems = [info.name[:i] for i, char in enumerate(info.name) if char == "." and info.name[:i] in keeps]
        if stems:
            keep_it = keeps[stems[-1]]
        else:
            ended_ago = now - lease.expires if lease is not None else info.age_seconds
            keep_it = ended_ago < grace_seconds
        if not keep_it:
            store.delete(info.name)
            deleted.append(info.name)
    for info in store.list(LOCKS):
        locked = locked_object(info.name.removeprefix(f"{LOCKS}/"))
        if locked.startswith(f"{LEASES}/"):
            lease = leases.get(run_of_record(locked))
            if lease is None or not lease.is_live(now):
                store.delete(info.name)
                deleted.append(info.name)
    deleted += store.delete_abandoned_temporaries(grace_seconds)
    return deleted


__all__ = ["TEMP_SUFFIX"]
