"""Source validation: clear errors that name the problem."""

import pandas as pd
import pytest

from census_assets.core.schema import SchemaError, validate_source


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
