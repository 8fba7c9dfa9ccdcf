"""Google Cloud Storage: the one client stack (google-cloud-storage) for every object the package
reads and writes on gs:// (artifacts, registry, inbox, labels, sources, the CLI's input and output),
its credentials (GCP_CREDENTIALS, a base64 service-account key) and its retry policy."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from typing import Any

from census_assets.storage.errors import (
    BucketNotFoundError,
    ConflictError,
    MissingArtifactError,
    PermanentStorageError,
    StorageError,
)
from census_assets.storage.objects import (
    SWAP_ATTEMPTS,
    ObjectInfo,
    ObjectStore,
    PendingWrite,
    RefusedEntry,
    printable,
)

# Seconds a GCS call keeps retrying transient errors (429, 5xx, timeouts) before failing.
DEFAULT_RETRY_DEADLINE = 120.0


def service_account_info(key_base64: str) -> dict:
    """A base64-encoded service-account JSON key (GCP_CREDENTIALS, as dagster-gcp takes it)."""
    try:
        info = json.loads(base64.b64decode(key_base64, validate=True))
    except (binascii.Error, ValueError):
        info = None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise PermanentStorageError("GCP_CREDENTIALS is not a base64-encoded service-account JSON key")
    return info


def gcs_client(credentials: str | None = None):
    """A google-cloud-storage client: with `credentials` (a base64 service-account key) or Google's
    application default credentials. STORAGE_EMULATOR_HOST, read by the library, points it at an
    emulator."""
    from google.cloud import storage

    if credentials:
        return storage.Client.from_service_account_info(service_account_info(credentials))
    return storage.Client(project=None)


def gcs_policy(deadline: float) -> dict:
    """retry= and timeout= for google-cloud-storage calls: transient errors (429, 5xx, timeouts)
    retried with backoff scaled to the deadline (1 s first wait, less for short deadlines), and a
    hung request counted as a timeout after at most 60 s, not the library's default."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    retry = DEFAULT_RETRY.with_delay(initial=min(1.0, deadline / 20), maximum=max(deadline / 4, 0.1), multiplier=2.0)
    return {"retry": retry.with_timeout(deadline), "timeout": min(60.0, max(deadline, 10.0))}


def blob_checksum(blob) -> str:
    # md5 for ordinary uploads; composite objects have only a crc32c.
    return f"md5:{blob.md5_hash}" if blob.md5_hash else f"crc32c:{blob.crc32c}"


class GcsPendingWrite(PendingWrite):
    """On GCS a write is one upload: nothing is visible until it completes, nothing to clean up."""

    def __init__(self, store: GcsObjectStore, name: str):
        self.store, self.name = store, name

    def commit(self, data: bytes) -> None:
        self.store.upload(self.name, data)

    def discard(self) -> None:
        pass


