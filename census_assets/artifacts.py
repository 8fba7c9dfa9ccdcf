"""Artifact storage without Dagster: the store (local or gs://), the codecs, run-scoped commits and
verified loads, shared by the IO manager, the registry and the CLI.

Formats are open: DataFrames as Parquet, dicts as JSON, models as LightGBM text plus its JSON dump,
the vocabulary (JSON) and the importance chart (PNG). Never pickle.

Layout under the base URL (CENSUS_STORAGE_URL):

  runs/<run_id>/<asset>.<ext>                   what one run wrote (partitioned: <asset>/<partition>.<ext>)
  runs/<run_id>/<asset>.manifest.json           written after the data: the sha256 of each file
  pointers/<asset>.json                         the committed materialisation and the earlier ones,
                                                swapped with a compare-and-swap (flock / GCS generation)
  <asset>.<ext>, <asset>.manifest.json          published copies for outside readers, written last

A run reads an upstream asset from its own run (or the run it re-executes) when it produced it
there, otherwise from the pointer: never another run's half-finished output. Every load checks each
file against its manifest, so a truncated, garbled or swapped file is refused with its URL.

Every write is atomic: locally a temp file (fsync'd, removed on every failure path) renamed into
place; on GCS one upload. Errors that retrying cannot fix (no space, file too large, no permission,
a corrupt artifact) are PermanentStorageError; on gs:// transient errors (429, 5xx, timeouts) are
retried within CENSUS_GCS_RETRY_DEADLINE by google-cloud-storage.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import errno
import fcntl
import functools
import hashlib
import io
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from census_assets.core.features import Vocabulary
from census_assets.core.training import TrainedModel
from census_assets.settings import DEFAULT_GCS_RETRY_DEADLINE, GCS_RETRY_DEADLINE

if TYPE_CHECKING:
    from census_assets.core.registry import Registry

LOCAL_PROTOCOLS = ("", "file")
GCS_PROTOCOLS = ("gs", "gcs")
RUNS = "runs"
POINTERS = "pointers"
MANIFEST_SUFFIX = ".manifest.json"
LOCKS = ".locks"
# Retrying a compare-and-swap that lost a race: each attempt re-reads the current value.
SWAP_ATTEMPTS = 20
# OS errors that the same write would hit again: the run fails once, with the object named.
PERMANENT_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EFBIG: "file too large (a file-size limit)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a path component is a file, not a folder",
    errno.EISDIR: "is a folder, not a file",
}


def service_account_info(key_base64: str) -> dict:
    """A base64-encoded service-account JSON key (GCP_CREDENTIALS, as dagster-gcp takes it)."""
    try:
        info = json.loads(base64.b64decode(key_base64, validate=True))
    except (binascii.Error, ValueError):
        info = None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ValueError("GCP_CREDENTIALS is not a base64-encoded service-account JSON key")
    return info


class StorageError(OSError):
    """The artifact storage cannot be used; the message names the bucket or object and why."""


class PermanentStorageError(StorageError):
    """Retrying cannot help: no space, a size limit, no permission, a corrupt artifact."""


class BucketNotFoundError(PermanentStorageError):
    """The configured bucket does not exist."""


class CorruptArtifactError(PermanentStorageError):
    """A stored file is truncated, unparsable or not the file its manifest names."""


class ConflictError(StorageError):
    """A compare-and-swap lost: the object changed since it was read."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=1, sort_keys=True) + "\n").encode()


