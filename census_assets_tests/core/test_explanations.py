"""Reasons for every score: LightGBM's pred_contrib summed per input column, on a small model
fitted here from the bundled rows (no Dagster)."""

import io

import numpy as np
import pandas as pd
import pytest

from census_assets.core.cleaning import clean
from census_assets.core.explanations import (
    INPUT_COLUMNS,
    explain,
    explain_frame,
    feature_contributions,
    global_importance,
    importance_chart_png,
    importance_rows,
    top_reasons,
)
from census_assets.core.features import Vocabulary, encode, split_target
from census_assets.core.scoring import PROBABILITY, score
from census_assets.core.training import TrainedModel, fit_rows

pytestmark = pytest.mark.audit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def raw(bundled_raw) -> pd.DataFrame:
    return bundled_raw.head(3_000)


@pytest.fixture(scope="module")
def model(raw) -> TrainedModel:
    cleaned = clean(raw)
    vocabulary = Vocabulary.fit(cleaned)
    X, y = split_target(encode(cleaned, vocabulary).frame)
    return TrainedModel(fit_rows(X, y, model_seed=1, threads=1, feature_names=vocabulary.feature_names), vocabulary)


@pytest.fixture(scope="module")
def X(raw, model) -> np.ndarray:
    # Tree SHAP costs far more per row than a prediction: a few hundred rows are explained.
    return split_target(encode(clean(raw.head(400)), model.vocabulary).frame)[0]


def test_input_columns_are_the_source_columns_the_model_reads():
    assert INPUT_COLUMNS == (
        "age", "workclass", "education", "occupation", "race", "sex",
        "capital_gain", "capital_loss", "hours_per_week", "native_country", "income_bracket",
    )


def test_contributions_plus_bias_are_the_raw_score(model, X):
    raw_score = model.booster.predict(X, raw_score=True)
    per_feature = feature_contributions(model.booster, X)
    assert per_feature.sum(axis=1) == pytest.approx(raw_score, abs=1e-9)
    contributions = explain(model, X)
    assert contributions.raw_score == pytest.approx(raw_score, abs=1e-9)
    assert 1 / (1 + np.exp(-contributions.raw_score)) == pytest.approx(model.predict_proba(X), abs=1e-12)


def test_a_columns_contribution_is_the_sum_of_its_features(model, X):
    per_feature = feature_contributions(model.booster, X)
    names = model.booster.feature_name()
    by_column = explain(model, X).by_column
    for column in INPUT_COLUMNS:
        if column == "age":
            mine = [names.index("age_bins")]
        elif column in ("capital_gain", "capital_loss", "hours_per_week"):
            mine = [names.index(column)]
        else:
            mine = [i for i, name in enumerate(names) if name.startswith(column + "_")]
        assert mine, column
        assert by_column[:, INPUT_COLUMNS.index(column)] == pytest.approx(per_feature[:, mine].sum(axis=1), abs=1e-12)
    # income_bracket_<=50K is not a feature (REDUNDANT_DUMMY): the column is its one dummy.
    assert [name for name in names if name.startswith("income_bracket_")] == ["income_bracket_>50K"]


def test_top_reasons_are_the_largest_absolute_contributions(raw, model, X):
    contributions = explain(model, X)
    inputs = clean(raw.head(400))
    reasons = top_reasons(contributions, inputs, 3)
    assert list(reasons.columns) == [f"{kind}_{i}" for kind in ("reason", "contribution", "value") for i in (1, 2, 3)]
    for row in range(20):
        ranked = sorted(INPUT_COLUMNS, key=lambda c: -abs(contributions.by_column[row, INPUT_COLUMNS.index(c)]))[:3]
        assert reasons.iloc[row][["reason_1", "reason_2", "reason_3"]].tolist() == ranked
        for i, column in enumerate(ranked, start=1):
            assert reasons.iloc[row][f"contribution_{i}"] == contributions.by_column[row, INPUT_COLUMNS.index(column)]
            assert reasons.iloc[row][f"value_{i}"] == str(inputs.iloc[row][column]).strip()
    with pytest.raises(ValueError, match="between 1 and 11, got 12"):
        top_reasons(contributions, inputs, 12)


def test_explain_frame_adds_reasons_to_scored_rows_only(raw, model):
    batch = raw.head(200).copy()
    batch.loc[3, "occupation"] = None  # not scored: a missing value
    batch.loc[5, "native_country"] = " Atlantis"  # scored as no known category, and explained
    scored = score(batch, model.predict_proba, model.vocabulary).frame
    explained = explain_frame(model, scored, len(INPUT_COLUMNS))
    assert list(explained.columns[: len(scored.columns)]) == list(scored.columns)
    assert explained[scored.columns].equals(scored)
    assert explained.loc[3, ["reason_1", "value_1"]].tolist() == [None, None]
    assert np.isnan(explained.loc[3, "contribution_1"])
    # With every column as a reason, the contributions and the bias give back the row's probability.
    X = split_target(encode(clean(raw.head(1)), model.vocabulary).frame)[0]
    bias = feature_contributions(model.booster, X)[0, -1]
    rows = explained.drop(index=3)
    total = rows[[f"contribution_{i}" for i in range(1, 12)]].sum(axis=1).to_numpy() + bias
    assert 1 / (1 + np.exp(-total)) == pytest.approx(rows[PROBABILITY].to_numpy(), abs=1e-12)
    atlantis = explained.loc[5]
    assert atlantis[[f"value_{i}" for i in range(1, 12)]].tolist().count("Atlantis") == 1
    first = [explained.loc[0, f"reason_{i}"] for i in range(1, 12)]
    assert explained.loc[0, f"value_{first.index('age') + 1}"] == str(batch.loc[0, "age"])  # the age, not its bin
    explained.to_parquet(io.BytesIO(), index=False)  # one type per column: Parquet takes it


def test_explain_frame_refuses_rows_scored_by_another_model(raw, model):
    scored = score(raw.head(50), model.predict_proba, model.vocabulary).frame
    scored[PROBABILITY] = scored[PROBABILITY] * 0.5
    with pytest.raises(ValueError, match="not this model's"):
        explain_frame(model, scored, 2)


def test_global_importance_is_the_mean_absolute_contribution(model, X):
    contributions = explain(model, X)
    table = global_importance(contributions)
    assert sorted(table["column"]) == sorted(INPUT_COLUMNS) and table["rank"].tolist() == list(range(1, 12))
    for row in table.itertuples():
        values = [abs(v) for v in contributions.by_column[:, INPUT_COLUMNS.index(row.column)]]
        assert row.mean_abs_contribution == pytest.approx(sum(values) / len(values))
    assert table["mean_abs_contribution"].is_monotonic_decreasing
    assert table["share"].sum() == pytest.approx(1.0)
    png = importance_chart_png(table)
    assert png.startswith(PNG_SIGNATURE) and importance_chart_png(table) == png


def test_importance_rows_are_an_even_subset():
    assert importance_rows(5, limit=10).tolist() == [0, 1, 2, 3, 4]
    assert importance_rows(101, limit=3).tolist() == [0, 50, 100]
    assert len(importance_rows(16_276)) == 2_000 and importance_rows(0).tolist() == []


def test_explain_frame_of_rows_none_of_which_was_scored(raw, model):
    batch = raw.head(3).assign(occupation=None)
    scored = score(batch, model.predict_proba, model.vocabulary).frame
    explained = explain_frame(model, scored, 2)
    assert explained[["reason_1", "value_2"]].isna().all().all() and explained["contribution_1"].isna().all()
    with pytest.raises(ValueError, match="between 1 and 11, got 0"):
        explain_frame(model, scored, 0)
