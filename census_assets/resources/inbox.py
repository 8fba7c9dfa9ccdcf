"""The `inbox` resource: where batches to score arrive (CENSUS_INBOX_URL), a local folder or a
gs:// prefix, one file a batch; listed with content fingerprints, read with the fingerprint of
exactly the bytes read."""

import hashlib
import os

import dagster as dg
from pydantic import Field

from census_assets.artifacts import gcs_client, gcs_policy
from census_assets.core import batches as core
from census_assets.settings import DEFAULT_GCS_RETRY_DEADLINE

# A sensor tick must not wait out the full storage retry budget.
LISTING_DEADLINE_S = 30.0


class BatchInbox(dg.ConfigurableResource):
    """Where batches arrive (CENSUS_INBOX_URL): a local folder or gs://bucket/prefix, one file a batch."""

    url: str = Field(description="CENSUS_INBOX_URL: a local folder or gs://bucket/prefix (default <storage>/inbox)")
    gcs_retry_deadline: float = Field(
        default=DEFAULT_GCS_RETRY_DEADLINE,
        description="CENSUS_GCS_RETRY_DEADLINE: seconds a gs:// listing or read retries transient errors",
    )
    gcp_credentials: str | None = Field(
        default=None,
        description="GCP_CREDENTIALS (a dg.EnvVar): a base64 service-account key; unset: default credentials",
    )

    @property
    def is_gcs(self) -> bool:
        return self.url.startswith(("gs://", "gcs://"))

    @property
    def complete_when_listed(self) -> bool:
        """GCS lists an object only once its upload has finished; a local file may be half-written."""
        return self.is_gcs

    def file_url(self, name: str) -> str:
        return f"{self.url.rstrip('/')}/{name}"

    # gs://

    def _bucket_prefix(self) -> tuple[str, str]:
        bucket, _, prefix = self.url.split("://", 1)[1].partition("/")
        prefix = prefix.strip("/")
        return bucket, f"{prefix}/" if prefix else ""

    def _policy(self, deadline: float | None = None) -> dict:
        return gcs_policy(min(deadline or self.gcs_retry_deadline, self.gcs_retry_deadline))

    def _client(self):
        return gcs_client(self.gcp_credentials)

    @staticmethod
    def _gcs_fingerprint(blob) -> str:
        # md5 for ordinary uploads; composite objects have only a crc32c.
        return f"md5:{blob.md5_hash}" if blob.md5_hash else f"crc32c:{blob.crc32c}"

    def _list_gcs(self, deadline: float | None) -> list[core.InboxFile]:
        bucket, prefix = self._bucket_prefix()
        blobs = self._client().list_blobs(
            bucket,
            prefix=prefix,
            delimiter="/",  # the inbox's own objects, not its "sub-folders"
            fields="items(name,size,md5Hash,crc32c),nextPageToken,prefixes",
            **self._policy(deadline),
        )
        files = []
        for blob in blobs:
            name = blob.name[len(prefix) :]
            if core.is_batch_name(name):
                files.append(core.InboxFile(name, int(blob.size or 0), self._gcs_fingerprint(blob)))
        return files

    def _read_gcs(self, name: str) -> tuple[bytes, str]:
        bucket, prefix = self._bucket_prefix()
        policy = self._policy()
        blob = self._client().bucket(bucket).get_blob(prefix + name, **policy)
        if blob is None:
            raise FileNotFoundError(self.file_url(name))
        # Exactly the generation whose checksum is the fingerprint (a replacement in between fails
        # the precondition and the step is retried).
        data = blob.download_as_bytes(if_generation_match=blob.generation, **policy)
        return data, self._gcs_fingerprint(blob)

    # local

    def _root(self) -> str:
        return self.url.removeprefix("file://")

    def _local_names(self) -> list[str]:
        root = self._root()
        if not os.path.isdir(root):
            raise FileNotFoundError(f"inbox folder {root} does not exist")
        with os.scandir(root) as entries:
            return [entry.name for entry in entries if core.is_batch_name(entry.name) and entry.is_file()]

    def _list_local(self) -> list[core.InboxFile]:
        files = []
        for name in self._local_names():
            try:
                with open(os.path.join(self._root(), name), "rb") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    digest = hashlib.file_digest(handle, "sha256").hexdigest()
            except FileNotFoundError:  # removed between the listing and the read
                continue
            files.append(core.InboxFile(name, size, f"sha256:{digest}"))
        return files

    def _read_local(self, name: str) -> tuple[bytes, str]:
        with open(os.path.join(self._root(), name), "rb") as handle:
            data = handle.read()
        return data, core.content_fingerprint(data)

    # either

    def list_batches(self, deadline: float | None = None) -> list[core.InboxFile]:
        """Every batch file in the inbox with its size and content fingerprint."""
        return self._list_gcs(deadline) if self.is_gcs else self._list_local()

    def find(self, key: str) -> str | None:
        """The name of the inbox file whose partition key is `key` (a listing, no file read)."""
        names = [f.name for f in self._list_gcs(None)] if self.is_gcs else self._local_names()
        return next((name for name in sorted(names) if core.partition_key(name) == key), None)

    def read(self, name: str) -> tuple[bytes, str]:
        """A file's bytes and the fingerprint of exactly those bytes."""
        return self._read_gcs(name) if self.is_gcs else self._read_local(name)
