"""Model cards in the registry: a version's card is written with the version, so the manifest
covers it (models/<version>/model_card.md, model_card.json and its reliability diagrams), and
read back verified against that manifest. A version published before cards existed has none."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from census_assets.core.calibration import ECE_LIMIT
from census_assets.core.model_card import card_charts, pipeline_card, render_markdown
from census_assets.core.training import TrainedModel
from census_assets.storage.builds import TRAINING_SNAPSHOT
from census_assets.storage.errors import RegistryError
from census_assets.storage.manifests import utc_now
from census_assets.storage.registry import Registry

CARD_MARKDOWN = "model_card.md"
CARD_JSON = "model_card.json"


class NoModelCardError(RegistryError):
    """The version was published before model cards existed."""


def card_files(card: Mapping[str, Any]) -> dict[str, Any]:
    """The files Registry.publish writes with the version: the card as JSON and as Markdown, and
    the diagrams it names."""
    return {CARD_JSON: dict(card), CARD_MARKDOWN: render_markdown(card).encode(), **card_charts(card)}


def promotion_card_files(
    model: TrainedModel,
    version: str,
    run_id: str | None,
    holdout: Mapping[str, Any],
    cv_scores: list[float],
    drift: Mapping[str, Any] | None,
    evidence: Mapping[str, Any],
    ece_limit: float = ECE_LIMIT,
) -> dict[str, Any]:
    """card_files of the card production_model publishes: holdout_metrics' audit and training data
    facts, the drift against the previous champion and the promotion evidence."""
    card = pipeline_card(
        model=model,
        version=version,
        created=utc_now(),
        run_id=run_id,
        training_data={
            **holdout["training_data"],
            "kept_with_version": f"{Registry.prefix(version)}/{TRAINING_SNAPSHOT} (until census-assets forget)",
        },
        cv_scores=cv_scores,
        audit=holdout["audit"],
        drift=drift,
        promotion=evidence,
        ece_limit=ece_limit,
    )
    return card_files(card)


def _version(registry: Registry, version: str | None) -> str:
    chosen = version or registry.production()["version"]
    if f"{registry.prefix(chosen)}/{CARD_JSON}" not in registry.manifest(chosen):
        raise NoModelCardError(f"version {chosen} was made before cards: it has no model card")
    return chosen


def read_card(registry: Registry, version: str | None = None) -> dict:
    """A version's card (production's by default) as the JSON-able dict it was written from."""
    return registry.read_json(_version(registry, version), CARD_JSON)


def card_text(registry: Registry, version: str | None = None, as_json: bool = False) -> str:
    """What `census-assets card` prints: the stored Markdown, or the card as JSON."""
    chosen = _version(registry, version)
    if as_json:
        return json.dumps(registry.read_json(chosen, CARD_JSON), indent=1) + "\n"
    return registry.read_bytes(chosen, CARD_MARKDOWN).decode("utf-8")
