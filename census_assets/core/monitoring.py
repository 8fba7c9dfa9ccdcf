"""Live performance judged, and what a decay sets off (no Dagster, no storage).

`judge_performance` is the rule of the `performance_within_limit` check; `plan_decay` is the
`census_performance_decay` sensor's decision, one retraining request per decay episode.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace

DEFAULT_MAX_ACCURACY_DROP = 0.03


@dataclass(frozen=True)
class PerformanceVerdict:
    passed: bool
    message: str


def judge_performance(
    accuracy: float,
    ci_high: float,
    reference_accuracy: float | None,
    threshold: float,
    max_drop: float = DEFAULT_MAX_ACCURACY_DROP,
) -> PerformanceVerdict:
    """A batch's realized accuracy fails iff even the upper bound of its 95% interval is below the
    threshold, or below the scoring model's own evaluation accuracy (`reference_accuracy`) minus
    `max_drop`. An interval that reaches the limit is not evidence of decay."""
    if math.isnan(ci_high):
        return PerformanceVerdict(True, "no labelled rows: nothing to judge")
    limits = [(threshold, f"the accuracy threshold {threshold:.4f}")]
    if reference_accuracy is not None:
        limit = reference_accuracy - max_drop
        limits.append(
            (
                limit,
                f"{limit:.4f} (the scoring model's evaluation accuracy {reference_accuracy:.4f} "
                f"- max drop {max_drop:.4f})",
            )
        )
    shown = f"accuracy {accuracy:.4f} (95% interval up to {ci_high:.4f})"
    below = [name for limit, name in limits if ci_high < limit]
    if below:
        return PerformanceVerdict(False, f"{shown} is below {' and '.join(below)}")
    return PerformanceVerdict(True, f"{shown} reaches {' and '.join(name for _, name in limits)}")


# ---- decay episodes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecayState:
    """The sensor's cursor. `boundary` is the production record the current period follows (an
    episode ends when production moves); `episode` the run key of the retraining it requested;
    `alerted` whether the not-promoted alert went out; `scanned` how far the sensor has read the
    check evaluations (an event log storage id)."""

    boundary: str | None = None
    episode: str | None = None
    alerted: bool = False
    scanned: int = 0

    def to_cursor(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_cursor(cls, cursor: str | None) -> DecayState:
        if not cursor:
            return cls()
        data = json.loads(cursor)
        return cls(
            boundary=data.get("boundary"),
            episode=data.get("episode"),
            alerted=bool(data.get("alerted")),
            scanned=int(data.get("scanned", 0)),
        )


@dataclass(frozen=True)
class DecayPlan:
    state: DecayState
    request: str | None = None  # the run key of a retraining to request
    alert: bool = False  # the episode's retraining ended without a promotion: say so, once


def plan_decay(
    state: DecayState,
    production_record: str | None,
    first_failure: str | None,
    retraining_finished: bool,
) -> DecayPlan:
    """One tick. `production_record`: the current production pointer's record (None: no model);
    `first_failure`: an id of the first failed performance check after that record was made, if any;
    `retraining_finished`: the episode's retraining run has ended (whatever its outcome).

    An episode starts at the first failure after the latest promotion and ends at the next
    promotion: one retraining request per episode; if that run ends and production has not moved,
    one alert, then nothing until production moves."""
    if production_record != state.boundary:
        state = DecayState(boundary=production_record, scanned=state.scanned)
    if production_record is None:
        return DecayPlan(state)
    if state.episode is None:
        if first_failure is None:
            return DecayPlan(state)
        key = f"decay:{production_record}:{first_failure}"
        return DecayPlan(replace(state, episode=key), request=key)
    if retraining_finished and not state.alerted:
        return DecayPlan(replace(state, alerted=True), alert=True)
    return DecayPlan(state)
