"""The `labels` resource: where label files arrive (CENSUS_LABELS_URL), a local folder or a gs://
prefix. A label file has the name of the inbox batch it labels, so the folder is listed, found and
read exactly as the inbox is (census_assets.resources.inbox): regular files directly in the
folder, with content fingerprints; a symbolic link, a name that is not UTF-8 or anything that is
not a regular file is refused with its reason and fails only itself."""

from census_assets.resources.inbox import BatchInbox
from census_assets.settings import LABELS_URL, setting_field
from census_assets.storage.errors import StorageError
from census_assets.storage.objects import ObjectStore


class LabelFolder(BatchInbox):
    """Where label files arrive (CENSUS_LABELS_URL): one file per labelled batch, named as the
    batch is; on gs:// read with `storage`'s key and retry deadline."""

    url: str = setting_field(LABELS_URL)

    def store(self, deadline: float | None = None) -> ObjectStore:
        if not self.url:
            raise StorageError("no labels folder: set CENSUS_LABELS_URL (default <CENSUS_STORAGE_URL>/labels)")
        return self.storage.open(self.url, deadline)
