"""Python objects <-> named files, in open formats: DataFrames as Parquet, dicts as JSON, models as
LightGBM text plus its JSON dump, the vocabulary (JSON) and the importance chart (PNG). Never pickle."""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import pandas as pd

from census_assets.core.features import Vocabulary
from census_assets.core.file_formats import parquet_bytes, parquet_frame
from census_assets.core.training import TrainedModel
from census_assets.storage.errors import CorruptArtifactError
from census_assets.storage.manifests import Reader, json_bytes, parse_json, verified_reader
from census_assets.storage.objects import ObjectStore

PARQUET = ".parquet"
JSON = ".json"
MODEL_TEXT = ".txt"
MODEL_VOCABULARY = ".vocabulary.json"
MODEL_IMPORTANCE = ".importance.png"


@dataclass(frozen=True)
class Codec:
    """encode(obj) -> {suffix: bytes} (the asset's own file last); decode(read, url) -> obj,
    where read(suffix) gives the verified bytes of `<stem><suffix>` and url(suffix) its URL."""

    encode: Callable[[Any], dict[str, bytes]]
    decode: Callable[[Reader, Callable[[str], str]], Any]


def _encode_frame(frame: pd.DataFrame) -> dict[str, bytes]:
    return {PARQUET: parquet_bytes(frame, "zstd")}


def _decode_frame(read: Reader, url: Callable[[str], str]) -> pd.DataFrame:
    data = read(PARQUET)
    try:
        return parquet_frame(data)
    except Exception as error:  # pyarrow raises several types for a damaged file
        raise CorruptArtifactError(f"{url(PARQUET)} is not a readable Parquet file ({error})") from None


def _encode_json(value: dict) -> dict[str, bytes]:
    return {JSON: json_bytes(value)}


def _decode_json(read: Reader, url: Callable[[str], str]) -> dict:
    return parse_json(read(JSON), url(JSON))


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


# Each booster's JSON dump, as written or read with it: dumping costs more than the rest of the
# model's files together, and a model loaded from storage is written again as it is (the registry
# publishes the lgbm_model that holdout_metrics evaluated).
_JSON_DUMPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _json_dump(booster) -> bytes:
    dump = _JSON_DUMPS.get(booster)
    if dump is None:
        # Compact: json's C encoder (indentation falls back to the pure-Python one, 10x slower).
        dump = _JSON_DUMPS[booster] = json.dumps(booster.dump_model(), separators=(",", ":")).encode()
    return dump


def _encode_model(model: TrainedModel) -> dict[str, bytes]:
    files = {MODEL_VOCABULARY: json_bytes(model.vocabulary.to_dict()), JSON: _json_dump(model.booster)}
    if model.importance_chart is not None:
        files[MODEL_IMPORTANCE] = model.importance_chart
    files[MODEL_TEXT] = model.booster.model_to_string().encode()
    return files


def _decode_model(read: Reader, url: Callable[[str], str]) -> TrainedModel:
    from census_assets.core.lightgbm_runtime import lightgbm

    try:
        text = read(MODEL_TEXT).decode()
    except UnicodeDecodeError:
        raise CorruptArtifactError(f"{url(MODEL_TEXT)} is not a LightGBM model text (not UTF-8)") from None
    check_model_text(text, url(MODEL_TEXT))
    try:
        vocabulary = Vocabulary.from_dict(parse_json(read(MODEL_VOCABULARY), url(MODEL_VOCABULARY)))
    except (TypeError, ValueError, AttributeError) as error:
        raise CorruptArtifactError(f"{url(MODEL_VOCABULARY)} is not a vocabulary ({error})") from None
    dump = read(JSON)  # part of the set: a damaged JSON dump is refused like the rest
    try:
        booster = lightgbm().Booster(model_str=text)
    except Exception as error:  # LightGBMError: the text parsed as far as the check sees, no further
        raise CorruptArtifactError(f"{url(MODEL_TEXT)} cannot be loaded by LightGBM ({error})") from None
    _JSON_DUMPS[booster] = dump
    if booster.feature_name() != vocabulary.feature_names:
        raise CorruptArtifactError(
            f"{url(MODEL_TEXT)} does not match {url(MODEL_VOCABULARY)}: the model's features are not "
            "the vocabulary's (files from different models?)"
        )
    image = None
    with suppress(FileNotFoundError):
        image = read(MODEL_IMPORTANCE)
    return TrainedModel(booster, vocabulary, image)


CODECS: dict[type, Codec] = {
    pd.DataFrame: Codec(_encode_frame, _decode_frame),
    dict: Codec(_encode_json, _decode_json),
    TrainedModel: Codec(_encode_model, _decode_model),
}
MODEL_CODEC = CODECS[TrainedModel]


def codec_for(python_type: Any) -> Codec:
    for known, codec in CODECS.items():
        if isinstance(python_type, type) and issubclass(python_type, known):
            return codec
    raise TypeError(
        f"no storage format for {python_type!r}: annotate assets and inputs with one of "
        + ", ".join(t.__name__ for t in CODECS)
    )


def is_stored_type(python_type: Any) -> bool:
    """Whether the IO manager has a format for values of this type."""
    return any(isinstance(python_type, type) and issubclass(python_type, known) for known in CODECS)


def load(store: ObjectStore, codec: Codec, stem: str, manifest: dict[str, str] | None) -> Any:
    return codec.decode(verified_reader(store, stem, manifest), lambda suffix: store.url(stem + suffix))
