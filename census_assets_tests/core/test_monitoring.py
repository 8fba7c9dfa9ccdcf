"""The evaluation window, the live-performance rule and decay episodes (pure, no Dagster)."""

import math

import pytest

from census_assets.core.evaluation_window import LabelledBatch, plan_evaluation, split_window
from census_assets.core.monitoring import DecayState, judge_performance, plan_decay

pytestmark = pytest.mark.loop


def labelled(partition: str, committed_at: float, rows: int, fingerprint: str = "sha256:x") -> LabelledBatch:
    return LabelledBatch(partition, fingerprint, f"sha256:l@{fingerprint}", committed_at, rows, f"run-{partition}")


BATCHES = [labelled("a", 1, 3000), labelled("b", 4, 2000), labelled("c", 3, 2500), labelled("d", 2, 1000)]


def test_window_takes_the_newest_label_revisions_whole_until_it_has_enough_rows():
    split = split_window(BATCHES, window_rows=4000)
    assert [b.partition for b in split.window] == ["b", "c"]  # 2000 + 2500 >= 4000: c taken whole
    assert [b.partition for b in split.training] == ["d", "a"]
    assert (split.window_rows, split.training_rows) == (4500, 4000)
    assert split_window(reversed(BATCHES), window_rows=4000) == split  # listing order does not matter


def test_too_few_labelled_rows_all_go_to_the_window():
    split = split_window(BATCHES, window_rows=50_000)
    assert len(split.window) == 4 and split.training == ()
    assert split_window(BATCHES, window_rows=0).window == ()


def test_ties_in_commit_time_are_broken_by_partition():
    tied = [labelled("y", 5, 10), labelled("x", 5, 10)]
    assert [b.partition for b in split_window(tied, window_rows=10).window] == ["x"]


def test_batch_records_round_trip():
    assert LabelledBatch.from_dict(BATCHES[0].to_dict()) == BATCHES[0]


def test_window_batches_a_model_trained_on_are_left_out_and_counted():
    window = split_window(BATCHES, window_rows=4000).window
    plan = plan_evaluation(window, trained_on={("c", "sha256:x")}, min_rows=1500)
    assert plan.use_window and [b.partition for b in plan.batches] == ["b"]
    assert (plan.rows, plan.left_out_rows) == (2000, 2500)
    assert "2500 row(s) of 1 window batch(es) left out" in plan.describe()
    # The same partition with other content is another batch: not left out.
    assert plan_evaluation(window, trained_on={("c", "sha256:old")}, min_rows=1500).left_out == ()


def test_too_few_usable_window_rows_fall_back_to_the_held_out_table():
    window = split_window(BATCHES, window_rows=4000).window
    plan = plan_evaluation(window, trained_on={("b", "sha256:x")}, min_rows=3000)
    assert not plan.use_window and plan.rows == 2500
    assert "held-out table" in plan.describe() and "fewer than the minimum 3000" in plan.describe()
    empty = plan_evaluation((), trained_on=set(), min_rows=0)
    assert not empty.use_window and "no labelled batch" in empty.describe()


@pytest.mark.parametrize(
    "ci_high, reference, passed, says",
    [
        (0.84, 0.85, True, "reaches"),
        (0.81, 0.85, False, "0.8200 (the scoring model's evaluation accuracy 0.8500 - max drop 0.0300)"),
        (0.79, None, False, "below the accuracy threshold 0.8000"),
        (0.795, 0.85, False, "threshold 0.8000 and 0.8200"),
    ],
)
def test_performance_rule(ci_high, reference, passed, says):
    verdict = judge_performance(ci_high - 0.02, ci_high, reference, threshold=0.8, max_drop=0.03)
    assert verdict.passed is passed and says in verdict.message


def test_no_labelled_rows_pass():
    assert judge_performance(math.nan, math.nan, 0.85, threshold=0.8).passed


def test_one_retraining_request_per_decay_episode():
    state = DecayState()
    plan = plan_decay(state, "promo-1", first_failure=None, retraining_finished=False)
    assert plan.request is None and not plan.alert and plan.state.boundary == "promo-1"
    plan = plan_decay(plan.state, "promo-1", first_failure="17", retraining_finished=False)
    assert plan.request == "decay:promo-1:17"
    key = plan.request
    for _ in range(2):  # more failures, the run still going: nothing more
        plan = plan_decay(plan.state, "promo-1", first_failure="17", retraining_finished=False)
        assert plan.request is None and not plan.alert
    plan = plan_decay(plan.state, "promo-1", first_failure="17", retraining_finished=True)
    assert plan.alert and plan.request is None  # it ended and production did not move: alert, once
    plan = plan_decay(DecayState.from_cursor(plan.state.to_cursor()), "promo-1", "17", retraining_finished=True)
    assert not plan.alert and plan.request is None and plan.state.episode == key
    # A promotion ends the episode; the next failure after it starts another.
    plan = plan_decay(plan.state, "promo-2", first_failure=None, retraining_finished=True)
    assert plan.request is None and plan.state == DecayState(boundary="promo-2")
    plan = plan_decay(plan.state, "promo-2", first_failure="40", retraining_finished=False)
    assert plan.request == "decay:promo-2:40"


def test_no_production_model_no_episode():
    assert plan_decay(DecayState(), None, first_failure="3", retraining_finished=False).request is None
