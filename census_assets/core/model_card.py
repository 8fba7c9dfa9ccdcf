"""A model card: what a model is, what made it, how it does overall, per group and in calibration,
what drives its scores, how its data moved, why it was promoted, and what people wrote about its
use. Built from plain inputs as a JSON-able dict, rendered as Markdown (no Dagster, no storage).

The human-written parts (intended use, out-of-scope uses, limitations, owners) come from the
template kept in the package (census_assets/model_card_template.md), which the team edits; a
section holding nothing but comments is empty, and the card says so at its top.
"""

from __future__ import annotations

import math
import platform
import re
import subprocess
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from census_assets.core.calibration import (
    ECE_LIMIT,
    calibration_report,
    calibration_warning,
    diagram_curves,
    reliability_diagram_png,
)
from census_assets.core.evaluation import binary_metrics
from census_assets.core.fairness import disparities, group_metrics
from census_assets.core.labels import DECISION_THRESHOLD
from census_assets.core.reporting import feature_importance

if TYPE_CHECKING:
    import lightgbm as lgb

    from census_assets.core.training import TrainedModel

CARD_FORMAT = 1
TEMPLATE = Path(__file__).resolve().parent.parent / "model_card_template.md"
HUMAN_SECTIONS = ("Intended use", "Out-of-scope uses", "Limitations", "Owners")
# The distributions whose versions can change what a model is or how it scores.
DISTRIBUTIONS = ("census_assets", "lightgbm", "scikit-learn", "pandas", "numpy", "dagster")
# The training parameters a card lists (LightGBM's names, as a loaded model reports them): what
# shapes the trees, and the thread count and determinism settings a rebuild must repeat.
KEY_PARAMETERS = (
    "objective", "boosting", "num_iterations", "learning_rate", "num_leaves", "max_depth",
    "min_data_in_leaf", "min_sum_hessian_in_leaf", "lambda_l1", "lambda_l2", "min_gain_to_split",
    "feature_fraction", "bagging_fraction", "bagging_freq", "max_bin", "bin_construct_sample_cnt",
    "seed", "data_random_seed", "bagging_seed", "feature_fraction_seed", "deterministic",
    "force_row_wise", "force_col_wise", "num_threads",
)
TOP_FEATURES = 10


def human_parts(template: str) -> dict[str, str]:
    """The text under each of HUMAN_SECTIONS' `## ` headings, comments removed ("" when empty)."""
    uncommented = re.sub(r"<!--.*?-->", "", template, flags=re.DOTALL)
    parts = {name: [] for name in HUMAN_SECTIONS}
    by_heading = {name.lower(): name for name in HUMAN_SECTIONS}
    current = None
    for line in uncommented.splitlines():
        if line.startswith("## "):
            current = by_heading.get(line[3:].strip().lower())
        elif line.startswith("# "):
            current = None
        elif current is not None:
            parts[current].append(line)
    return {name: "\n".join(lines).strip() for name, lines in parts.items()}


def read_human_parts(path: Path = TEMPLATE) -> dict[str, str]:
    return human_parts(path.read_text(encoding="utf-8"))


def empty_human_parts(parts: Mapping[str, str]) -> list[str]:
    return [name for name in HUMAN_SECTIONS if not parts.get(name)]


def human_parts_refusal(parts: Mapping[str, str]) -> str | None:
    """Why promotion must wait when the human-written parts are required and some are empty."""
    missing = empty_human_parts(parts)
    if not missing:
        return None
    return (
        f"the model card's human-written parts are empty: {', '.join(missing)}; write them in "
        "census_assets/model_card_template.md (the setting that requires them is on)"
    )


