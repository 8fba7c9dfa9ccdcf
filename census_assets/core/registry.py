"""Versioned models, the production pointer, append-only promotion history, rollback.

No Dagster here: the registry works on any store with `census_assets.storage.ArtifactStore`'s
methods, so the same code serves a local directory and gs://. Layout under the storage base:

  models/<version>/model.txt, model.json, model.vocabulary.json, model.importance.png   the model, as the IO manager writes it
  models/<version>/reference_profile.json, training_metrics.json  what drift and audits compare against
  models/<version>/manifest.json      written last: a version without it was never completed
  promotions/<utc-time>-<action>-<version>.json   one object per promotion or rollback, never rewritten
  production.json                     the pointer: replaced atomically, the only thing rollback moves

A version is a content hash of the model, so retraining the same model yields the same version and
nothing is ever overwritten or deleted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
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
    """What the registry needs of storage (ArtifactStore provides it)."""

    def path(self, name: str) -> Any: ...
    def url(self, name: str) -> str: ...
    def exists(self, name: str) -> bool: ...
    def read_bytes(self, name: str) -> bytes: ...
    def write_bytes(self, name: str, data: bytes) -> None: ...


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


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=1, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class Registry:
    store: Store

    @staticmethod
    def prefix(version: str) -> str:
        return f"{MODELS}/{version}"

    def model_name(self, version: str) -> str:
        """The name under which the IO manager's model codec reads and writes this version."""
        return f"{self.prefix(version)}/{MODEL_STEM}"

    def url(self, version: str) -> str:
        return self.store.url(self.prefix(version))

    def is_published(self, version: str) -> bool:
        return self.store.exists(f"{self.prefix(version)}/{MANIFEST}")

    def publish(
        self,
        version: str,
        write_model: Callable[[str], Mapping[str, bytes]],
        extra_json: Mapping[str, Any],
    ) -> bool:
        """Write a version once: the model via `write_model(name)` (returns the objects it wrote),
        the JSON files, then the manifest of their hashes.

        Returns False (and writes nothing) when the version is already complete.
        """
        if self.is_published(version):
            return False
        prefix = self.prefix(version)
        written = {
            name.removeprefix(prefix + "/"): data
            for name, data in write_model(self.model_name(version)).items()
        }
        for name, value in extra_json.items():
            written[name] = _json(value)
            self.store.write_bytes(f"{prefix}/{name}", written[name])
        manifest = {name: hashlib.sha256(data).hexdigest() for name, data in written.items()}
        self.store.write_bytes(f"{prefix}/{MANIFEST}", _json({"version": version, "files": manifest}))
        return True

    def read_json(self, version: str, name: str) -> Any:
        return json.loads(self.store.read_bytes(f"{self.prefix(version)}/{name}"))

    def versions(self) -> list[str]:
        """Every completed version, sorted by name."""
        root = self.store.path(MODELS)
        if not root.exists():
            return []
        return sorted(p.name for p in root.iterdir() if self.is_published(p.name))

    def pointer(self) -> dict | None:
        return json.loads(self.store.read_bytes(POINTER)) if self.store.exists(POINTER) else None

    def production(self) -> dict:
        """The pointer, or a RegistryError that says where none was found."""
        pointer = self.pointer()
        if pointer is None:
            raise RegistryError(
                f"no production model at {self.store.url(POINTER)}: run the pipeline first "
                "(dagster asset materialize -m census_assets --select '*')"
            )
        return pointer

    def history(self) -> list[dict]:
        """Every promotion and rollback, oldest first."""
        root = self.store.path(HISTORY)
        if not root.exists():
            return []
        names = sorted(p.name for p in root.iterdir() if p.name.endswith(".json"))
        return [json.loads(self.store.read_bytes(f"{HISTORY}/{name}")) for name in names]

    def _move_pointer(self, action: str, version: str, **fields: Any) -> dict:
        current = self.pointer()
        record = {
            "action": action,
            "version": version,
            "path": self.url(version),
            "previous_version": current["version"] if current else None,
            "time": _now(),
            **fields,
        }
        # The history record goes first: a crash in between leaves a record of an attempted
        # move, never a pointer move without a record. Time-first names sort chronologically.
        key = f"{HISTORY}/{record['time']}-{action}-{version}.json"
        if self.store.exists(key):
            raise RegistryError(f"history record {self.store.url(key)} already exists")
        self.store.write_bytes(key, _json(record))
        # ArtifactStore writes atomically: temp file + rename locally, one object put on gs://.
        self.store.write_bytes(POINTER, _json(record))
        return record

    def promote(self, version: str, metrics: Mapping[str, float], run_id: str | None) -> dict:
        if not self.is_published(version):
            raise RegistryError(f"version {version} is not published under {self.store.url(MODELS)}")
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
