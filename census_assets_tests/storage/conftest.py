"""The storage tests' two backends: a local directory, and gs:// on fake-gcs-server."""

import uuid

import pytest

from census_assets.storage.objects import ObjectStore, open_store


@pytest.fixture(scope="module")
def gcs_bucket(gcs_emulator) -> str:
    """A fresh bucket on the emulator for the test module."""
    from google.cloud import storage

    return storage.Client().create_bucket(f"storage-{uuid.uuid4().hex[:8]}").name


# The emulator is a process, so the gs:// cases are slow (flock locally, generation preconditions on GCS).
@pytest.fixture(params=["local", pytest.param("gcs", marks=[pytest.mark.slow, pytest.mark.gcp])])
def any_store(request, tmp_path) -> ObjectStore:
    if request.param == "local":
        return open_store(str(tmp_path))
    return open_store(f"gs://{request.getfixturevalue('gcs_bucket')}/{tmp_path.name}", retry_deadline=10)