def code_versions(repository: Path | None = TEMPLATE.parent.parent) -> dict[str, str | None]:
    """Python's version, each of DISTRIBUTIONS' installed version (None when not installed), and
    the git commit of `repository` when it is a git checkout (None otherwise)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["git_commit"] = git_commit(repository) if repository is not None else None
    return versions


def git_commit(repository: Path) -> str | None:
    """HEAD's commit of the checkout holding `repository`; None without git or a checkout."""
    if not (repository / ".git").exists():
        return None  # an installed wheel: the directory above the package is not this project
    try:
        done = subprocess.run(
            ["git", "-C", str(repository), "rev-parse", "--verify", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", commit) else None


def model_parameters(booster: lgb.Booster) -> dict[str, Any]:
    """KEY_PARAMETERS as the model records them (a model read back from its text has them all)."""
    return {name: _plain(booster.params[name]) for name in KEY_PARAMETERS if name in booster.params}


def evaluation_section(
    y_true: Sequence[int],
    probability: Sequence[float],
    groups: Mapping[str, Sequence],
    rows_from: str,
    threshold: float = DECISION_THRESHOLD,
) -> dict:
    """One model on its evaluation rows: overall metrics (accuracy with its 95% interval, ROC AUC,
    log loss), every rate per group with its interval, the between-group differences, and
    calibration overall and per group."""
    rates = group_metrics(y_true, probability, groups, threshold)
    return _plain({
        "rows_from": rows_from,
        "threshold": threshold,
        "overall": binary_metrics(y_true, probability, threshold),
        "groups": rates.to_dict(orient="records"),
        "between_groups": disparities(rates),
        "calibration": calibration_report(y_true, probability, groups),
    })


def build_card(
    *,
    version: str,
    created: str,
    run_id: str | None,
    training_data: Mapping[str, Any],
    code: Mapping[str, Any],
    parameters: Mapping[str, Any],
    cv_scores: Sequence[float],
    evaluation: Mapping[str, Any],
    top_features: pd.DataFrame,
    drift: Mapping[str, Any] | None,
    promotion: Mapping[str, Any] | None,
    human: Mapping[str, str],
    gain_importance: pd.DataFrame | None = None,
    ece_limit: float = ECE_LIMIT,
) -> dict:
    """The card as a JSON-able dict (NaN as None).

    training_data: source, fingerprint, rows, snapshot (where the raw rows it read are kept).
    evaluation: evaluation_section(). top_features: explanations.global_importance().
    drift: the drift asset's result against the previous champion (None for a first model).
    promotion: the evidence recorded with the promotion (None when not promoted).
    The card names its reliability diagrams (card_charts draws them): one per group column, each
    with all rows and that column's groups.
    """
    scores = [float(score) for score in cv_scores]
    missing = empty_human_parts(human)
    warning = calibration_warning(evaluation["calibration"], ece_limit)
    return _plain({
        "card_format": CARD_FORMAT,
        "version": version,
        "created": created,
        "run_id": run_id,
        "training_data": dict(training_data),
        "code": dict(code),
        "parameters": dict(parameters),
        "cv": {
            "folds": len(scores),
            "scores": scores,
            "mean": float(np.mean(scores)) if scores else None,
            "std": float(np.std(scores)) if scores else None,
        },
        "evaluation": dict(evaluation),
        "calibration_limit": ece_limit,
        "calibration_warning": warning,
        "reliability_diagrams": {
            column: reliability_file(column) for column in evaluation["calibration"]["groups"]
        } or {"all rows": reliability_file(None)},
        "top_features": top_features.head(TOP_FEATURES).to_dict(orient="records"),
        "gain_importance": None if gain_importance is None else gain_importance.head(TOP_FEATURES).to_dict(
            orient="records"
        ),
        "drift": None if drift is None else dict(drift),
        "promotion": None if promotion is None else dict(promotion),
        "human": {name: human.get(name, "") for name in HUMAN_SECTIONS},
        "human_missing": missing,
    })


def pipeline_card(
    *,
    model: TrainedModel,
    version: str,
    created: str,
    run_id: str | None,
    training_data: Mapping[str, Any],
    cv_scores: Sequence[float],
    audit: Mapping[str, Any],
    drift: Mapping[str, Any] | None = None,
    promotion: Mapping[str, Any] | None = None,
    human: Mapping[str, str] | None = None,
    ece_limit: float = ECE_LIMIT,
) -> dict:
    """The card of a model the pipeline trained and holdout_metrics audited (core.audit): the code
    versions of this environment, the model's recorded parameters and gain importance, the
    template's human parts (unless given), the group gate with the promotion evidence."""
    gate = audit.get("group_gate")
    return build_card(
        version=version,
        created=created,
        run_id=run_id,
        training_data=training_data,
        code=code_versions(),
        parameters=model_parameters(model.booster),
        cv_scores=cv_scores,
        evaluation=audit["challenger"],
        top_features=pd.DataFrame(audit["importance"]),
        drift=drift if drift and drift.get("reference_version") else None,
        promotion=None if promotion is None else {**promotion, **({"group_gate": gate} if gate else {})},
        human=read_human_parts() if human is None else human,
        gain_importance=feature_importance(model.booster),
        ece_limit=ece_limit,
    )


def reliability_file(column: str | None) -> str:
    """The file name of the reliability diagram of a group column (None: all rows only)."""
    return f"reliability_{column}.png" if column else "reliability.png"


def card_charts(card: Mapping[str, Any]) -> dict[str, bytes]:
    """The PNG files the card names, drawn from its calibration figures."""
    report = card["evaluation"]["calibration"]
    return {
        name: reliability_diagram_png(
            diagram_curves(report, column if column in report["groups"] else None),
            title=f"model {card['version']}: reliability" + (f" by {column}" if column in report["groups"] else ""),
        )
        for column, name in card["reliability_diagrams"].items()
    }


def _plain(value: Any) -> Any:
    """JSON-able: numpy scalars as Python numbers, NaN and infinities as None, tuples as lists."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(item) for item in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    return value


# Markdown

def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _interval(record: Mapping, name: str) -> str:
    value = record.get(name)
    low, high = record.get(f"{name}_low", record.get(f"{name}_ci_low")), record.get(
        f"{name}_high", record.get(f"{name}_ci_high")
    )
    if value is None:
        return "–"
    return f"{value:.4f} [{_number(low)}, {_number(high)}]"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return _number(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(header) for header in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _facts(mapping: Mapping[str, Any]) -> str:
    """Scalars as a two-column table; lists of records as their own tables below it."""
    scalars = [(key, value) for key, value in mapping.items() if not isinstance(value, (Mapping, list))]
    blocks = [_table(["", ""], scalars)] if scalars else []
    for key, value in mapping.items():
        if isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
            headers = list(value[0])
            blocks.append(f"{key}:\n\n" + _table(headers, [[item.get(h) for h in headers] for item in value]))
        elif isinstance(value, list):
            blocks.append(f"{key}: " + (", ".join(_number(item) for item in value) or "none"))
        elif isinstance(value, Mapping):
            blocks.append(f"{key}:\n\n" + _facts(value))
    return "\n\n".join(blocks)


def _summary(card: Mapping[str, Any]) -> list[str]:
    run = card["run_id"] or "(none recorded)"
    lines = [f"# Model card: census never-married classifier, version {card['version']}", "",
             f"Made {card['created']} by run {run}; card format {card['card_format']}."]
    if card["human_missing"]:
        lines += ["", f"**The human-written parts are empty: {', '.join(card['human_missing'])}.** Nobody has "
                      "written yet what this model is for and where it must not be used: fill them in "
                      "census_assets/model_card_template.md."]
    if card["calibration_warning"]:
        lines += ["", f"**Calibration:** {card['calibration_warning']}."]
    return lines


def _provenance(card: Mapping[str, Any]) -> list[str]:
    cv = card["cv"]
    lines = ["", "## Training data", "", _facts(card["training_data"]),
             "", "## Code and environment", "", _facts(card["code"]),
             "", "## Parameters", "", _facts(card["parameters"]) if card["parameters"] else "(none recorded)",
             "", "## Cross-validation", ""]
    if not cv["folds"]:
        return [*lines, "(no fold scores recorded)"]
    return [*lines, f"{cv['folds']} folds: mean accuracy {cv['mean']:.4f} (std {cv['std']:.4f}).", "",
            _table(["fold", "accuracy"], list(enumerate(cv["scores"], start=1)))]


def _evaluation(card: Mapping[str, Any]) -> list[str]:
    evaluation = card["evaluation"]
    overall, calibration = evaluation["overall"], evaluation["calibration"]["overall"]
    lines = ["", "## Evaluation", "",
             f"On {evaluation['rows_from']}: {int(overall['rows'])} rows, decision threshold "
             f"{evaluation['threshold']}. Intervals are 95% (Wilson).", "",
             _table(["metric", "value"], [
                 ["accuracy [95% interval]", _interval(overall, "accuracy")],
                 ["ROC AUC", overall["roc_auc"]],
                 ["log loss", overall["log_loss"]],
                 ["Brier score", calibration["brier"]],
                 ["expected calibration error", calibration["ece"]],
             ]),
             "", "## Per group", "",
             _table(["group", "rows", "accuracy", "true-positive rate", "false-positive rate", "selection rate"], [
                 [f"{r['column']}={r['group']}" if r["column"] != "all" else "all rows", r["rows"],
                  _interval(r, "accuracy"), _interval(r, "true_positive_rate"),
                  _interval(r, "false_positive_rate"), _interval(r, "selection_rate")]
                 for r in evaluation["groups"]
             ])]
    if evaluation["between_groups"]:
        lines += ["", "Largest differences between the groups of a column:", "",
                  _table(["column", "demographic-parity difference", "between", "equalised-odds difference",
                          "between"], [
                      [column, d["demographic_parity_difference"], " and ".join(d["demographic_parity_between"]),
                       d["equalized_odds_difference"], " and ".join(d["equalized_odds_between"])]
                      for column, d in evaluation["between_groups"].items()
                  ])]
    return lines


def _calibration(card: Mapping[str, Any]) -> list[str]:
    report = card["evaluation"]["calibration"]
    rows = [["all rows", report["overall"]["rows"], report["overall"]["brier"], report["overall"]["ece"]]]
    rows += [[f"{column}={value}", result["rows"], result["brier"], result["ece"]]
             for column, values in report["groups"].items() for value, result in values.items()]
    lines = ["", "## Calibration", "",
             f"Expected calibration error over 10 equal-width bins (limit {card['calibration_limit']}).", "",
             _table(["group", "rows", "Brier score", "expected calibration error"], rows), ""]
    if card["calibration_warning"]:
        lines.append(card["calibration_warning"] + ".")
    else:
        lines.append("Within the limit: a score can be read as the probability of the positive class for rows "
                     "like the evaluation rows.")
    for column, name in card["reliability_diagrams"].items():
        lines += ["", f"![reliability diagram, {column}]({name})"]
    return lines


def _features(card: Mapping[str, Any]) -> list[str]:
    lines = ["", "## Top features", "",
             "Mean absolute contribution (LightGBM's exact tree SHAP values, in log-odds; the one-hot "
             "features of a column summed):", "",
             _table(["rank", "column", "mean |contribution|", "share"],
                    [[f["rank"], f["column"], f["mean_abs_contribution"], f["share"]] for f in card["top_features"]])]
    if card["gain_importance"]:
        lines += ["", "LightGBM's gain importance, per encoded feature:", "",
                  _table(["rank", "feature", "share of gain"],
                         [[f["rank"], f["feature"], f["gain_share"]] for f in card["gain_importance"]])]
    return lines


def _drift_and_promotion(card: Mapping[str, Any]) -> list[str]:
    lines = ["", "## Drift against the previous champion", ""]
    drift = card["drift"]
    if not drift or not drift.get("reference_version"):
        lines.append("No previous champion: nothing to compare with.")
    else:
        psi = sorted(drift.get("psi", {}).items(), key=lambda item: -(item[1] or 0))
        unseen = drift.get("unseen_share", {})
        lines += [f"Training data against version {drift['reference_version']}'s, population stability index:",
                  "", _table(["feature", "PSI", "unseen share"], [[name, v, unseen.get(name, 0.0)] for name, v in psi])]
    lines += ["", "## Promotion evidence", "", _facts(card["promotion"]) if card["promotion"] else "Not promoted."]
    return lines


def render_markdown(card: Mapping[str, Any]) -> str:
    """The card as a Markdown document."""
    lines = [*_summary(card), *_provenance(card), *_evaluation(card), *_calibration(card), *_features(card),
             *_drift_and_promotion(card)]
    for name in HUMAN_SECTIONS:
        text = card["human"][name] or "_Empty: not written yet (census_assets/model_card_template.md)._"
        lines += ["", f"## {name}", "", text]
    return "\n".join(lines) + "\n"
