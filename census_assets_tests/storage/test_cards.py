"""Model cards in the registry: written with the version, read back verified, and a clear error for
a version made before cards (the CLI's exit 2)."""

import json
from pathlib import Path

import pytest

from census_assets.core.model_card import render_markdown
from census_assets.core.promotion import model_version
from census_assets.storage.cards import CARD_JSON, CARD_MARKDOWN, NoModelCardError, card_files, card_text, read_card
from census_assets.storage.errors import RegistryError
from census_assets.storage.objects import LocalObjectStore
from census_assets.storage.registry import Registry
from census_assets_tests.fixtures import RELEASE_797E3E6_STORAGE
from census_assets_tests.tiny_models import a_card, tiny_model

pytestmark = pytest.mark.audit



@pytest.fixture
def registry(tmp_path) -> Registry:
    return Registry(LocalObjectStore(tmp_path / "storage"))


def publish(registry: Registry, seed: int, with_card: bool) -> tuple[str, dict | None]:
    model = tiny_model(seed)
    version = model_version(model)
    card = a_card(version) if with_card else None
    registry.publish(version, model, card_files(card) if card else {})
    return version, card


def test_a_card_is_written_with_its_version_and_read_back(registry):
    version, card = publish(registry, seed=1, with_card=True)
    registry.promote(version, {}, run_id="run-1", expected_champion=None)
    manifest = registry.manifest(version)
    for name in (CARD_JSON, CARD_MARKDOWN, "reliability_sex.png"):
        assert f"models/{version}/{name}" in manifest
    assert card_text(registry) == render_markdown(card)  # production's by default
    assert card_text(registry, version) == render_markdown(card)
    assert json.loads(card_text(registry, version, as_json=True)) == card == read_card(registry)
    png = registry.read_bytes(version, "reliability_sex.png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_a_version_made_before_cards_says_so(registry):
    older, _ = publish(registry, seed=2, with_card=False)
    with pytest.raises(NoModelCardError, match=f"^version {older} was made before cards: it has no model card$"):
        card_text(registry, older)
    assert issubclass(NoModelCardError, RegistryError)  # the CLI's exit 2
    # The registry a release before cards wrote: its production version has no card either.
    released = Registry(LocalObjectStore(RELEASE_797E3E6_STORAGE))
    production = released.production()["version"]
    with pytest.raises(NoModelCardError, match=f"version {production} was made before cards"):
        card_text(released)


def test_a_changed_card_or_no_production_is_an_error(registry):
    with pytest.raises(RegistryError, match="no production model"):
        card_text(registry)
    with pytest.raises(RegistryError, match="is not a model version"):
        card_text(registry, "latest")
    version, _ = publish(registry, seed=3, with_card=True)
    path = Path(registry.store.root) / "models" / version / CARD_MARKDOWN
    path.write_text(path.read_text().replace("400 rows", "4000 rows"))
    with pytest.raises(RegistryError, match="does not match version .* manifest"):
        card_text(registry, version)
