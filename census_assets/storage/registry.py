"""The model registry: versioned models, the production pointer, promotions and rollbacks.

Layout under the storage base (local or gs://, through the same ObjectStore as the artifacts):

  models/<version>/model.txt | .json | .vocabulary.json | .importance.png   the model
  models/<version>/reference_profile.json, training_metrics.json   what drift and audits compare against
  models/<version>/manifest.json     written last: the sha256 of every file; no manifest, no version
  promotions/<utc-time>-<action>-<version>-<nonce>.json   one record per promotion or rollback
  production.json                    the pointer: the current record, naming the record before it

production.json is replaced by a compare-and-swap, so two promotions at once both land, one after
the other, and each record names the one it replaced. A promotion is conditional on the champion
it was decided against: if production moved in between (a rollback, another promotion), it is not
made. The pointer is validated when read: a version is a 16-hex-digit id with a complete manifest.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from census_assets.core.training import TrainedModel
from census_assets.storage.codecs import MODEL_CODEC, MODEL_TEXT, MODEL_VOCABULARY, load
from census_assets.storage.errors import (
    ChampionChangedError,
    CorruptArtifactError,
    MissingArtifactError,
    RegistryError,
)
from census_assets.storage.manifests import digests, json_bytes, parse_json, read_json, sha256, utc_now, write_files
from census_assets.storage.objects import ObjectStore

POINTER = "production.json"
MODELS = "models"
HISTORY = "promotions"
MANIFEST = "manifest.json"
MODEL_STEM = "model"
VERSION = re.compile(r"[0-9a-f]{16}")
# A version's manifest must list at least these (the model text and its vocabulary).
REQUIRED_FILES = (MODEL_STEM + MODEL_TEXT, MODEL_STEM + MODEL_VOCABULARY)
# What every promotion record (production.json holds the current one) tells history's readers.
RECORD_FIELDS = ("action", "version", "time")
# `expected_champion` when the caller did not decide against a champion.
ANY_CHAMPION = object()


def _read(store: ObjectStore, name: str) -> Any:
    """A registry JSON file; a folder where a file belongs (or the reverse) is a RegistryError."""
    try:
        return read_json(store, name)
    except MissingArtifactError:
        raise
    except CorruptArtifactError as error:
        raise RegistryError(str(error)) from None
    except OSError as error:
        url, reason = store.url(name), error.strerror or str(error)
        raise RegistryError(reason if url in reason else f"cannot read {url}: {reason}") from None


def _checked_record(record: Any, url: str) -> dict:
    """A promotion record as history's readers show it: a JSON object with its action, version
    and time; anything else is damaged, a RegistryError naming it."""
    if not isinstance(record, dict) or not all(isinstance(record.get(field), str) for field in RECORD_FIELDS):
        raise RegistryError(f"{url} is not a promotion record (no action, version and time)")
    return record


def _record(store: ObjectStore, name: str) -> dict:
    """A promotion record named by the pointer or the next record."""
    return _checked_record(_read(store, name), store.url(name))


@dataclass(frozen=True)
class Registry:
    store: ObjectStore

    @staticmethod
    def prefix(version: str) -> str:
        return f"{MODELS}/{version}"

    def model_name(self, version: str) -> str:
        """The stem under which the model codec reads and writes this version's files."""
        return f"{self.prefix(version)}/{MODEL_STEM}"

    def url(self, version: str) -> str:
        return self.store.url(self.prefix(version))

    def manifest(self, version: str) -> dict[str, str]:
        """object name -> sha256 of every file of a complete version, or RegistryError."""
        if not isinstance(version, str) or not VERSION.fullmatch(version):
            raise RegistryError(f"{version!r} is not a model version (16 hexadecimal digits)")
        name = f"{self.prefix(version)}/{MANIFEST}"
        try:
            manifest = _read(self.store, name)
        except MissingArtifactError:
            raise RegistryError(f"version {version} is incomplete: no {self.store.url(name)}") from None
        files = manifest.get("files") if isinstance(manifest, dict) else None
        complete = isinstance(files, dict) and all(file in files for file in REQUIRED_FILES)
        if not complete or manifest.get("version") != version:
            raise RegistryError(f"{self.store.url(name)} is not a complete manifest of version {version}")
        return {f"{self.prefix(version)}/{file}": digest for file, digest in files.items()}

    def is_published(self, version: str) -> bool:
        try:
            self.manifest(version)
        except RegistryError:
            return False
        return True

    def publish(self, version: str, model: TrainedModel, extra_json: Mapping[str, Any]) -> bool:
        """Write a version once: the model's files, the JSON files (a bytes value is written as it
        is: a model card's Markdown, a chart), then the manifest of their hashes, which completes
        the version. False (and nothing written) when already complete."""
        if self.is_published(version):
            return False
        prefix = self.prefix(version)
        written = write_files(self.store, self.model_name(version), MODEL_CODEC.encode(model))
        for name, value in extra_json.items():
            data = value if isinstance(value, bytes) else json_bytes(value)
            self.store.write(f"{prefix}/{name}", data)
            written[f"{prefix}/{name}"] = data
        files = {name.removeprefix(prefix + "/"): digest for name, digest in digests(written).items()}
        self.store.write(f"{prefix}/{MANIFEST}", json_bytes({"version": version, "files": files}))
        return True

    def read_bytes(self, version: str, name: str) -> bytes:
        """A file of a version, checked against the version's manifest."""
        object_name = f"{self.prefix(version)}/{name}"
        expected = self.manifest(version).get(object_name)
        data = self.store.read(object_name)
        if expected is None or sha256(data) != expected:
            raise RegistryError(f"{self.store.url(object_name)} does not match version {version}'s manifest")
        return data

    def read_json(self, version: str, name: str) -> Any:
        """A JSON file of a version, checked against the version's manifest."""
        data = self.read_bytes(version, name)
        try:
            return parse_json(data, self.store.url(f"{self.prefix(version)}/{name}"))
        except CorruptArtifactError as error:
            raise RegistryError(str(error)) from None

    def load(self, version: str) -> TrainedModel:
        """A version's model, verified against the version's manifest."""
        return load(self.store, MODEL_CODEC, self.model_name(version), self.manifest(version))

    def load_production(self) -> tuple[dict, TrainedModel]:
        """The production pointer and the model it names."""
        pointer = self.production()
        return pointer, self.load(pointer["version"])

    def versions(self) -> list[str]:
        """Every completed version, sorted by name."""
        names = {info.name.split("/")[1] for info in self.store.list(MODELS) if info.name.endswith("/" + MANIFEST)}
        return sorted(v for v in names if self.is_published(v))

    def _validated(self, pointer: Any, where: str) -> dict:
        if not isinstance(pointer, dict) or not isinstance(pointer.get("version"), str):
            raise RegistryError(f"{where} is not a production pointer (no version)")
        try:
            self.manifest(pointer["version"])
        except RegistryError as error:
            raise RegistryError(f"{where} names an unusable version: {error}") from None
        return pointer

    def pointer(self) -> dict | None:
        """The validated production pointer, None when nothing was promoted yet."""
        try:
            pointer = _read(self.store, POINTER)
        except MissingArtifactError:
            return None
        return self._validated(pointer, self.store.url(POINTER))

    def production(self) -> dict:
        """The pointer, or a RegistryError that says where none was found."""
        pointer = self.pointer()
        if pointer is None:
            raise RegistryError(
                f"no production model at {self.store.url(POINTER)}: run the pipeline first "
                "(dagster asset materialize -m census_assets --select 'group:census or group:model_lifecycle')"
            )
        return pointer

    def _unchained_records(self, before: str) -> list[dict]:
        """Records written before records named their predecessor (no `previous_record`), older
        than `before`, newest first: in that era every record in the folder was a pointer move."""
        records = []
        for info in self.store.list(HISTORY):
            record = _read(self.store, info.name)
            if isinstance(record, dict) and "version" in record and "previous_record" not in record:
                if _checked_record(record, self.store.url(info.name))["time"] < before:
                    records.append({**record, "record": info.name})
        return sorted(records, key=lambda record: record["time"], reverse=True)

    def history(self) -> list[dict]:
        """Every promotion and rollback that moved the pointer, oldest first. One reader for every
        record shape: the chain of records from the pointer back; where the chain reaches a record
        from before the chain (no `previous_record`, or a first chained record whose predecessor had
        no name), the older records in the folder follow, by time."""
        record = self.pointer()
        if record is not None:
            # production.json is validated for its version when read; history shows more of it.
            _checked_record(record, self.store.url(POINTER))
        records = []
        while record is not None:
            records.append(record)
            previous = record.get("previous_record")
            if previous:
                record = _record(self.store, previous)
            else:
                if "previous_record" not in record or record.get("previous_version"):
                    records.extend(self._unchained_records(record["time"]))
                record = None
        return records[::-1]

    def _move_pointer(self, action: str, version: str, expected_champion: Any, **fields: Any) -> dict:
        self.manifest(version)  # never point at an incomplete version
        moved: dict = {}

        def change(current: bytes | None) -> bytes:
            previous = None
            if current:
                try:
                    previous = self._validated(parse_json(current, self.store.url(POINTER)), self.store.url(POINTER))
                except CorruptArtifactError as error:
                    raise RegistryError(str(error)) from None
            champion = previous["version"] if previous else None
            if expected_champion is not ANY_CHAMPION and champion != expected_champion:
                raise ChampionChangedError(
                    f"champion changed from {expected_champion or 'none'} to {champion or 'none'} during the "
                    f"decision: not promoting {version}; materialise production_model again to decide anew"
                )
            time = utc_now()
            key = f"{HISTORY}/{time}-{action}-{version}-{uuid.uuid4().hex[:8]}.json"
            record = {
                "action": action,
                "version": version,
                "path": self.url(version),
                "previous_version": champion,
                "previous_record": previous.get("record") if previous else None,
                "record": key,
                "time": time,
                **fields,
            }
            # The record goes first: the pointer never names a record that was not written.
            try:
                self.store.write(key, json_bytes(record))
            except OSError as error:
                raise RegistryError(f"cannot write {self.store.url(key)}: {error}") from error
            moved.clear()
            moved.update(record)
            return json_bytes(record)

        self.store.update(POINTER, change)
        return moved

    def promote(
        self, version: str, metrics: Mapping[str, Any], run_id: str | None, expected_champion: Any = ANY_CHAMPION,
        **evidence: Any,
    ) -> dict:
        """Point production at `version`, if production is still `expected_champion` (a version or
        None for "no production yet"); ChampionChangedError otherwise."""
        return self._move_pointer(
            "promote", version, expected_champion, metrics=dict(metrics), run_id=run_id, **evidence
        )

    def rollback(self, version: str, reason: str = "") -> dict:
        """Point production at an earlier promoted version: writes only a record and the pointer."""
        promoted = {r["version"]: r for r in self.history() if r["action"] == "promote"}
        if version not in promoted:
            known = ", ".join(promoted) or "none"
            raise RegistryError(f"version {version!r} was never promoted (promoted: {known})")
        return self._move_pointer(
            "rollback", version, ANY_CHAMPION, metrics=promoted[version].get("metrics", {}), run_id=None, reason=reason
        )
