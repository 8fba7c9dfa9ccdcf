"""Source validation: clear errors that name the problem; what the later steps require of the data."""

import pandas as pd
import pytest

from census_assets.core.schema import SchemaError, validate_source
from census_assets.core.validation import (
    SourceValidationError,
    impossible_values,
    training_problems,
    validate_training_source,
)


def test_valid_source_passes_and_keeps_column_order(bundled_raw):
    shuffled = bundled_raw[list(reversed(bundled_raw.columns))].assign(extra=1)
    table = validate_source(shuffled)
    assert list(table.columns) == list(bundled_raw.columns)
    assert len(table) == len(bundled_raw)


def test_missing_column_is_named(bundled_raw):
    with pytest.raises(SchemaError, match="missing required column.*occupation"):
        validate_source(bundled_raw.drop(columns=["occupation"]))


def test_empty_table_is_rejected(bundled_raw):
    with pytest.raises(SchemaError, match="no rows"):
        validate_source(bundled_raw.head(0))


def test_non_numeric_age_is_named_with_an_example(bundled_raw):
    bad = bundled_raw.head(50).astype({"age": object})
    bad.loc[3, "age"] = "forty"
    with pytest.raises(SchemaError, match=r"column 'age' must be integer.*'forty'"):
        validate_source(bad)


def test_fractional_integer_column_is_rejected(bundled_raw):
    bad = bundled_raw.head(10).astype({"hours_per_week": float})
    bad.loc[2, "hours_per_week"] = 40.5
    with pytest.raises(SchemaError, match="hours_per_week.*fractional"):
        validate_source(bad)


def test_integers_with_missing_values_become_nullable(bundled_raw):
    table = bundled_raw.head(10).astype({"age": float})
    table.loc[1, "age"] = None
    assert str(validate_source(table)["age"].dtype) == "Int64"


def test_non_string_category_is_named(bundled_raw):
    bad = bundled_raw.head(10).astype({"sex": object})
    bad.loc[0, "sex"] = 7
    with pytest.raises(SchemaError, match="column 'sex' must hold strings"):
        validate_source(bad)


def test_every_problem_is_reported_at_once():
    with pytest.raises(SchemaError) as error:
        validate_source(pd.DataFrame({"age": ["x"]}))
    assert "workclass" in str(error.value) and "column 'age' must be integer" in str(error.value)


# ---- what the later steps require (core.validation, called by raw_census) -----------------------

@pytest.fixture(scope="module")
def sample(bundled_raw) -> pd.DataFrame:
    return validate_source(bundled_raw.sample(2000, random_state=0).reset_index(drop=True))


def positive(table: pd.DataFrame) -> pd.Series:
    return table["marital_status"].str.strip() == "Never-married"


@pytest.mark.integrity
def test_bundled_table_can_train(bundled_raw):
    assert training_problems(validate_source(bundled_raw), n_splits=5) == []


@pytest.mark.integrity
def test_every_row_missing_a_value_is_refused_naming_the_column(sample):
    table = sample.assign(occupation=None)
    with pytest.raises(SourceValidationError, match=r"no row has every value, so cleaning would drop all 2000 rows "
                       r"\(missing: occupation in 2000 of 2000 rows\)"):
        validate_training_source(table, n_splits=5)


@pytest.mark.integrity
@pytest.mark.parametrize("label, absent", [(" Divorced", 1), (" Never-married", 0)])
def test_one_class_of_the_target_is_refused(sample, label, absent):
    problems = training_problems(sample.assign(marital_status=label), n_splits=5)
    assert problems == [
        "only one class of the target never_married (marital_status == 'Never-married'): every one of the "
        f"2000 row(s) cleaning keeps has never_married={1 - absent}; a classifier needs both classes"
    ]


@pytest.mark.integrity
def test_fewer_rows_per_class_than_folds_is_refused(sample):
    table = pd.concat([sample[~positive(sample)], sample[positive(sample)].head(4)])
    assert training_problems(table, n_splits=5) == [
        "only 4 distinct row(s) with never_married=1 after cleaning (rows with a missing value and duplicates "
        "dropped), fewer than the cross-validation's n_splits=5"
    ]
    assert training_problems(table, n_splits=4) == []


@pytest.mark.integrity
def test_rows_cleaning_drops_do_not_count(sample):
    """Duplicates and rows with a missing value are what clean() drops: they cannot make up a class."""
    one = sample[positive(sample)].head(1)
    with_gaps = sample[positive(sample)].iloc[1:20].assign(workclass=None)
    table = pd.concat([sample[~positive(sample)], one.loc[one.index.repeat(30)], with_gaps])
    [problem] = training_problems(table, n_splits=5)
    assert problem.startswith("only 1 distinct row(s) with never_married=1")


@pytest.mark.integrity
def test_distinct_rows_beyond_the_prefix_are_counted(sample):
    """The prefix shortcut only proves enough rows; a long run of duplicates falls back to the exact count."""
    one = sample[positive(sample)].head(1)
    others = sample[positive(sample)].iloc[1:6]
    table = pd.concat([sample[~positive(sample)], one.loc[one.index.repeat(12_000)], others])
    assert training_problems(table, n_splits=5) == []
    assert training_problems(table, n_splits=7)[0].startswith("only 6 distinct row(s) with never_married=1")


@pytest.mark.integrity
def test_impossible_values_are_refused_with_an_example(sample):
    table = sample.copy()
    table.loc[[3, 4], "age"] = [-1, 130]
    table.loc[5, "hours_per_week"] = 169
    table.loc[6, "capital_loss"] = -10
    assert set(impossible_values(table)) == {"age", "hours_per_week", "capital_loss"}
    with pytest.raises(SourceValidationError) as error:
        validate_training_source(table, n_splits=5)
    message = str(error.value)
    assert message.startswith("census source cannot train a model: 2 row(s) with an impossible age (possible: 0..120)")
    assert "1 row(s) with an impossible hours_per_week (possible: 0..168), e.g. 169" in message
    assert "1 row(s) with an impossible capital_loss (possible: >= 0), e.g. -10" in message
    # The limits are inclusive, and a missing value is not impossible.
    edge = sample.head(4).astype({"age": "Int64"}).copy()
    edge.loc[0, "age"], edge.loc[1, "age"], edge.loc[2, "hours_per_week"] = 0, 120, 168
    edge.loc[3, "age"] = pd.NA
    assert impossible_values(edge) == {}
