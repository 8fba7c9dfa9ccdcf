"""Versioned models, the production pointer, the promotion history, rollback (no Dagster).

The registry works on any store with `census_assets.artifacts.ArtifactStore`'s methods, so the
same code serves a local directory and gs://. Layout under the storage base:

  models/<version>/model.txt | .json | .vocabulary.json | .importance.png   the model
  models/<version>/reference_profile.json, training_metrics.json   what drift and audits compare against
  models/<version>/manifest.json     written last: the sha256 of every file; no manifest, no version
  promotions/<utc-time>-<action>-<version>-<nonce>.json   one record per promotion or rollback
  production.json                    the pointer: the current record, naming the record before it

production.json is replaced by a compare-and-swap (a flock locally, a generation precondition on
GCS), so two promotions at once both land, one after the other, and each record names the one it
replaced: the history is the chain of records from the pointer back, and a record that a lost race
or a crash left outside the chain is never shown. The pointer is validated when read: a version is
a 16-hex-digit id with a complete manifest, or the pointer is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from census_assets.core.training import TrainedModel

POINTER = "production.json"
MODELS = "models"
HISTORY = "promotions"
MANIFEST = "manifest.json"
MODEL_STEM = "model"


class RegistryError(RuntimeError):
    """A registry operation cannot be carried out; the message says why."""


class Store(Protocol):
    """What the registry needs of storage (census_assets.artifacts.ArtifactStore provides it)."""

    def url(self, name: str) -> str: ...
    def read_bytes(self, name: str) -> bytes: ...
    def write_bytes(self, name: str, data: bytes) -> None: ...
    def list(self, prefix: str) -> list[tuple[str, float]]: ...
    def update(self, name: str, change: Callable[[bytes | None], bytes]) -> bytes: ...


def model_version(model: TrainedModel) -> str:
    """A short hash of what determines the model's predictions: the same trees and vocabulary, the
    same version, whatever num_threads (or other training-only setting) the model was fitted or
    saved with.

    LightGBM's model text is a header (objective, feature names and ranges), the trees and the
    feature importances, then `parameters:` ... `end of parameters` (the training configuration,
    num_threads included: never read at prediction) and `pandas_categorical:` (the category
    mapping applied to DataFrame input). Everything but the parameters section is hashed.
    """
    text = model.booster.model_to_string()
    model_part, _, rest = text.partition("\nparameters:\n")
    _, _, tail = rest.partition("\nend of parameters\n")
    digest = hashlib.sha256(model_part.encode())
    digest.update(b"\0" + tail.encode())
    digest.update(b"\0" + json.dumps(model.vocabulary.to_dict(), sort_keys=True).encode())
    return digest.hexdigest()[:16]


VERSION = re.compile(r"[0-9a-f]{16}")
MODEL_FILES = ("model.txt", "model.vocabulary.json")  # a version's manifest must list at least these


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=1, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class Registry:
    store: Store

    @staticmethod
    def prefix(version: str) -> str:
        return f"{MODELS}/{version}"

    def model_name(self, version: str) -> str:
        """The stem under which the model codec reads and writes this version's files."""
        return f"{self.prefix(version)}/{MODEL_STEM}"

    def url(self, version: str) -> str:
        return self.store.url(self.prefix(version))

    def _read_json(self, name: str) -> Any:
        try:
            data = self.store.read_bytes(name)
        except FileNotFoundError:
            raise
        except OSError as error:  # a folder where a file belongs, a file where a folder does
            url, reason = self.store.url(name), error.strerror or str(error)
            raise RegistryError(reason if url in reason else f"cannot read {url}: {reason}") from None
        return self._parse(data, name)

    def _parse(self, data: bytes, name: str) -> Any:
        try:
            return json.loads(data)
        except (UnicodeDecodeError, ValueError) as error:
            raise RegistryError(f"{self.store.url(name)} is not valid JSON ({error})") from None

    def manifest(self, version: str) -> dict[str, str]:
        """object name -> sha256 of every file of a complete version, or RegistryError."""
        if not isinstance(version, str) or not VERSION.fullmatch(version):
            raise RegistryError(f"{version!r} is not a model version (16 hexadecimal digits)")
        name = f"{self.prefix(version)}/{MANIFEST}"
        try:
            manifest = self._read_json(name)
        except FileNotFoundError:
            raise RegistryError(f"version {version} is incomplete: no {self.store.url(name)}") from None
        files = manifest.get("files") if isinstance(manifest, dict) else None
        complete = isinstance(files, dict) and all(file in files for file in MODEL_FILES)
        if manifest.get("version") != version or not complete:
            raise RegistryError(f"{self.store.url(name)} is not a complete manifest of version {version}")
        return {f"{self.prefix(version)}/{file}": digest for file, digest in files.items()}

    def is_published(self, version: str) -> bool:
        try:
            self.manifest(version)
        except RegistryError:
            return False
        return True

    def publish(
        self,
        version: str,
        write_model: Callable[[str], Mapping[str, bytes]],
        extra_json: Mapping[str, Any],
    ) -> bool:
        """Write a version once: the model via `write_model(stem)` (returns {object name: bytes}),
        the JSON files, then the manifest of their hashes, which completes the version.

        Returns False (and writes nothing) when the version is already complete.
        """
        if self.is_published(version):
            return False
        prefix = self.prefix(version)
        model_files = write_model(self.model_name(version))
        written = {name.removeprefix(prefix + "/"): data for name, data in model_files.items()}
        for name, value in extra_json.items():
            written[name] = _json(value)
            self.store.write_bytes(f"{prefix}/{name}", written[name])
        manifest = {name: hashlib.sha256(data).hexdigest() for name, data in written.items()}
        self.store.write_bytes(f"{prefix}/{MANIFEST}", _json({"version": version, "files": manifest}))
        return True

    def read_json(self, version: str, name: str) -> Any:
        """A JSON file of a version, checked against the version's manifest."""
        object_name = f"{self.prefix(version)}/{name}"
        expected = self.manifest(version).get(object_name)
        data = self.store.read_bytes(object_name)
        if expected is None or hashlib.sha256(data).hexdigest() != expected:
            raise RegistryError(f"{self.store.url(object_name)} does not match version {version}'s manifest")
        return self._parse(data, object_name)

    def versions(self) -> list[str]:
        """Every completed version, sorted by name."""
        names = {name.split("/")[1] for name, _ in self.store.list(MODELS) if name.endswith("/" + MANIFEST)}
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
            pointer = self._read_json(POINTER)
        except FileNotFoundError:
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

    def history(self) -> list[dict]:
        """Every promotion and rollback that moved the pointer, oldest first."""
        records, record = [], self.pointer()
        while record is not None:
            records.append(record)
            previous = record.get("previous_record")
            record = self._read_json(previous) if previous else None
        return records[::-1]

    def _move_pointer(self, action: str, version: str, **fields: Any) -> dict:
        self.manifest(version)  # never point at an incomplete version
        moved: dict = {}

        def change(current: bytes | None) -> bytes:
            previous = self._validated(self._parse(current, POINTER), self.store.url(POINTER)) if current else None
            time = _now()
            key = f"{HISTORY}/{time}-{action}-{version}-{uuid.uuid4().hex[:8]}.json"
            record = {
                "action": action,
                "version": version,
                "path": self.url(version),
                "previous_version": previous["version"] if previous else None,
                "previous_record": previous.get("record") if previous else None,
                "record": key,
                "time": time,
                **fields,
            }
            # The record goes first: the pointer never names a record that was not written.
            try:
                self.store.write_bytes(key, _json(record))
            except FileExistsError as error:  # mkdir of promotions/ where a file of that name is
                raise RegistryError(f"cannot write {self.store.url(key)}: {HISTORY}/ is not a folder") from error
            except OSError as error:
                raise RegistryError(f"cannot write {self.store.url(key)}: {error}") from error
            moved.update(record)
            return _json(record)

        self.store.update(POINTER, change)
        return moved

    def promote(self, version: str, metrics: Mapping[str, float], run_id: str | None) -> dict:
        return self._move_pointer("promote", version, metrics=dict(metrics), run_id=run_id)

    def rollback(self, version: str, reason: str = "") -> dict:
        """Point production at an earlier promoted version: writes only a record and the pointer."""
        promoted = {r["version"]: r for r in self.history() if r["action"] == "promote"}
        if version not in promoted:
            known = ", ".join(promoted) or "none"
            raise RegistryError(f"version {version!r} was never promoted (promoted: {known})")
        return self._move_pointer(
            "rollback", version, metrics=promoted[version]["metrics"], run_id=None, reason=reason
        )


