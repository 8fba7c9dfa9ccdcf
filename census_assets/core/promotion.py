"""Which model is which, and whether a challenger may replace the champion (no Dagster, no storage)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

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
    """The champion/challenger verdict; `reasons` always says why, whichever way it goes."""

    promote: bool
    reasons: tuple[str, ...]
    champion_version: str | None
    champion_cv_accuracy: float | None

    @property
    def message(self) -> str:
        return "; ".join(self.reasons)


def decide_promotion(
    cv_accuracy: float,
    holdout_accuracy: float,
    champion: Mapping | None,
    threshold: float,
    tolerance: float = 0.0,
) -> PromotionDecision:
    """Promote when held-out accuracy >= threshold and CV accuracy >= champion's - tolerance."""
    holdout_ok = holdout_accuracy >= threshold
    reasons = [
        f"held-out accuracy {holdout_accuracy:.4f} {'>=' if holdout_ok else '<'} threshold {threshold:.4f}"
    ]
    if champion is None:
        champion_cv, champion_ok = None, True
        reasons.append("no production model yet")
    else:
        champion_cv = float(champion["metrics"]["cv_accuracy"])
        champion_ok = cv_accuracy >= champion_cv - tolerance
        reasons.append(
            f"CV accuracy {cv_accuracy:.4f} {'>=' if champion_ok else '<'} champion "
            f"{champion['version']}'s {champion_cv:.4f} - tolerance {tolerance:.4f}"
        )
    return PromotionDecision(
        promote=holdout_ok and champion_ok,
        reasons=tuple(reasons),
        champion_version=champion["version"] if champion else None,
        champion_cv_accuracy=champion_cv,
    )
