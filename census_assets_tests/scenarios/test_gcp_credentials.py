"""GCP_CREDENTIALS reaches every gs:// read: sources, the inbox, and `census-assets predict --input`.

A loopback OAuth endpoint grants tokens for a generated service-account key and counts the grants:
a read that used Google's default credentials (anonymous against the emulator) grants none."""

import base64
import io
import json
import shutil

import pandas as pd
import pytest
from google.cloud import storage

from census_assets import cli
from census_assets.resources.inbox import BatchInbox
from census_assets.resources.source import CensusSource
from census_assets.resources.storage import ArtifactStorage
from census_assets_tests.fixtures import RELEASE_797E3E6
from census_assets_tests.harness.emulators import BQ_PROJECT

pytestmark = pytest.mark.gcp

BUCKET = "census-keyed"


@pytest.fixture(scope="module")
def bucket(gcs_emulator):
    return storage.Client().create_bucket(BUCKET)


@pytest.fixture
def key(token_endpoint) -> str:
    return base64.b64encode(json.dumps(token_endpoint.service_account_key(BQ_PROJECT)).encode()).decode()


def test_a_gs_source_is_read_with_the_key(bucket, key, token_endpoint, bundled_raw):
    sample = bundled_raw.head(200)
    bucket.blob("sources/sample.csv").upload_from_string(sample.to_csv(index=False))
    source = CensusSource(uri=f"gs://{BUCKET}/sources/sample.csv", gcp_credentials=key)
    assert token_endpoint.grants == 0
    table = source.read()
    assert token_endpoint.grants >= 1
    pd.testing.assert_frame_equal(table, pd.read_csv(io.StringIO(sample.to_csv(index=False))))
    assert source.fingerprint().startswith("md5:")


def test_predict_reads_a_gs_input_with_the_key(bucket, key, token_endpoint, tmp_path, monkeypatch, capsys):
    batch = (RELEASE_797E3E6 / "inbox" / "batch_a.csv").read_bytes()
    bucket.blob("incoming/batch_a.csv").upload_from_string(batch)
    registry = shutil.copytree(RELEASE_797E3E6 / "census_storage", tmp_path / "storage")
    monkeypatch.setenv("GCP_CREDENTIALS", key)
    output = tmp_path / "scored.csv"
    source = f"gs://{BUCKET}/incoming/batch_a.csv"
    code = cli.main(["predict", "--input", source, "--output", str(output), "--storage", str(registry)])
    assert code == 0, capsys.readouterr().err
    assert token_endpoint.grants >= 1
    assert len(pd.read_csv(output)) == len(pd.read_csv(RELEASE_797E3E6 / "inbox" / "batch_a.csv"))


def test_a_gs_inbox_is_listed_and_read_with_the_key(bucket, key, token_endpoint):
    batch = (RELEASE_797E3E6 / "inbox" / "batch_a.csv").read_bytes()
    bucket.blob("inbox/batch_a.csv").upload_from_string(batch)
    storage_resource = ArtifactStorage(url=f"gs://{BUCKET}/storage", gcp_credentials=key)
    inbox = BatchInbox(url=f"gs://{BUCKET}/inbox", storage=storage_resource)
    listing = inbox.list_batches()
    assert token_endpoint.grants >= 1
    assert [file.name for file in listing.files] == ["batch_a.csv"]
    data, fingerprint = inbox.read("batch_a.csv")
    assert data == batch and fingerprint == listing.files[0].fingerprint
