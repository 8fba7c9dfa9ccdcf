"""PSI and unseen-category share (pure, no Dagster)."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from census_assets.core import drift
from census_assets.core.cleaning import clean
from census_assets.core.features import Vocabulary

pytestmark = pytest.mark.lifecycle


@pytest.fixture(scope="module")
def train(bundled_raw) -> pd.DataFrame:
    return bundled_raw


@pytest.fixture(scope="module")
def profile(bundled_clean) -> drift.ReferenceProfile:
    return drift.fit_reference(bundled_clean, Vocabulary.fit(bundled_clean))


def test_psi_known_value_and_identity():
    assert drift.psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    expected = -0.25 * math.log(0.5) + 0.25 * math.log(1.5)
    assert drift.psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
    # An empty bin is floored, not infinite.
    assert math.isfinite(drift.psi([1.0, 0.0], [0.0, 1.0]))


def test_profile_bins_on_training_quantiles_and_keeps_outliers():
    frame = pd.DataFrame({"x": np.arange(100), "c": ["a"] * 50 + ["b"] * 50})
    profile = drift.ReferenceProfile.fit(frame, ["x"], {"c": ["a", "b"]}, bins=4)
    assert profile.numeric_edges["x"] == [24.75, 49.5, 74.25]
    assert profile.numeric_shares["x"] == [0.25, 0.25, 0.25, 0.25]
    # Values far outside the training range land in the outer bins, not lost.
    shifted = frame.assign(x=frame["x"] + 1000)
    report = drift.compare(profile, shifted)
    assert report.psi["x"] > 5
    assert report.psi["c"] == 0.0


def test_zero_heavy_column_has_deduplicated_edges(profile):
    # capital_gain is 0 for ~92% of rows: the deciles collapse into one edge.
    assert profile.numeric_edges["capital_gain"] == [0.0]
    assert len(profile.numeric_shares["capital_gain"]) == 2


def test_unseen_category_share_and_psi():
    frame = pd.DataFrame({"c": ["a", "b"] * 50})
    profile = drift.ReferenceProfile.fit(frame, [], {"c": ["a", "b"]})
    relabelled = frame.assign(c=frame["c"].replace("b", "z"))
    report = drift.compare(profile, relabelled)
    assert report.unseen_share == {"c": 0.5}
    assert report.psi["c"] > 0.25


def test_unshifted_and_sampled_data_do_not_drift(train, profile):
    assert drift.compare(profile, clean(train)).max_psi == 0.0
    sample = drift.compare(profile, clean(train.sample(3000, random_state=0)))
    assert sample.max_psi < 0.1
    assert drift.judge(sample, 0.1, 0.25).level == "ok"


@pytest.mark.parametrize(
    "shift, feature",
    [
        (lambda df: df.assign(age=df["age"] + 15), "age"),
        (lambda df: df.assign(occupation=df["occupation"].replace(" Prof-specialty", " Professional")), "occupation"),
    ],
)
def test_shifted_data_fails(train, profile, shift, feature):
    report = drift.compare(profile, clean(shift(train)))
    verdict = drift.judge(report, 0.1, 0.25)
    assert verdict.level == "fail"
    assert report.worst_feature == feature
    assert feature in verdict.message


def test_occupation_relabel_counts_unseen(train, profile):
    relabelled = train.assign(occupation=train["occupation"].replace(" Prof-specialty", " Professional"))
    report = drift.compare(profile, clean(relabelled))
    share = (clean(train)["occupation"] == "Prof-specialty").mean()
    assert report.unseen_share["occupation"] == pytest.approx(share, abs=1e-3)
    assert report.unseen_share["workclass"] == 0.0


def test_judge_levels_and_bad_limits():
    report = drift.DriftReport(psi={"a": 0.05, "b": 0.15}, unseen_share={}, rows=10)
    assert drift.judge(report, 0.1, 0.25).level == "warn"
    assert drift.judge(report, 0.2, 0.25).level == "ok"
    assert drift.judge(report, 0.01, 0.1).level == "fail"
    with pytest.raises(ValueError, match="warn"):
        drift.judge(report, 0.3, 0.2)


def test_profile_json_round_trip(profile):
    again = drift.ReferenceProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert again == profile
