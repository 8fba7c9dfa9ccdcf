"""holdout_metrics' audit of two models on the same rows, checked piece by piece against the
functions it composes, called independently (no Dagster)."""

import json

import numpy as np
import pandas as pd
import pytest

from census_assets.core.audit import audit_same_rows
from census_assets.core.cleaning import clean
from census_assets.core.comparison import CHALLENGER, CHAMPION, evaluate_on_rows
from census_assets.core.explanations import explain, global_importance
from census_assets.core.fairness import group_gate
from census_assets.core.features import encode, split_target
from census_assets.core.model_card import evaluation_section
from census_assets.core.training import TrainedModel
from census_assets_tests.tiny_models import small_model

pytestmark = pytest.mark.audit


@pytest.fixture(scope="module")
def models(bundled_raw) -> dict[str, TrainedModel]:
    return {
        CHALLENGER: small_model(bundled_raw.head(2_000), seed=1),
        CHAMPION: small_model(bundled_raw.iloc[2_000:4_000], seed=2),
    }


@pytest.fixture(scope="module")
def cleaned(bundled_raw) -> pd.DataFrame:
    return clean(bundled_raw.iloc[10_000:12_500])


@pytest.mark.slow  # kept out of the fast tier: seconds of a Dagster run or a subprocess
def test_audit_is_the_composition_of_its_parts(models, cleaned):
    same_rows = evaluate_on_rows(cleaned, models[CHALLENGER], models[CHAMPION], ["sex", "race"])
    audit = audit_same_rows(same_rows, cleaned, models[CHALLENGER], "rows 10,000 on", min_group_rows=60)
    y, p = same_rows.y, same_rows.probabilities
    groups = {"sex": cleaned["sex"].to_numpy(), "race": cleaned["race"].to_numpy()}
    for role in (CHALLENGER, CHAMPION):
        assert audit[role] == evaluation_section(y, p[role], groups, "rows 10,000 on")
    expected_gate = group_gate(y, p[CHALLENGER], p[CHAMPION], groups, min_group_rows=60)
    assert audit["group_gate"]["message"] == expected_gate.message
    assert audit["group_gate"]["groups"] == expected_gate.table.to_dict(orient="records")
    # Importance on an even subset of the rows, from the challenger's own encoding of all of them.
    X_all, _ = split_target(encode(cleaned, models[CHALLENGER].vocabulary).frame)
    sample = np.unique(np.linspace(0, len(cleaned) - 1, 2_000).round().astype(int))
    assert audit["importance_rows"] == 2_000
    assert audit["importance"] == global_importance(explain(models[CHALLENGER], X_all[sample])).to_dict(
        orient="records"
    )
    json.dumps(audit, allow_nan=False)  # stored with holdout_metrics' output as JSON


def test_without_a_champion_there_is_no_gate(models, cleaned):
    rows = cleaned.head(300)
    same_rows = evaluate_on_rows(rows, models[CHALLENGER], None, ["sex"])
    audit = audit_same_rows(same_rows, rows, models[CHALLENGER], "300 rows")
    assert audit["champion"] is None and audit["group_gate"] is None
    assert audit["importance_rows"] == 300 and audit["challenger"]["overall"]["rows"] == 300
    with pytest.raises(ValueError, match="299 cleaned rows for an evaluation of 300 rows"):
        audit_same_rows(same_rows, rows.head(299), models[CHALLENGER], "300 rows")
