"""The model card's content: every number checked against an independent computation, the
human-written parts read from the template, and the Markdown and JSON forms."""

import json
import platform
import statistics
import subprocess

import lightgbm
import numpy as np
import pandas as pd
import pytest
import sklearn
from scipy.stats import binomtest
from sklearn.calibration import calibration_curve
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

from census_assets.core.explanations import INPUT_COLUMNS, Contributions, global_importance
from census_assets.core.model_card import (
    HUMAN_SECTIONS,
    TEMPLATE,
    build_card,
    card_charts,
    code_versions,
    empty_human_parts,
    evaluation_section,
    human_parts,
    human_parts_refusal,
    model_parameters,
    pipeline_card,
    read_human_parts,
    render_markdown,
)
from census_assets.core.reporting import feature_importance
from census_assets_tests.tiny_models import tiny_model

pytestmark = pytest.mark.audit

FILLED = """# Model card
Intro text is not a section.

## Intended use
Research on the 1994 census table.
<!-- a comment is not text -->

## Out-of-scope uses
Any decision about a person.

## Limitations
<!-- nothing but a comment -->

## Owners
The census team.

## Something else
Ignored.
"""


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    rng = np.random.default_rng(21)
    n = 1_200
    frame = pd.DataFrame({
        "sex": rng.choice(["Female", "Male"], size=n),
        "race": rng.choice(["White", "Black", "Amer-Indian-Eskimo"], size=n, p=[0.8, 0.17, 0.03]),
        "y": (rng.random(n) < 0.35).astype(int),
    })
    frame["probability"] = np.clip(0.2 + 0.55 * frame["y"] + rng.normal(0, 0.22, n), 0.001, 0.999)
    return frame


@pytest.fixture(scope="module")
def contributions() -> Contributions:
    rng = np.random.default_rng(4)
    return Contributions(rng.normal(0, 1, (500, len(INPUT_COLUMNS))) * np.arange(1, 12), np.full(500, -0.8))


@pytest.fixture(scope="module")
def card(rows, contributions) -> dict:
    evaluation = evaluation_section(
        rows["y"], rows["probability"], {c: rows[c] for c in ("sex", "race")}, rows_from="the evaluation window"
    )
    return build_card(
        version="0123456789abcdef",
        created="2026-12-04T10:00:00Z",
        run_id="run-1",
        training_data={"source": "bundled", "fingerprint": "f" * 16, "rows": 32_537, "snapshot": "raw/abc.parquet"},
        code=code_versions(),
        parameters={"num_iterations": 100, "num_threads": 1, "deterministic": False},
        cv_scores=[0.83, 0.84, 0.835, 0.829, 0.841],
        evaluation=evaluation,
        top_features=global_importance(contributions),
        drift={"reference_version": "fedcba9876543210", "psi": {"age": 0.02, "sex": 0.3}, "unseen_share": {}},
        promotion={"challenger_accuracy": 0.84, "champion_accuracy": 0.83, "left_out": [], "group_gate": [
            {"group": "sex=Female", "difference": -0.01, "high": 0.002, "verdict": "ok"}]},
        human=read_human_parts(),
    )


def test_the_templates_sections_are_read_without_comments():
    parts = human_parts(FILLED)
    assert parts == {
        "Intended use": "Research on the 1994 census table.",
        "Out-of-scope uses": "Any decision about a person.",
        "Limitations": "",
        "Owners": "The census team.",
    }
    assert empty_human_parts(parts) == ["Limitations"]
    assert human_parts_refusal(parts).startswith("the model card's human-written parts are empty: Limitations; ")
    assert human_parts_refusal({**parts, "Limitations": "Small groups."}) is None
    # The template kept in the repository has the four sections, still to be written.
    text = TEMPLATE.read_text()
    assert all(f"## {name}\n" in text for name in HUMAN_SECTIONS)
    assert empty_human_parts(read_human_parts()) == list(HUMAN_SECTIONS)


def test_code_versions_are_the_installed_ones(tmp_path):
    versions = code_versions()
    assert versions["python"] == platform.python_version()
    assert versions["lightgbm"] == lightgbm.__version__ and versions["pandas"] == pd.__version__
    assert versions["scikit-learn"] == sklearn.__version__ and versions["numpy"] == np.__version__
    assert versions["census_assets"] is not None and versions["dagster"] is not None
    commit = versions["git_commit"]
    assert commit is not None and len(commit) == 40
    root = TEMPLATE.parent.parent
    assert subprocess.run(["git", "-C", str(root), "cat-file", "-e", commit], check=False).returncode == 0
    assert code_versions(tmp_path)["git_commit"] is None  # not a checkout


