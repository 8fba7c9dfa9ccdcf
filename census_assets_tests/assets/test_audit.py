"""holdout_metrics' audit fields and metadata, and the card production_model publishes, from two
small models on the same rows (no run: the helpers are called directly)."""

import base64
import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from census_assets.assets.audit import audit_holdout, training_data_facts
from census_assets.core.audit import audit_same_rows
from census_assets.core.cleaning import clean
from census_assets.core.comparison import evaluate_on_rows
from census_assets.core.fingerprints import content_fingerprint
from census_assets.core.model_card import card_charts, render_markdown
from census_assets.core.promotion import model_version
from census_assets.storage.cards import CARD_JSON, CARD_MARKDOWN, card_text, promotion_card_files
from census_assets.storage.objects import LocalObjectStore
from census_assets.storage.registry import Registry
from census_assets_tests.tiny_models import small_model

# Whole holdout_metrics and production_model runs: kept out of the fast tier.
pytestmark = [pytest.mark.audit, pytest.mark.slow]


@pytest.fixture(scope="module")
def audited(bundled_raw):
    challenger = small_model(bundled_raw.head(1_500), seed=1)
    champion = small_model(bundled_raw.iloc[1_500:3_000], seed=2)
    cleaned = clean(bundled_raw.iloc[5_000:6_000])
    same_rows = evaluate_on_rows(cleaned, challenger, champion, ["sex", "race"])
    training = {"source": "bundled", "fingerprint": "sha256:00", "rows": 1_500, "snapshot": None}
    fields, metadata = audit_holdout(same_rows, cleaned, challenger, "1,000 rows", training, [0.8, 0.81], "run-9")
    return {"challenger": challenger, "same_rows": same_rows, "cleaned": cleaned, "fields": fields,
            "metadata": metadata}


def test_holdout_fields_are_the_audit_and_the_card_of_the_challenger(audited):
    fields = audited["fields"]
    assert fields["audit"] == audit_same_rows(audited["same_rows"], audited["cleaned"], audited["challenger"],
                                              "1,000 rows")
    card = fields["model_card"]
    assert card["version"] == model_version(audited["challenger"]) and card["run_id"] == "run-9"
    assert card["promotion"] is None and card["cv"]["scores"] == [0.8, 0.81]
    assert card["evaluation"] == fields["audit"]["challenger"]
    json.dumps(fields, allow_nan=False)  # holdout_metrics' output is stored as JSON


def test_holdout_metadata_shows_the_gate_rates_calibration_charts_and_card(audited):
    metadata, audit = audited["metadata"], audited["fields"]["audit"]
    assert metadata["group_gate"] == audit["group_gate"]["message"]
    assert metadata["expected_calibration_error"] == audit["challenger"]["calibration"]["overall"]["ece"]
    female = audit["challenger"]["calibration"]["groups"]["sex"]["Female"]["ece"]
    assert metadata["expected_calibration_error sex=Female"] == female
    sex = audit["challenger"]["between_groups"]["sex"]
    assert metadata["demographic_parity_difference sex"] == sex["demographic_parity_difference"]
    # The card as rendered, each diagram it names embedded (the UI has no folder to fetch them from).
    card = audited["fields"]["model_card"]
    embedded = render_markdown(card)
    for name, png in card_charts(card).items():
        assert f"]({name})" in embedded
        embedded = embedded.replace(f"]({name})", f"](data:image/png;base64,{base64.b64encode(png).decode()})")
    assert metadata["model_card"].value == embedded
    for name in ("reliability_diagram sex", "reliability_diagram race", "importance_by_contribution"):
        assert metadata[name].value.startswith("![") and "data:image/png;base64," in metadata[name].value
    rates = metadata["per_group_rates"].value
    overall = audit["challenger"]["groups"][0]
    first = rates.splitlines()[2]  # the row of all rows, below the header and its rule
    assert first.split("|")[1].strip() == "all rows" and int(first.split("|")[2]) == overall["rows"]
    assert f"{overall['accuracy']:.4f} [{overall['accuracy_low']:.4f}, {overall['accuracy_high']:.4f}]" in first


def test_training_data_facts_name_the_committed_snapshot(bundled_raw):
    instance = dg.DagsterInstance.ephemeral()
    raw = bundled_raw.head(100)
    fingerprint = content_fingerprint(pd.util.hash_pandas_object(raw, index=False).to_numpy().tobytes())
    assert training_data_facts(instance, raw, "bundled") == {
        "source": "bundled", "fingerprint": fingerprint, "rows": 100, "snapshot": None, "snapshot_run": None
    }
    instance.report_runless_asset_event(
        dg.AssetMaterialization("raw_census", metadata={"run_path": dg.MetadataValue.path("/s/runs/r1/raw.parquet")})
    )
    facts = training_data_facts(instance, raw, "bundled")
    assert facts["snapshot"] == "/s/runs/r1/raw.parquet"
    changed = raw.assign(age=raw["age"] + np.where(np.arange(100) == 7, 1, 0))
    assert training_data_facts(instance, changed, "bundled")["fingerprint"] != fingerprint


def test_the_promoted_card_carries_drift_and_evidence(audited, tmp_path):
    registry = Registry(LocalObjectStore(tmp_path / "storage"))
    challenger, holdout = audited["challenger"], audited["fields"]
    version = model_version(challenger)
    drift = {"reference_version": "fedcba9876543210", "psi": {"age": 0.01}, "unseen_share": {}, "rows": 10}
    evidence = {"decision": "promote: lower bound -0.004 >= -0.01"}
    files = promotion_card_files(challenger, version, "run-9", holdout, [0.8, 0.81], drift, evidence)
    registry.publish(version, challenger, files)
    card = registry.read_json(version, CARD_JSON)
    assert card["drift"] == drift
    assert card["training_data"] == {
        **holdout["training_data"],
        "kept_with_version": f"models/{version}/training_raw.parquet (until census-assets forget)",
    }
    assert card["promotion"] == {**evidence, "group_gate": holdout["audit"]["group_gate"]}
    assert card_text(registry, version) == registry.read_bytes(version, CARD_MARKDOWN).decode()
    evidence_table = "## Promotion evidence\n\n|  |  |\n|---|---|\n| decision | promote: lower bound"
    assert evidence_table in card_text(registry, version)
