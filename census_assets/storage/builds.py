"""Reproducible builds in the registry: a version keeps the raw rows its training read and the
record of its build (core.rebuild), written with the version; `forget` removes the rows (they
hold personal data: age, sex, race), the model and the record stay."""

from __future__ import annotations

from typing import Any

import pandas as pd

from census_assets.core.file_formats import parquet_bytes, parquet_frame
from census_assets.core.rebuild import BuildRecord
from census_assets.storage.errors import RegistryError
from census_assets.storage.registry import Registry

TRAINING_SNAPSHOT = "training_raw.parquet"
BUILD_RECORD = "build.json"


class NotReproducibleError(RegistryError):
    """The version cannot be rebuilt: made before build records, or its rows were forgotten."""


def build_files(raw: pd.DataFrame, record: BuildRecord) -> dict[str, Any]:
    """The files Registry.publish writes with the version."""
    # Snappy, pandas' default, which the snapshots were always written with.
    return {TRAINING_SNAPSHOT: parquet_bytes(raw, "snappy"), BUILD_RECORD: record.to_dict()}


def _snapshot(registry: Registry, version: str) -> str:
    if f"{registry.prefix(version)}/{BUILD_RECORD}" not in registry.manifest(version):
        raise NotReproducibleError(f"version {version} was made before reproducible builds: it has no build record")
    return f"{registry.prefix(version)}/{TRAINING_SNAPSHOT}"


def read_build(registry: Registry, version: str) -> tuple[BuildRecord, pd.DataFrame]:
    """The build record and the raw training rows of a version, verified against its manifest."""
    name = _snapshot(registry, version)
    if not registry.store.exists(name):
        raise NotReproducibleError(
            f"version {version}'s training rows were removed (census-assets forget): it cannot be rebuilt"
        )
    record = BuildRecord.from_dict(registry.read_json(version, BUILD_RECORD))
    return record, parquet_frame(registry.read_bytes(version, TRAINING_SNAPSHOT))


def forget(registry: Registry, version: str) -> bool:
    """Remove a version's raw training rows; False when they were already removed."""
    name = _snapshot(registry, version)
    if not registry.store.exists(name):
        return False
    registry.store.delete(name)
    return True