@dataclass(frozen=True)
class PromotionDecision:
    """The champion/challenger verdict; `reasons` always says why, whichever way it goes."""

    promote: bool
    reasons: tuple[str, ...]
    champion_version: str | None
    champion_cv_accuracy: float | None

    @property
    def message(self) -> str:
        return "; ".join(self.reasons)


def decide_promotion(
    cv_accuracy: float,
    holdout_accuracy: float,
    champion: Mapping | None,
    threshold: float,
    tolerance: float = 0.0,
) -> PromotionDecision:
    """Promote when held-out accuracy >= threshold and CV accuracy >= champion's - tolerance."""
    holdout_ok = holdout_accuracy >= threshold
    reasons = [
        f"held-out accuracy {holdout_accuracy:.4f} {'>=' if holdout_ok else '<'} threshold {threshold:.4f}"
    ]
    if champion is None:
        champion_cv, champion_ok = None, True
        reasons.append("no production model yet")
    else:
        champion_cv = float(champion["metrics"]["cv_accuracy"])
        champion_ok = cv_accuracy >= champion_cv - tolerance
        reasons.append(
            f"CV accuracy {cv_accuracy:.4f} {'>=' if champion_ok else '<'} champion "
            f"{champion['version']}'s {champion_cv:.4f} - tolerance {tolerance:.4f}"
        )
    return PromotionDecision(
        promote=holdout_ok and champion_ok,
        reasons=tuple(reasons),
        champion_version=champion["version"] if champion else None,
        champion_cv_accuracy=champion_cv,
    )
