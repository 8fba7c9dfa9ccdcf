"""The audit checks' verdicts on holdout_metrics' audit: the blocking group gate, the fairness and
calibration warnings (the check bodies, called without a run)."""

import numpy as np
import pytest

from census_assets.checks.audit import calibration_result, fairness_result, group_gate_result
from census_assets.core.calibration import calibration_warning
from census_assets.core.fairness import group_gate
from census_assets.core.model_card import evaluation_section
from census_assets.resources.audit import AuditSettings

pytestmark = pytest.mark.audit


@pytest.fixture(scope="module")
def rows() -> dict:
    rng = np.random.default_rng(9)
    n = 2_000
    sex = rng.choice(["Female", "Male"], n)
    y = (rng.random(n) < 0.35).astype(int)
    champion = np.clip(0.2 + 0.55 * y + rng.normal(0, 0.2, n), 0.01, 0.99)
    # The challenger: the champion's scores, except wrong on a fifth of the women.
    flip = (sex == "Female") & (rng.random(n) < 0.2)
    challenger = np.where(flip, np.where(y == 1, 0.1, 0.9), champion)
    return {"y": y, "sex": sex, "champion": champion, "challenger": challenger}


def holdout(rows: dict, with_champion: bool) -> dict:
    groups = {"sex": rows["sex"]}
    gate = group_gate(rows["y"], rows["challenger"], rows["champion"], groups) if with_champion else None
    return {"audit": {
        "challenger": evaluation_section(rows["y"], rows["challenger"], groups, "2,000 rows"),
        "group_gate": gate.to_dict() if gate else None,
    }}


def test_group_gate_check_fails_naming_the_group(rows):
    result = group_gate_result(holdout(rows, with_champion=True))
    assert result.passed is False and result.severity.value == "ERROR"
    assert result.description.startswith("challenger is worse than the champion for 1 group(s): sex=Female")
    assert result.metadata["groups_worse"].value == "sex=Female"
    first = group_gate_result(holdout(rows, with_champion=False))
    assert first.passed and first.description == "no production model yet: nothing to compare"


def test_fairness_warning_on_its_limits(rows):
    audited = holdout(rows, with_champion=False)
    parity = audited["audit"]["challenger"]["between_groups"]["sex"]["demographic_parity_difference"]
    strict = fairness_result(audited, AuditSettings(max_demographic_parity_difference=parity / 2))
    assert strict.passed is False and strict.severity.value == "WARN"
    assert strict.description.startswith(f"sex: demographic-parity difference {parity:.4f} > {parity / 2:.4f}")
    wide = AuditSettings(max_demographic_parity_difference=1, max_equalized_odds_difference=1)
    loose = fairness_result(audited, wide)
    assert loose.passed and loose.metadata["demographic_parity_difference sex"].value == pytest.approx(parity)


def test_calibration_warning_on_its_limit(rows):
    audited = holdout(rows, with_champion=False)
    report = audited["audit"]["challenger"]["calibration"]
    ece = report["overall"]["ece"]
    strict = calibration_result(audited, AuditSettings(calibration_limit=ece / 2))
    assert strict.passed is False and strict.description == calibration_warning(report, ece / 2)
    loose = calibration_result(audited, AuditSettings(calibration_limit=ece * 2))
    assert loose.passed and loose.description == f"expected calibration error {ece:.4f} <= {ece * 2:.4f}"