def test_model_parameters_are_what_the_model_records():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    trained = lightgbm.train({"objective": "binary", "num_threads": 1, "seed": 3, "verbose": -1},
                             lightgbm.Dataset(X, (X[:, 0] > 0).astype(int)), num_boost_round=5)
    loaded = lightgbm.Booster(model_str=trained.model_to_string())
    parameters = model_parameters(loaded)
    assert parameters["num_threads"] == 1 and parameters["seed"] == 3 and parameters["num_iterations"] == 5
    assert parameters["deterministic"] is False and parameters["objective"] == "binary"


def test_every_evaluation_number_is_an_independent_computation(card, rows):
    evaluation = card["evaluation"]
    y, p = rows["y"].to_numpy(), rows["probability"].to_numpy()
    predicted = (p >= 0.5).astype(int)
    overall = evaluation["overall"]
    assert overall["rows"] == len(rows)
    assert overall["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    interval = binomtest(int((y == predicted).sum()), len(y)).proportion_ci(method="wilson")
    assert (overall["accuracy_ci_low"], overall["accuracy_ci_high"]) == pytest.approx((interval.low, interval.high))
    assert overall["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert overall["log_loss"] == pytest.approx(log_loss(y, p))
    calibration = evaluation["calibration"]["overall"]
    assert calibration["brier"] == pytest.approx(brier_score_loss(y, p))
    observed, mean_predicted = calibration_curve(y, p, n_bins=10)
    counts = np.array([b["rows"] for b in calibration["bins"] if b["rows"]])
    assert calibration["ece"] == pytest.approx(np.sum(counts * np.abs(observed - mean_predicted)) / len(y))

    frame = rows.assign(predicted=predicted, right=(predicted == y))
    by_group = {(r["column"], r["group"]): r for r in evaluation["groups"]}
    assert set(by_group) == {("all", "all"), ("sex", "Female"), ("sex", "Male"), ("race", "White"),
                             ("race", "Black"), ("race", "Amer-Indian-Eskimo")}
    for column in ("sex", "race"):
        for group, part in frame.groupby(column):
            record = by_group[(column, group)]
            assert record["rows"] == len(part)
            assert record["accuracy"] == pytest.approx(part["right"].mean())
            assert record["true_positive_rate"] == pytest.approx(part.loc[part["y"] == 1, "predicted"].mean())
            assert record["false_positive_rate"] == pytest.approx(part.loc[part["y"] == 0, "predicted"].mean())
            assert record["selection_rate"] == pytest.approx(part["predicted"].mean())
            hits = binomtest(int(part["right"].sum()), len(part)).proportion_ci(method="wilson")
            assert (record["accuracy_low"], record["accuracy_high"]) == pytest.approx((hits.low, hits.high))
            brier = evaluation["calibration"]["groups"][column][group]["brier"]
            assert brier == pytest.approx(brier_score_loss(part["y"], part["probability"]))
        selection = frame.groupby(column)["predicted"].mean()
        between = evaluation["between_groups"][column]
        assert between["demographic_parity_difference"] == pytest.approx(selection.max() - selection.min())


def test_provenance_cv_and_features_are_carried_exactly(card, contributions):
    assert card["version"] == "0123456789abcdef" and card["run_id"] == "run-1"
    assert card["training_data"]["rows"] == 32_537 and card["training_data"]["snapshot"] == "raw/abc.parquet"
    scores = [0.83, 0.84, 0.835, 0.829, 0.841]
    assert card["cv"] == {"folds": 5, "scores": scores, "mean": pytest.approx(statistics.fmean(scores)),
                          "std": pytest.approx(statistics.pstdev(scores))}
    top = card["top_features"]
    assert len(top) == 10 and top[0]["column"] == INPUT_COLUMNS[-1]  # scaled most (x 11)
    means = np.abs(contributions.by_column).mean(axis=0)
    for feature in top:
        assert feature["mean_abs_contribution"] == pytest.approx(means[INPUT_COLUMNS.index(feature["column"])])


def test_card_is_json_and_says_the_human_parts_are_empty(card):
    text = json.dumps(card, allow_nan=False)  # NaN would not be JSON
    assert json.loads(text) == card
    assert card["human_missing"] == list(HUMAN_SECTIONS)
    markdown = render_markdown(card)
    assert "**The human-written parts are empty: Intended use, Out-of-scope uses, Limitations, Owners.**" in markdown
    assert markdown.count("_Empty: not written yet") == 4


def test_markdown_shows_the_numbers_of_the_card(card):
    markdown = render_markdown(card)
    overall = card["evaluation"]["overall"]
    assert markdown.startswith("# Model card: census never-married classifier, version 0123456789abcdef\n")
    assert (f"| accuracy [95% interval] | {overall['accuracy']:.4f} [{overall['accuracy_ci_low']:.4f}, "
            f"{overall['accuracy_ci_high']:.4f}] |") in markdown
    female = next(r for r in card["evaluation"]["groups"] if r["group"] == "Female")
    assert f"| sex=Female | {female['rows']} | {female['accuracy']:.4f} [" in markdown
    assert f"{card['cv']['folds']} folds: mean accuracy {card['cv']['mean']:.4f}" in markdown
    assert "| sex | 0.3000 | 0.0000 |" in markdown  # drift, largest PSI first
    assert "| sex=Female | -0.0100 | 0.0020 | ok |" in markdown  # promotion evidence table
    assert "\nleft_out: none\n" in markdown
    assert "![reliability diagram, sex](reliability_sex.png)" in markdown
    assert "![reliability diagram, race](reliability_race.png)" in markdown
    assert "| rank | column | mean \\|contribution\\| | share |" in markdown  # a bar in a cell is escaped
    for section in ("Training data", "Code and environment", "Parameters", "Cross-validation", "Evaluation",
                    "Per group", "Calibration", "Top features", "Drift against the previous champion",
                    "Promotion evidence", *HUMAN_SECTIONS):
        assert f"\n## {section}\n" in markdown


def test_filled_human_parts_and_a_calibration_warning(card):
    filled = {**card, "human": human_parts(FILLED), "human_missing": empty_human_parts(human_parts(FILLED))}
    markdown = render_markdown(filled)
    assert "## Intended use\n\nResearch on the 1994 census table.\n" in markdown
    assert "human-written parts are empty: Limitations.**" in markdown
    ece = card["evaluation"]["calibration"]["overall"]["ece"]
    strict = build_card(**{**_inputs(card), "ece_limit": ece / 2})
    assert strict["calibration_warning"].startswith(f"expected calibration error {ece:.4f} > {ece / 2:.4f}")
    assert "**Calibration:** expected calibration error" in render_markdown(strict)
    assert build_card(**{**_inputs(card), "ece_limit": ece * 2})["calibration_warning"] is None


def _inputs(card: dict) -> dict:
    """build_card's arguments back from a card (the tables as frames)."""
    return {
        "version": card["version"], "created": card["created"], "run_id": card["run_id"],
        "training_data": card["training_data"], "code": card["code"], "parameters": card["parameters"],
        "cv_scores": card["cv"]["scores"], "evaluation": card["evaluation"],
        "top_features": pd.DataFrame(card["top_features"]), "drift": card["drift"], "promotion": card["promotion"],
        "human": card["human"],
    }


def test_card_charts_are_the_diagrams_it_names(card):
    assert card["reliability_diagrams"] == {"sex": "reliability_sex.png", "race": "reliability_race.png"}
    charts = card_charts(card)
    assert list(charts) == ["reliability_sex.png", "reliability_race.png"]
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in charts.values())
    assert charts["reliability_sex.png"] != charts["reliability_race.png"]
    ungrouped = {**card, "evaluation": {**card["evaluation"], "calibration": {
        **card["evaluation"]["calibration"], "groups": {}}}}
    assert build_card(**_inputs(ungrouped))["reliability_diagrams"] == {"all rows": "reliability.png"}


def test_pipeline_card_takes_the_audit_the_model_and_this_environment(card):
    model = tiny_model(seed=5)
    gate = {"passed": True, "failed": [], "too_small": [], "message": "no group judged (2) is worse", "groups": []}
    audit = {"challenger": card["evaluation"], "importance": card["top_features"], "group_gate": gate}
    made = pipeline_card(
        model=model, version="0123456789abcdef", created="2026-12-04T10:00:00Z", run_id="run-2",
        training_data={"rows": 10}, cv_scores=[0.8], audit=audit, drift={"reference_version": None, "psi": {}},
        promotion={"decision": "promote"}, human=human_parts(FILLED),
    )
    assert made["parameters"] == model_parameters(model.booster) and made["parameters"]["num_threads"] == 1
    assert made["gain_importance"] == feature_importance(model.booster).head(10).to_dict(orient="records")
    assert made["code"] == code_versions() and made["drift"] is None
    assert made["promotion"] == {"decision": "promote", "group_gate": gate}
    assert made["evaluation"] == card["evaluation"] and made["human"]["Owners"] == "The census team."
    assert pipeline_card(**{**_pipeline_inputs(made, model, audit), "promotion": None})["promotion"] is None


def _pipeline_inputs(card: dict, model, audit: dict) -> dict:
    return {"model": model, "version": card["version"], "created": card["created"], "run_id": card["run_id"],
            "training_data": card["training_data"], "cv_scores": card["cv"]["scores"], "audit": audit}