def parse_json(data: bytes, url: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as error:
        raise CorruptArtifactError(f"{url} is not valid JSON ({error})") from None


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def _permanent(error: OSError, action: str, url: str) -> OSError:
    """The error to raise for an OS error on `url`: permanent ones named and classified."""
    reason = PERMANENT_ERRNOS.get(error.errno or 0)
    if reason is None:
        return error
    return PermanentStorageError(error.errno, f"cannot {action} {url}: {reason}")


@functools.lru_cache(maxsize=4)
def _gcs_client(emulator_host: str | None, credentials: str | None):
    from google.cloud import storage

    if credentials:
        return storage.Client.from_service_account_info(service_account_info(credentials))
    return storage.Client(project=None)


def gcs_client(credentials: str | None = None):
    """One google-cloud-storage client per process, emulator address (read when the client is
    made) and key; `credentials` is a base64 service-account key, None: default credentials."""
    return _gcs_client(os.environ.get("STORAGE_EMULATOR_HOST"), credentials)


def gcs_policy(deadline: float) -> dict:
    """retry= and timeout= for google-cloud-storage calls: transient errors (429, 5xx, timeouts)
    retried with backoff scaled to the deadline (1 s first wait, less for short deadlines), and a
    hung request counted as a timeout after at most 60 s, not the library's default."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    retry = DEFAULT_RETRY.with_delay(initial=min(1.0, deadline / 20), maximum=max(deadline / 4, 0.1), multiplier=2.0)
    return {"retry": retry.with_timeout(deadline), "timeout": min(60.0, max(deadline, 10.0))}


class GcsObjects:
    """Objects under gs://bucket/prefix: one upload per write, transient errors retried."""

    def __init__(self, bucket: str, prefix: str, retry_deadline: float, credentials: str | None = None):
        self.bucket_name, self.prefix, self.retry_deadline = bucket, prefix.strip("/"), retry_deadline
        self.credentials = credentials  # a base64 service-account key; None: default credentials
        self._policy = gcs_policy(retry_deadline)

    def client(self):
        return gcs_client(self.credentials)

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _blob(self, name: str):
        return self.client().bucket(self.bucket_name).blob(self._key(name))

    def url(self, name: str) -> str:
        return f"gs://{self.bucket_name}/{self._key(name)}"

    def _call(self, action: str, name: str, function: Callable[[], Any]) -> Any:
        from google.api_core.exceptions import Forbidden, NotFound, PreconditionFailed, RetryError

        try:
            return function()
        except RetryError as error:
            raise StorageError(
                f"GCS unavailable: gave up on {action} {self.url(name)} after retrying for "
                f"{self.retry_deadline:g} s ({GCS_RETRY_DEADLINE}); last error: {error.cause}"
            ) from error
        except PreconditionFailed:
            raise ConflictError(f"{self.url(name)} changed while {action} it") from None
        except Forbidden as error:
            raise PermanentStorageError(f"cannot {action} {self.url(name)}: {error.message}") from None
        except NotFound:
            if self.client().lookup_bucket(self.bucket_name, **self._policy) is None:
                raise BucketNotFoundError(
                    f"GCS bucket {self.bucket_name!r} does not exist (storage gs://{self.bucket_name}/"
                    f"{self.prefix}): create it or fix the storage URL"
                ) from None
            raise FileNotFoundError(f"no artifact {self.url(name)}: materialise it first") from None

    def read(self, name: str) -> bytes:
        return self._call("reading", name, lambda: self._blob(name).download_as_bytes(**self._policy))

    def read_versioned(self, name: str) -> tuple[bytes | None, int]:
        """The object and its generation; (None, 0) when absent (0: "must not exist" for a swap)."""
        blob = self._call("reading", name, lambda: self.client().bucket(self.bucket_name).get_blob(
            self._key(name), **self._policy
        ))
        if blob is None:
            return None, 0
        data = self._call(
            "reading", name, lambda: blob.download_as_bytes(if_generation_match=blob.generation, **self._policy)
        )
        return data, int(blob.generation)

    def write(self, name: str, data: bytes, if_generation_match: int | None = None) -> None:
        # Whole objects are idempotent to re-send, so uploads are retried too; a conditional
        # upload only with an explicit generation (a 412 then means another writer won).
        self._call(
            "writing",
            name,
            lambda: self._blob(name).upload_from_string(data, if_generation_match=if_generation_match, **self._policy),
        )

    def delete(self, name: str) -> None:
        with suppress(FileNotFoundError):
            self._call("deleting", name, lambda: self._blob(name).delete(**self._policy))

    def list(self, prefix: str) -> list[tuple[str, float]]:
        """(name relative to the base, age in seconds) of every object under prefix."""
        root = self._key(prefix.rstrip("/")) + "/"
        blobs = self._call(
            "listing", prefix, lambda: list(self.client().list_blobs(self.bucket_name, prefix=root, **self._policy))
        )
        now = time.time()
        base = f"{self.prefix}/" if self.prefix else ""
        return [(blob.name.removeprefix(base), now - blob.updated.timestamp()) for blob in blobs]


class ArtifactStore:
    """Named byte objects under one base URL: atomic writes, compare-and-swap, listing."""

    def __init__(
        self,
        base_url: str,
        retry_deadline: float = DEFAULT_GCS_RETRY_DEADLINE,
        gcp_credentials: str | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        scheme = self.base_url.split("://")[0] if "://" in self.base_url else ""
        self.gcs = None
        if scheme in GCS_PROTOCOLS:
            bucket, _, prefix = self.base_url.split("://", 1)[1].partition("/")
            self.gcs = GcsObjects(bucket, prefix, retry_deadline, gcp_credentials)
        elif scheme not in LOCAL_PROTOCOLS:
            raise StorageError(f"storage {base_url!r}: only a local directory or gs://bucket/prefix is supported")
        self.root = Path(self.base_url.removeprefix("file://")) if self.gcs is None else None

    def url(self, name: str) -> str:
        return self.gcs.url(name) if self.gcs is not None else f"{self.base_url}/{name}"

    def _local(self, name: str) -> Path:
        return self.root / name

    def read_bytes(self, name: str) -> bytes:
        if self.gcs is not None:
            return self.gcs.read(name)
        path = self._local(name)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"no artifact {self.url(name)}: materialise it first") from None
        except OSError as error:
            raise _permanent(error, "read", self.url(name)) from error

    def write_bytes(self, name: str, data: bytes) -> None:
        if self.gcs is not None:
            self.gcs.write(name, data)
        else:
            self._write_local(name, data)

    def _write_local(self, name: str, data: bytes) -> None:
        target = self._local(name)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException as error:
            # Every failure path (a full disk, a size limit, an interrupt) removes the temp file.
            with suppress(OSError):
                temporary.unlink()
            if isinstance(error, OSError):
                raise _permanent(error, "write", self.url(name)) from error
            raise

    def delete(self, name: str) -> None:
        if self.gcs is not None:
            self.gcs.delete(name)
        else:
            with suppress(FileNotFoundError):
                self._local(name).unlink()

    def list(self, prefix: str, temporary: bool = False) -> list[tuple[str, float]]:
        """(name, age in seconds) of every object under prefix; local temp files (a write in
        progress, or left by a killed process) only with `temporary`."""
        if self.gcs is not None:
            return self.gcs.list(prefix)
        root, now = self._local(prefix), time.time()
        if not root.is_dir():
            return []
        return [
            (path.relative_to(self.root).as_posix(), now - path.stat().st_mtime)
            for path in root.rglob("*")
            if path.is_file() and (temporary or not path.name.endswith(".tmp"))
        ]

    @contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        """An exclusive flock for `name`: released by the kernel if the holder is killed."""
        lock = self._local(LOCKS) / (name.replace("/", "__") + ".lock")
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            handle = open(lock, "a+b")  # noqa: SIM115 - held for the block
        except OSError as error:
            raise _permanent(error, "lock", self.url(name)) from error
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def update(self, name: str, change: Callable[[bytes | None], bytes]) -> bytes:
        """Replace `name` with change(current bytes or None), atomically against other writers:
        under a flock locally, by GCS generation preconditions (retried when another writer won)."""
        if self.gcs is None:
            with self._lock(name):
                path = self._local(name)
                current = path.read_bytes() if path.is_file() else None
                data = change(current)
                self._write_local(name, data)
                return data
        for _ in range(SWAP_ATTEMPTS):
            current, generation = self.gcs.read_versioned(name)
            data = change(current)
            try:
                self.gcs.write(name, data, if_generation_match=generation)
                return data
            except ConflictError:
                continue
        raise ConflictError(f"{self.url(name)} kept changing: gave up after {SWAP_ATTEMPTS} attempts")


# ---- codecs: Python objects <-> named files ---------------------------------------------------

Reader = Callable[[str], bytes]


@dataclass(frozen=True)
class Codec:
    """encode(obj) -> {suffix: bytes} (the asset's own file last); decode(read, stem, url) -> obj,
    where read(suffix) gives the verified bytes of `<stem><suffix>`."""

    encode: Callable[[Any], dict[str, bytes]]
    decode: Callable[[Reader, Callable[[str], str]], Any]


def _encode_frame(frame: pd.DataFrame) -> dict[str, bytes]:
    buffer = io.BytesIO()
    # pandas keeps frame.attrs (the feature vocabulary) in the Parquet key-value metadata.
    frame.to_parquet(buffer, compression="zstd", index=False)
    return {".parquet": buffer.getvalue()}


def _decode_frame(read: Reader, url: Callable[[str], str]) -> pd.DataFrame:
    data = read(".parquet")
    try:
        return pd.read_parquet(io.BytesIO(data))
    except Exception as error:  # pyarrow raises several types for a damaged file
        raise CorruptArtifactError(f"{url('.parquet')} is not a readable Parquet file ({error})") from None


def _encode_json(value: dict) -> dict[str, bytes]:
    return {".json": json_bytes(value)}


def _decode_json(read: Reader, url: Callable[[str], str]) -> dict:
    return parse_json(read(".json"), url(".json"))


_TREE_SIZES = re.compile(r"^tree_sizes=([0-9 ]*)$", re.MULTILINE)


def check_model_text(text: str, url: str) -> None:
    """Refuse a LightGBM model text that LightGBM could not load whole: a truncated or edited file
    makes its loader abort the process (SIGABRT), so it is checked here before LightGBM sees it."""
    sizes = _TREE_SIZES.search(text)
    start, end = text.find("\nTree=0\n"), text.find("\nend of trees\n")
    problem = None
    if not text.startswith("tree\n") or sizes is None:
        problem = "no LightGBM model header"
    elif start < 0 or end < 0:
        problem = "the trees are incomplete (truncated?)"
    elif sum(int(size) for size in sizes.group(1).split()) != len(text[start + 1 : end + 1].encode()):
        problem = "the trees' sizes do not match the header (truncated or edited)"
    elif "\nend of parameters\n" not in text[end:]:
        problem = "the parameters section is incomplete (truncated?)"
    if problem:
        raise CorruptArtifactError(f"{url} is not a complete LightGBM model: {problem}")


def _encode_model(model: TrainedModel) -> dict[str, bytes]:
    files = {
        ".vocabulary.json": json_bytes(model.vocabulary.to_dict()),
        # Compact: json's C encoder (indentation falls back to the pure-Python one, 10x slower).
        ".json": json.dumps(model.booster.dump_model(), separators=(",", ":")).encode(),
    }
    if model.importance_chart is not None:
        files[".importance.png"] = model.importance_chart
    files[".txt"] = model.booster.model_to_string().encode()
    return files


def _decode_model(read: Reader, url: Callable[[str], str], chart: bool = True) -> TrainedModel:
    from census_assets.core.lightgbm_runtime import lightgbm

    try:
        text = read(".txt").decode()
    except UnicodeDecodeError:
        raise CorruptArtifactError(f"{url('.txt')} is not a LightGBM model text (not UTF-8)") from None
    check_model_text(text, url(".txt"))
    try:
        vocabulary = Vocabulary.from_dict(parse_json(read(".vocabulary.json"), url(".vocabulary.json")))
    except (TypeError, ValueError, AttributeError) as error:
        raise CorruptArtifactError(f"{url('.vocabulary.json')} is not a vocabulary ({error})") from None
    read(".json")  # unused here, but part of the set: a damaged JSON dump is refused like the rest
    try:
        booster = lightgbm().Booster(model_str=text)
    except Exception as error:  # LightGBMError: the text parsed as far as the check sees, no further
        raise CorruptArtifactError(f"{url('.txt')} cannot be loaded by LightGBM ({error})") from None
    if booster.feature_name() != vocabulary.feature_names:
        raise CorruptArtifactError(
            f"{url('.txt')} does not match {url('.vocabulary.json')}: the model's features are not "
            "the vocabulary's (files from different models?)"
        )
    image = None
    if chart:
        with suppress(FileNotFoundError):
            image = read(".importance.png")
    return TrainedModel(booster, vocabulary, image)


CODECS: dict[type, Codec] = {
    pd.DataFrame: Codec(_encode_frame, _decode_frame),
    dict: Codec(_encode_json, _decode_json),
    TrainedModel: Codec(_encode_model, _decode_model),
}


def codec_for(python_type: Any) -> Codec:
    for known, codec in CODECS.items():
        if isinstance(python_type, type) and issubclass(python_type, known):
            return codec
    raise TypeError(
        f"no storage format for {python_type!r}: annotate assets and inputs with one of "
        + ", ".join(t.__name__ for t in CODECS)
    )


def verified_reader(store: ArtifactStore, stem: str, manifest: dict[str, str] | None) -> Reader:
    """read(suffix) -> the bytes of `<stem><suffix>`, checked against the manifest's sha256 when
    there is one (a file the manifest does not list is refused as missing)."""

    def read(suffix: str) -> bytes:
        name = stem + suffix
        if manifest is not None and name not in manifest:
            raise FileNotFoundError(f"{store.url(name)} is not part of the committed artifact")
        data = store.read_bytes(name)
        if manifest is not None and sha256(data) != manifest[name]:
            raise CorruptArtifactError(
                f"{store.url(name)} is not the file that was committed (sha256 {sha256(data)[:12]}..., "
                f"manifest {manifest[name][:12]}...): truncated, overwritten or swapped"
            )
        return data

    return read


def write_files(store: ArtifactStore, stem: str, files: dict[str, bytes]) -> dict[str, bytes]:
    """Write `<stem><suffix>` for each encoded file, in order; returns {object name: bytes}."""
    for suffix, data in files.items():
        store.write_bytes(stem + suffix, data)
    return {stem + suffix: data for suffix, data in files.items()}


def load(store: ArtifactStore, codec: Codec, stem: str, manifest: dict[str, str] | None) -> Any:
    return codec.decode(verified_reader(store, stem, manifest), lambda suffix: store.url(stem + suffix))


# ---- run-scoped commits ------------------------------------------------------------------------

# Partition keys and run ids become object names: only these characters, never `..` or `/`.
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
KEEP_HISTORY = 100  # materialisations remembered per pointer (retention keeps the newest N of them)


def _safe(kind: str, value: str) -> str:
    if not SAFE_NAME.fullmatch(value) or ".." in value:
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


def commit(store: ArtifactStore, key: ArtifactKey, run_id: str, files: dict[str, bytes]) -> dict:
    """Write one materialisation: the run's files, their manifest, the pointer (compare-and-swap),
    then the published copies. Returns the manifest. A crash at any point leaves the previous
    commit in force for every loader."""
    stem = key.run_stem(run_id)
    written = write_files(store, stem, files)
    manifest = {
        "asset": key.asset,
        "partition": key.partition,
        "run_id": run_id,
        "time": utc_now(),
        "stem": stem,
        "files": {name: sha256(data) for name, data in written.items()},
    }
    store.write_bytes(stem + MANIFEST_SUFFIX, json_bytes(manifest))

    def advance(current: bytes | None) -> bytes:
        earlier = parse_json(current, store.url(key.pointer))["history"] if current else []
        history = [run_id, *[earlier_run for earlier_run in earlier if earlier_run != run_id]]
        return json_bytes({"current": manifest, "history": history[:KEEP_HISTORY]})

    store.update(key.pointer, advance)
    published = key.published_stem
    copies = write_files(store, published, files)
    store.write_bytes(
        published + MANIFEST_SUFFIX,
        json_bytes({**manifest, "files": {name: sha256(data) for name, data in copies.items()}, "stem": published}),
    )
    return manifest


def run_manifest(store: ArtifactStore, key: ArtifactKey, run_id: str) -> dict | None:
    """The manifest of what `run_id` committed for key, or None when it wrote none."""
    name = key.run_stem(run_id) + MANIFEST_SUFFIX
    try:
        data = store.read_bytes(name)
    except FileNotFoundError:
        return None
    return parse_json(data, store.url(name))


def committed_manifest(store: ArtifactStore, key: ArtifactKey) -> dict:
    try:
        data = store.read_bytes(key.pointer)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no committed {key.relative} in {store.base_url}: materialise it first"
        ) from None
    pointer = parse_json(data, store.url(key.pointer))
    current = pointer.get("current") if isinstance(pointer, dict) else None
    if not isinstance(current, dict):
        raise CorruptArtifactError(f"{store.url(key.pointer)} is not an artifact pointer")
    if (current.get("asset"), current.get("partition")) != (key.asset, key.partition):
        raise CorruptArtifactError(f"{store.url(key.pointer)} is not the pointer of {key.relative} (swapped?)")
    return current


