"""Which model is which, and whether a challenger may replace the champion, judged on the same rows
(no Dagster, no storage)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from census_assets.core.evaluation import PairedComparison
from census_assets.core.training import TrainedModel


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


@dataclass(frozen=True)
class PromotionDecision:
    """The verdict of challenger against champion on the same evaluation rows, and its evidence."""

    promote: bool
    reasons: tuple[str, ...]
    champion_version: str | None  # the champion decided against: the promotion is conditional on it
    challenger_accuracy: float
    comparison: PairedComparison | None  # None when there is no champion yet

    @property
    def message(self) -> str:
        return "; ".join(self.reasons)

    def evidence(self) -> dict:
        """What the promotion record and the metadata carry."""
        return {
            "champion_version": self.champion_version,
            "challenger_accuracy": self.challenger_accuracy,
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "decision": self.message,
        }


def decide_promotion(
    challenger_accuracy: float,
    comparison: PairedComparison | None,
    champion_version: str | None,
    threshold: float,
    tolerance: float,
) -> PromotionDecision:
    """Promote iff the challenger's accuracy on the evaluation rows is at least `threshold` and,
    when there is a champion, the lower bound of the paired 95% interval of challenger - champion
    accuracy on those same rows is at least -`tolerance`."""
    accurate = challenger_accuracy >= threshold
    reasons = [f"accuracy {challenger_accuracy:.4f} {'>=' if accurate else '<'} threshold {threshold:.4f}"]
    if champion_version is None:
        not_worse = True
        reasons.append("no production model yet")
    elif comparison is None:
        raise ValueError(f"a champion ({champion_version}) is judged against on the same rows: comparison missing")
    else:
        not_worse = comparison.ci_low >= -tolerance
        reasons.append(
            f"challenger - champion {champion_version} accuracy on the same {comparison.rows} rows: "
            f"{comparison.difference:+.4f}, 95% interval [{comparison.ci_low:+.4f}, {comparison.ci_high:+.4f}]; "
            f"lower bound {'>=' if not_worse else '<'} -tolerance {-tolerance:+.4f}"
        )
    return PromotionDecision(
        promote=accurate and not_worse,
        reasons=tuple(reasons),
        champion_version=champion_version,
        challenger_accuracy=challenger_accuracy,
        comparison=comparison,
    )


def decide_from_evaluation(evaluation: Mapping[str, Any], threshold: float, tolerance: float) -> PromotionDecision:
    """The decision on what holdout_metrics measured: the challenger's accuracy on the evaluation
    rows and, when it was compared with a champion, the paired comparison on those rows."""
    champion = evaluation.get("champion")
    comparison = evaluation.get("comparison")
    return decide_promotion(
        evaluation["overall"]["accuracy"],
        PairedComparison(**comparison) if comparison else None,
        champion["version"] if champion else None,
        threshold,
        tolerance,
    )
