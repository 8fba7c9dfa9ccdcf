"""Format-aware artifact storage, local or gs://, without Dagster: the store, the codecs, and the
verified loading of the production model, shared by the IO manager, the registry and the CLI.

Objects live at `<base>/<asset_name>.<ext>` in open formats: DataFrames as Parquet, dicts as JSON,
models as LightGBM text (+ JSON dump + vocabulary JSON). Never pickle. Every write is atomic:
locally a temp file renamed into place, on object stores a single upload (GCS publishes an
object only once its upload completes), so a crash never leaves a half-written artifact.

On gs:// the objects are read and written with google-cloud-storage, which retries transient
errors (429, 5xx, timeouts, dropped connections) with exponential backoff within a deadline
(CENSUS_GCS_RETRY_DEADLINE). gcsfs's own retries cannot be bounded in time, so it only lists.
"""

import base64
import binascii
import functools
import io
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import pandas as pd
from upath import UPath

from census_assets.core.features import Vocabulary
from census_assets.core.registry import Registry
from census_assets.core.training import TrainedModel
from census_assets.settings import DEFAULT_GCS_RETRY_DEADLINE, GCS_RETRY_DEADLINE

LOCAL_PROTOCOLS = ("", "file", "local")
GCS_PROTOCOLS = ("gs", "gcs")


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


class BucketNotFoundError(StorageError):
    """The configured bucket does not exist: retrying cannot help."""


@functools.lru_cache(maxsize=4)
def _gcs_client(emulator_host: str | None, credentials: str | None):
    # One client per process (per emulator address, which the client reads when created, and key).
    from google.cloud import storage

    if credentials:
        return storage.Client.from_service_account_info(service_account_info(credentials))
    return storage.Client(project=None)


class GcsObjects:
    """Objects under gs://bucket/prefix: one upload per write, transient errors retried."""

    def __init__(self, bucket: str, prefix: str, retry_deadline: float, credentials: str | None = None):
        from google.cloud.storage.retry import DEFAULT_RETRY

        self.bucket_name, self.prefix, self.retry_deadline = bucket, prefix.strip("/"), retry_deadline
        self.credentials = credentials  # a base64 service-account key; None: default credentials
        # Backoff scaled to the deadline: 1 s first wait (less for short deadlines), doubling.
        self.retry = DEFAULT_RETRY.with_delay(
            initial=min(1.0, retry_deadline / 20), maximum=max(retry_deadline / 4, 0.1), multiplier=2.0
        ).with_timeout(retry_deadline)
        # A hung request counts as a timeout (retried) after this long, not the library's 60 s.
        self.timeout = min(60.0, max(retry_deadline, 10.0))

    def client(self):
        return _gcs_client(os.environ.get("STORAGE_EMULATOR_HOST"), self.credentials)

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _blob(self, name: str):
        return self.client().bucket(self.bucket_name).blob(self._key(name))

    def _url(self, name: str) -> str:
        return f"gs://{self.bucket_name}/{self._key(name)}"

    def _call(self, action: str, name: str, function: Callable[[], Any]) -> Any:
        from google.api_core.exceptions import NotFound, RetryError

        try:
            return function()
        except RetryError as error:
            raise StorageError(
                f"GCS unavailable: gave up on {action} {self._url(name)} after retrying for "
                f"{self.retry_deadline:g} s ({GCS_RETRY_DEADLINE}); last error: {error.cause}"
            ) from error
        except NotFound:
            if self.client().lookup_bucket(self.bucket_name, **self._policy) is None:
                raise BucketNotFoundError(
                    f"GCS bucket {self.bucket_name!r} does not exist (storage gs://{self.bucket_name}/"
                    f"{self.prefix}): create it or fix the storage URL"
                ) from None
            raise FileNotFoundError(f"no artifact {self._url(name)}: materialise it first") from None

    def exists(self, name: str) -> bool:
        return self._call("checking", name, lambda: self._blob(name).exists(**self._policy))

    def read(self, name: str) -> bytes:
        return self._call("reading", name, lambda: self._blob(name).download_as_bytes(**self._policy))

    def write(self, name: str, data: bytes) -> None:
        # Whole objects are idempotent to re-send, so uploads are retried too.
        self._call("writing", name, lambda: self._blob(name).upload_from_string(data, **self._policy))

    @property
    def _policy(self) -> dict:
        return {"retry": self.retry, "timeout": self.timeout}