def load_committed(store: ArtifactStore, key: ArtifactKey, codec: Codec, run_ids: tuple[str, ...] = ()) -> Any:
    """The object as the first of `run_ids` that wrote it committed it, else as the pointer names."""
    manifest = next(
        (found for run_id in run_ids if (found := run_manifest(store, key, run_id)) is not None), None
    ) or committed_manifest(store, key)
    return load(store, codec, manifest["stem"], manifest["files"])


def prune(store: ArtifactStore, keep: int, grace_seconds: float) -> list[str]:
    """Delete run-scoped objects no pointer keeps: per asset and partition, the newest `keep`
    committed materialisations stay (the registry lives elsewhere and is never touched);
    uncommitted objects older than the grace period (failed or killed runs) go. Returns the names."""
    keeps: dict[str, bool] = {}  # run stem -> kept (True) or superseded (False)
    for name, _ in store.list(POINTERS):
        pointer = parse_json(store.read_bytes(name), store.url(name))
        relative = name.removeprefix(f"{POINTERS}/").removesuffix(".json")
        for index, run_id in enumerate(pointer["history"]):
            keeps.setdefault(f"{RUNS}/{run_id}/{relative}", index < keep)
    deleted = []
    for name, age in store.list(RUNS, temporary=True):
        # The object's stem is the longest committed stem it extends with a suffix (".parquet", ...).
        stems = [name[:i] for i, char in enumerate(name) if char == "." and name[:i] in keeps]
        keep_it = keeps[stems[-1]] if stems else age < grace_seconds
        if not keep_it:
            store.delete(name)
            deleted.append(name)
    return deleted


def load_published(store: ArtifactStore, key: ArtifactKey, python_type: type) -> Any:
    """A published copy (what outside readers see), verified against its manifest."""
    name = key.published_stem + MANIFEST_SUFFIX
    manifest = parse_json(store.read_bytes(name), store.url(name))
    return load(store, codec_for(python_type), key.published_stem, manifest["files"])


def load_model_version(registry: Registry, version: str) -> TrainedModel:
    """A registry version's model, verified against the version's manifest."""
    return load(registry.store, CODECS[TrainedModel], registry.model_name(version), registry.manifest(version))


def load_production(registry: Registry) -> tuple[dict, TrainedModel]:
    """The production pointer and the model it names."""
    pointer = registry.production()
    return pointer, load_model_version(registry, pointer["version"])
