"""What every stored record shares: the sha256 of a file, JSON bytes, the UTC time stamp, and the
manifest check (a file a manifest lists is read only if its sha256 matches)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any

from census_assets.storage.errors import CorruptArtifactError, MissingArtifactError
from census_assets.storage.objects import ObjectStore

MANIFEST_SUFFIX = ".manifest.json"

Reader = Callable[[str], bytes]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=1, sort_keys=True) + "\n").encode()


def parse_json(data: bytes, url: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as error:
        raise CorruptArtifactError(f"{url} is not valid JSON ({error})") from None


def read_json(store: ObjectStore, name: str) -> Any:
    return parse_json(store.read(name), store.url(name))


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def verified_reader(store: ObjectStore, stem: str, manifest: dict[str, str] | None) -> Reader:
    """read(suffix) -> the bytes of `<stem><suffix>`, checked against the manifest's sha256 when
    there is one (a file the manifest does not list is refused as missing)."""

    def read(suffix: str) -> bytes:
        name = stem + suffix
        if manifest is not None and name not in manifest:
            raise MissingArtifactError(f"{store.url(name)} is not part of the committed artifact")
        data = store.read(name)
        if manifest is not None and sha256(data) != manifest[name]:
            raise CorruptArtifactError(
                f"{store.url(name)} is not the file that was committed (sha256 {sha256(data)[:12]}..., "
                f"manifest {manifest[name][:12]}...): truncated, overwritten or swapped"
            )
        return data

    return read


def write_files(store: ObjectStore, stem: str, files: dict[str, bytes]) -> dict[str, bytes]:
    """Write `<stem><suffix>` for each encoded file, in order; returns {object name: bytes}."""
    for suffix, data in files.items():
        store.write(stem + suffix, data)
    return {stem + suffix: data for suffix, data in files.items()}


def digests(files: dict[str, bytes]) -> dict[str, str]:
    return {name: sha256(data) for name, data in files.items()}
