"""Format-aware artifact storage, local or gs://, and the Dagster IO manager on top of it.

Objects live at `<base>/<asset_name>.<ext>` in open formats: DataFrames as Parquet, dicts as JSON,
models as LightGBM text (+ JSON dump + vocabulary JSON). Never pickle. Every write is atomic:
locally a temp file renamed into place, on object stores a single upload (GCS publishes an
object only once its upload completes), so a crash never leaves a half-written artifact.
"""

import io
import json
import os
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import dagster as dg
import lightgbm as lgb
import pandas as pd
from upath import UPath

from census_assets.core.features import Vocabulary
from census_assets.core.training import TrainedModel

LOCAL_PROTOCOLS = ("", "file", "local")


class ArtifactStore:
    """Named byte objects under one base URL, written atomically."""

    def __init__(self, base_url: str, storage_options: dict | None = None):
        self.base_url = base_url.rstrip("/")
        self.base = UPath(self.base_url, **(storage_options or {}))

    @property
    def is_local(self) -> bool:
        return self.base.protocol in LOCAL_PROTOCOLS

    def path(self, name: str) -> UPath:
        return self.base / name

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def read_bytes(self, name: str) -> bytes:
        path = self.path(name)
        if not path.exists():
            raise FileNotFoundError(f"no artifact {self.url(name)}: materialise it first")
        return path.read_bytes()

    def write_bytes(self, name: str, data: bytes) -> None:
        target = self.path(name)
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
        self.write_bytes(name, (json.dumps(value, indent=1, sort_keys=True) + "\n").encode())


def _dump_frame(store: ArtifactStore, name: str, frame: pd.DataFrame) -> list[str]:
    buffer = io.BytesIO()
    # pandas keeps frame.attrs (the feature vocabulary) in the Parquet key-value metadata.
    frame.to_parquet(buffer, compression="zstd", index=False)
    store.write_bytes(f"{name}.parquet", buffer.getvalue())
    return [f"{name}.parquet"]


def _load_frame(store: ArtifactStore, name: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(store.read_bytes(f"{name}.parquet")))


def _dump_json(store: ArtifactStore, name: str, value: dict) -> list[str]:
    store.write_json(f"{name}.json", value)
    return [f"{name}.json"]


def _load_json(store: ArtifactStore, name: str) -> dict:
    return store.read_json(f"{name}.json")


def _dump_model(store: ArtifactStore, name: str, model: TrainedModel) -> list[str]:
    # The text model is written last: it is what loaders look for, so it commits the set.
    store.write_json(f"{name}.vocabulary.json", model.vocabulary.to_dict())
    store.write_json(f"{name}.json", model.booster.dump_model())
    store.write_bytes(f"{name}.txt", model.booster.model_to_string().encode())
    return [f"{name}.txt", f"{name}.json", f"{name}.vocabulary.json"]


def _load_model(store: ArtifactStore, name: str) -> TrainedModel:
    booster = lgb.Booster(model_str=store.read_bytes(f"{name}.txt").decode())
    vocabulary = Vocabulary.from_dict(store.read_json(f"{name}.vocabulary.json"))
    return TrainedModel(booster, vocabulary)


@dataclass(frozen=True)
class Codec:
    dump: Callable[[ArtifactStore, str, Any], list[str]]
    load: Callable[[ArtifactStore, str], Any]


CODECS: dict[type, Codec] = {
    pd.DataFrame: Codec(_dump_frame, _load_frame),
    dict: Codec(_dump_json, _load_json),
    TrainedModel: Codec(_dump_model, _load_model),
}


def codec_for(python_type: Any) -> Codec:
    for known, codec in CODECS.items():
        if isinstance(python_type, type) and issubclass(python_type, known):
            return codec
    raise TypeError(
        f"no storage format for {python_type!r}: annotate assets and inputs with one of "
        + ", ".join(t.__name__ for t in CODECS)
    )


class CensusIOManager(dg.ConfigurableIOManager):
    """Stores each asset at `<base_url>/<asset_name>.<ext>` in an open format (local or gs://)."""

    base_url: str

    def store(self) -> ArtifactStore:
        return ArtifactStore(self.base_url)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        store = self.store()
        name = "_".join(context.asset_key.path)
        written = codec_for(type(obj)).dump(store, name, obj)
        sizes = {key: store.path(key).stat().st_size for key in written}
        context.add_output_metadata(
            {
                "path": dg.MetadataValue.path(store.url(written[0])),
                "size_bytes": sum(sizes.values()),
                "files": dg.MetadataValue.json(sizes),
            }
        )

    def load_input(self, context: dg.InputContext) -> Any:
        name = "_".join(context.asset_key.path)
        return codec_for(context.dagster_type.typing_type).load(self.store(), name)