class GcsObjectStore(ObjectStore):
    """Objects under gs://bucket/prefix: one upload per write, transient errors retried within the
    deadline, compare-and-swap by generation preconditions. The client is made on first use."""

    complete_when_listed = True

    def __init__(self, url: str, retry_deadline: float | None = None, credentials: str | None = None):
        self.base_url = url.rstrip("/")
        bucket, _, prefix = self.base_url.split("://", 1)[1].partition("/")
        self.bucket_name, self.prefix = bucket, prefix.strip("/")
        self.retry_deadline = retry_deadline or DEFAULT_RETRY_DEADLINE
        self.credentials = credentials
        self._client = None
        self._policy = None

    def client(self):
        if self._client is None:
            self._client = gcs_client(self.credentials)
        return self._client

    def policy(self, deadline: float | None = None) -> dict:
        if deadline is not None:
            return gcs_policy(min(deadline, self.retry_deadline))
        if self._policy is None:
            self._policy = gcs_policy(self.retry_deadline)
        return self._policy

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix and name else (self.prefix or name)

    def _blob(self, name: str):
        return self.client().bucket(self.bucket_name).blob(self.key(name))

    def url(self, name: str) -> str:
        return f"gs://{self.bucket_name}/{self.key(name)}"

    def _call(self, action: str, name: str, function: Callable[[], Any]) -> Any:
        from google.api_core.exceptions import Forbidden, NotFound, PreconditionFailed, RetryError

        try:
            return function()
        except RetryError as error:
            raise StorageError(
                f"GCS unavailable: gave up on {action} {self.url(name)} after retrying for "
                f"{self.retry_deadline:g} s (CENSUS_GCS_RETRY_DEADLINE); last error: {error.cause}"
            ) from error
        except PreconditionFailed:
            raise ConflictError(f"{self.url(name)} changed while {action} it") from None
        except Forbidden as error:
            raise PermanentStorageError(f"cannot {action} {self.url(name)}: {error.message}") from None
        except NotFound:
            if self.client().lookup_bucket(self.bucket_name, **self.policy()) is None:
                raise BucketNotFoundError(
                    f"GCS bucket {self.bucket_name!r} does not exist (storage {self.base_url}): "
                    "create it or fix the storage URL"
                ) from None
            raise MissingArtifactError(f"cannot {action} {self.url(name)}: it does not exist") from None

    def read(self, name: str) -> bytes:
        return self._call("reading", name, lambda: self._blob(name).download_as_bytes(**self.policy()))

    def read_with_checksum(self, name: str) -> tuple[bytes, str]:
        """Exactly the generation whose checksum is returned (a replacement in between fails the
        precondition: ConflictError)."""
        blob = self._call("reading", name, lambda: self.client().bucket(self.bucket_name).get_blob(
            self.key(name), **self.policy()
        ))
        if blob is None:
            raise MissingArtifactError(f"cannot read {self.url(name)}: it does not exist")
        data = self._call(
            "reading", name, lambda: blob.download_as_bytes(if_generation_match=blob.generation, **self.policy())
        )
        return data, blob_checksum(blob)

    def _read_versioned(self, name: str) -> tuple[bytes | None, int]:
        """The object and its generation; (None, 0) when absent (0: "must not exist" for a swap)."""
        blob = self._call("reading", name, lambda: self.client().bucket(self.bucket_name).get_blob(
            self.key(name), **self.policy()
        ))
        if blob is None:
            return None, 0
        data = self._call(
            "reading", name, lambda: blob.download_as_bytes(if_generation_match=blob.generation, **self.policy())
        )
        return data, int(blob.generation)

    def upload(self, name: str, data: bytes, if_generation_match: int | None = None) -> None:
        # Whole objects are idempotent to re-send, so uploads are retried too; a conditional
        # upload only with an explicit generation (a 412 then means another writer won).
        from census_assets.storage.objects import FAULTS

        FAULTS("committing", name, None)
        self._call(
            "writing",
            name,
            lambda: self._blob(name).upload_from_string(
                data, if_generation_match=if_generation_match, **self.policy()
            ),
        )
        FAULTS("committed", name, None)

    def reserve(self, name: str) -> PendingWrite:
        return GcsPendingWrite(self, name)

    def fingerprint(self, name: str) -> str:
        return self.stat(name).checksum

    def delete(self, name: str) -> None:
        from census_assets.storage.objects import FAULTS

        FAULTS("deleting", name, None)
        try:
            self._call("deleting", name, lambda: self._blob(name).delete(**self.policy()))
        except MissingArtifactError:
            pass

    def _blobs(self, prefix: str, deadline: float | None = None, **options) -> list:
        root = self.key(prefix.rstrip("/"))
        root = f"{root}/" if root else ""
        return self._call(
            "listing",
            prefix,
            lambda: list(self.client().list_blobs(self.bucket_name, prefix=root, **options, **self.policy(deadline))),
        )

    def _info(self, blob, now: float) -> ObjectInfo:
        base = f"{self.prefix}/" if self.prefix else ""
        updated = blob.updated.timestamp() if blob.updated else now
        return ObjectInfo(blob.name.removeprefix(base), int(blob.size or 0), now - updated, blob_checksum(blob))

    def list(self, prefix: str, temporary: bool = False) -> list[ObjectInfo]:
        now = time.time()
        return [self._info(blob, now) for blob in self._blobs(prefix)]

    def listdir(self, prefix: str, deadline: float | None = None) -> tuple[list[ObjectInfo], list[RefusedEntry]]:
        now = time.time()
        blobs = self._blobs(prefix, deadline, delimiter="/")  # the folder's own objects, not sub-folders
        found, refused = [], []
        for blob in blobs:
            info = self._info(blob, now)
            leaf = info.name.rpartition("/")[2]
            if not leaf or leaf.startswith("."):
                continue
            if printable(leaf) != leaf or "\\" in leaf or any(ord(c) < 32 for c in leaf):
                refused.append(RefusedEntry(printable(leaf), "the object name holds control or escape characters"))
            else:
                found.append(info)
        return found, refused

    def stat(self, name: str) -> ObjectInfo:
        blob = self._call("reading", name, lambda: self.client().bucket(self.bucket_name).get_blob(
            self.key(name), **self.policy()
        ))
        if blob is None:
            raise MissingArtifactError(f"cannot read {self.url(name)}: it does not exist")
        return self._info(blob, time.time())

    def update(self, name: str, change: Callable[[bytes | None], bytes]) -> bytes:
        for _ in range(SWAP_ATTEMPTS):
            current, generation = self._read_versioned(name)
            data = change(current)
            try:
                self.upload(name, data, if_generation_match=generation)
                return data
            except ConflictError:
                continue
        raise ConflictError(f"{self.url(name)} kept changing: gave up after {SWAP_ATTEMPTS} attempts")
