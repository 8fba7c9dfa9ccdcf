"""The `inbox` resource: where batches to score arrive (CENSUS_INBOX_URL), a local folder or a
gs:// prefix, one file a batch; listed with content fingerprints, read with the fingerprint of
exactly the bytes read. Everything goes through the storage layer (census_assets.storage), with
the artifact storage's GCS key and retry deadline.

Only regular files directly in the inbox are batches. A symbolic link is refused (it may point
outside the inbox, and what it points to can change without the inbox seeing it), so is a name
that is not UTF-8 (it cannot be a partition's file in Dagster's records) and anything that is not
a regular file; each is reported with its reason and fails only itself.
"""

import dagster as dg

from census_assets.core.batch_names import is_batch_name, partition_key
from census_assets.core.inbox import InboxFile, InboxListing
from census_assets.resources.storage import ArtifactStorage
from census_assets.settings import INBOX_URL, setting_field
from census_assets.storage.errors import MissingArtifactError, StorageError
from census_assets.storage.objects import ObjectStore

# A sensor tick must not wait out the full storage retry budget.
LISTING_DEADLINE_S = 30.0


class BatchInbox(dg.ConfigurableResource):
    """Where batches arrive (CENSUS_INBOX_URL): a local folder or gs://bucket/prefix, one file a
    batch; on gs:// read with `storage`'s key and retry deadline."""

    url: str = setting_field(INBOX_URL)
    storage: ArtifactStorage

    def store(self, deadline: float | None = None) -> ObjectStore:
        if not self.url:
            raise StorageError("no inbox: set CENSUS_INBOX_URL (default <CENSUS_STORAGE_URL>/inbox)")
        return self.storage.open(self.url, deadline)

    @property
    def complete_when_listed(self) -> bool:
        """GCS lists an object only once its upload has finished; a local file may be half-written."""
        return self.store().complete_when_listed

    def file_url(self, name: str) -> str:
        return self.store().url(name)

    def _entries(self, store: ObjectStore):
        found, refused = store.listdir("")
        files = [info for info in found if is_batch_name(info.name)]
        return files, {entry.name: entry.reason for entry in refused if is_batch_name(entry.name)}

    def list_batches(self, deadline: float | None = None) -> InboxListing:
        """Every batch file in the inbox with its size and content fingerprint, and the batch-like
        entries that cannot be taken, with the reason. A missing folder raises
        MissingArtifactError; one bad entry never fails the listing."""
        store = self.store(deadline)
        found, refused = self._entries(store)
        files = []
        for info in found:
            try:
                # GCS lists each object's checksum; a local file is fingerprinted by its content.
                fingerprint = info.checksum or store.fingerprint(info.name)
            except MissingArtifactError:  # removed between the listing and the read
                continue
            except OSError as error:  # unreadable (no permission, ...): this file only
                refused[info.name] = f"cannot be read: {error}"
                continue
            files.append(InboxFile(info.name, info.size, fingerprint))
        return InboxListing(files, refused)

    def find(self, key: str) -> str | None:
        """The name of the inbox file whose partition key is `key` (a listing, no file read)."""
        found, _ = self._entries(self.store())
        return next((name for name in sorted(info.name for info in found) if partition_key(name) == key), None)

    def read(self, name: str) -> tuple[bytes, str]:
        """A file's bytes and the fingerprint of exactly those bytes (MissingArtifactError, a
        FileNotFoundError, when it is gone)."""
        return self.store().read_with_checksum(name)
