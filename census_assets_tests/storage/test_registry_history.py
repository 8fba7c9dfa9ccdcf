"""One tolerant reader of the promotion history: records from before the chain, chained records
(after the compare-and-swap), and records with extra evidence fields, on the storage made by
release 797e3e6 (census_assets_tests/fixtures/release_797e3e6)."""

import json
import shutil
from pathlib import Path

import pytest

from census_assets import cli
from census_assets.storage.objects import LocalObjectStore
from census_assets.storage.registry import Registry
from census_assets_tests.fixtures import RELEASE_797E3E6_STORAGE

pytestmark = pytest.mark.ops  # `census-assets history` is an operator's tool (issue: operations)

RELEASE_HISTORY = [
    ("promote", "c6074c565a7ed478"),
    ("promote", "fff3ddf502cafbe5"),
    ("rollback", "c6074c565a7ed478"),
]


@pytest.fixture
def storage(tmp_path) -> Path:
    return Path(shutil.copytree(RELEASE_797E3E6_STORAGE, tmp_path / "storage"))


def unchain(storage: Path, names: list[str]) -> None:
    """Rewrite records (and production.json when it holds one of them) in the shape written before
    records named their predecessor."""
    pointer = json.loads((storage / "production.json").read_text())
    for name in names:
        path = storage / name
        record = json.loads(path.read_text())
        for key in ("previous_record", "record"):
            record.pop(key, None)
        path.write_text(json.dumps(record))
        if pointer.get("record") == name:
            (storage / "production.json").write_text(json.dumps(record))


def actions(registry: Registry) -> list[tuple[str, str]]:
    return [(record["action"], record["version"]) for record in registry.history()]


def records(storage: Path) -> list[str]:
    return sorted(f"promotions/{path.name}" for path in (storage / "promotions").iterdir())


def test_the_release_history_reads_as_it_was_written(storage):
    assert actions(Registry(LocalObjectStore(storage))) == RELEASE_HISTORY


def test_history_written_before_the_chain_is_read_from_the_folder(storage):
    unchain(storage, records(storage))
    assert actions(Registry(LocalObjectStore(storage))) == RELEASE_HISTORY


def test_a_chain_begun_on_top_of_older_records_shows_them_too(storage):
    unchain(storage, records(storage)[:2])  # the rollback was chained, its predecessor was not named
    pointer = json.loads((storage / "production.json").read_text())
    pointer["previous_record"] = None
    rollback = storage / pointer["record"]
    rollback.write_text(json.dumps(pointer))
    (storage / "production.json").write_text(json.dumps(pointer))
    assert actions(Registry(LocalObjectStore(storage))) == RELEASE_HISTORY


def test_records_with_evidence_fields_and_new_promotions_extend_the_history(storage, capsys):
    registry = Registry(LocalObjectStore(storage))
    registry.promote(
        "fff3ddf502cafbe5",
        {"holdout_accuracy": 0.81},
        run_id="run-3",
        expected_champion="c6074c565a7ed478",
        evidence={"rows": "evaluation window", "n": 5000, "difference_ci": [-0.004, 0.011]},
    )
    assert actions(registry) == [*RELEASE_HISTORY, ("promote", "fff3ddf502cafbe5")]
    assert registry.history()[-1]["evidence"]["n"] == 5000
    assert cli.main(["history", "--storage", str(storage)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5 and out[-1] == "production: fff3ddf502cafbe5" and "cv=nan" in out[-2]