class ArtifactStore:
    """Named byte objects under one base URL, written atomically."""

    def __init__(
        self,
        base_url: str,
        storage_options: dict | None = None,
        retry_deadline: float = DEFAULT_GCS_RETRY_DEADLINE,
        gcp_credentials: str | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        options = dict(storage_options or {})
        self.gcs = None
        if self.base_url.split("://")[0] in GCS_PROTOCOLS:
            # Listings (registry versions) must see objects just written through the other client.
            options.setdefault("use_listings_cache", False)
            if gcp_credentials:
                        options.setdefault("token", service_account_info(gcp_credentials))
            bucket, _, prefix = self.base_url.split("://", 1)[1].partition("/")
            self.gcs = GcsObjects(bucket, prefix, retry_deadline, gcp_credentials)
        self.base = UPath(self.base_url, **options)

    @property
    def is_local(self) -> bool:
        return self.base.protocol in LOCAL_PROTOCOLS

    def path(self, name: str) -> UPath:
        return self.base / name

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def exists(self, name: str) -> bool:
        if self.gcs is not None:
            return self.gcs.exists(name)
        return self.path(name).exists()

    def read_bytes(self, name: str) -> bytes:
        if self.gcs is not None:
            return self.gcs.read(name)
        path = self.path(name)
        if not path.exists():
            raise FileNotFoundError(f"no artifact {self.url(name)}: materialise it first")
        return path.read_bytes()

    def write_bytes(self, name: str, data: bytes) -> None:
        target = self.path(name)
        if self.gcs is not None:
            self.gcs.write(name, data)
            return
        if not self.is_local:
            target.write_bytes(data)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary.path, target.path)

    def read_json(self, name: str) -> Any:
        return json.loads(self.read_bytes(name))

    def write_json(self, name: str, value: Any) -> None:
        self.write_bytes(name, json_bytes(value))


def json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=1, sort_keys=True) + "\n").encode()


def _encode_frame(name: str, frame: pd.DataFrame) -> dict[str, bytes]:
    buffer = io.BytesIO()
    # pandas keeps frame.attrs (the feature vocabulary) in the Parquet key-value metadata.
    frame.to_parquet(buffer, compression="zstd", index=False)
    return {f"{name}.parquet": buffer.getvalue()}


def _load_frame(store: ArtifactStore, name: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(store.read_bytes(f"{name}.parquet")))


def _encode_json(name: str, value: dict) -> dict[str, bytes]:
    return {f"{name}.json": json_bytes(value)}


def _load_json(store: ArtifactStore, name: str) -> dict:
    return store.read_json(f"{name}.json")


def _encode_model(name: str, model: TrainedModel) -> dict[str, bytes]:
    files = {
        f"{name}.vocabulary.json": json_bytes(model.vocabulary.to_dict()),
        f"{name}.json": json_bytes(model.booster.dump_model()),
    }
    if model.importance_chart is not None:
        files[f"{name}.importance.png"] = model.importance_chart
    # The text model comes last: it is what loaders look for, so it commits the set.
    files[f"{name}.txt"] = model.booster.model_to_string().encode()
    return files


def _load_model(store: ArtifactStore, name: str) -> TrainedModel:
    booster = lgb.Booster(model_str=store.read_bytes(f"{name}.txt").decode())
    vocabulary = Vocabulary.from_dict(store.read_json(f"{name}.vocabulary.json"))
    chart = f"{name}.importance.png"
    return TrainedModel(booster, vocabulary, store.read_bytes(chart) if store.exists(chart) else None)


@dataclass(frozen=True)
class Codec:
    encode: Callable[[str, Any], dict[str, bytes]]
    load: Callable[[ArtifactStore, str], Any]

    def dump(self, store: ArtifactStore, name: str, obj: Any) -> dict[str, bytes]:
        """Write obj's objects in order and return them, so callers size or hash them unread."""
        files = self.encode(name, obj)
        for key, data in files.items():
            store.write_bytes(key, data)
        return files


CODECS: dict[type, Codec] = {
    pd.DataFrame: Codec(_encode_frame, _load_frame),
    dict: Codec(_encode_json, _load_json),
    TrainedModel: Codec(_encode_model, _load_model),
}


def codec_for(python_type: Any) -> Codec:
    for known, codec in CODECS.items():
        if isinstance(python_type, type) and issubclass(python_type, known):
            return codec
    raise TypeError(
        f"no storage format for {python_type!r}: annotate assets and inputs with one of "
        + ", ".join(t.__name__ for t in CODECS)
    )


def load_production(registry: Registry) -> tuple[dict, TrainedModel]:
    """The production pointer and the model it names."""
    pointer = registry.production()
    return pointer, codec_for(TrainedModel).load(registry.store, registry.model_name(pointer["version"]))
