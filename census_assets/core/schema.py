"""The source schema (BigQuery's census_adult_income) and its validation."""

import pandas as pd

INTEGER = "integer"
STRING = "string"

# Column order as in bigquery-public-data.ml_datasets.census_adult_income.
SOURCE_COLUMNS: dict[str, str] = {
    "age": INTEGER,
    "workclass": STRING,
    "functional_weight": INTEGER,
    "education": STRING,
    "education_num": INTEGER,
    "marital_status": STRING,
    "occupation": STRING,
    "relationship": STRING,
    "race": STRING,
    "sex": STRING,
    "capital_gain": INTEGER,
    "capital_loss": INTEGER,
    "hours_per_week": INTEGER,
    "native_country": STRING,
    "income_bracket": STRING,
}


class SchemaError(ValueError):
    """The source table does not have the census schema; the message names every problem."""


def _integer_problem(name: str, column: pd.Series) -> str | None:
    if pd.api.types.is_integer_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return None
    if pd.api.types.is_float_dtype(column):
        values = column.dropna()
        fractional = values[values != values.round()]
        if fractional.empty:
            return None
        return f"column '{name}' must be integer, got fractional values, e.g. {fractional.iloc[0]!r}"
    non_numeric = column[pd.to_numeric(column, errors="coerce").isna() & column.notna()]
    example = f", e.g. {non_numeric.iloc[0]!r}" if len(non_numeric) else ""
    return f"column '{name}' must be integer, got {column.dtype}{example}"


def _string_problem(name: str, column: pd.Series) -> str | None:
    if pd.api.types.is_string_dtype(column) or pd.api.types.is_object_dtype(column):
        # infer_dtype scans in C: a tenth of a type() per value; only a failure looks for an example.
        if pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty"):
            return None
        non_strings = column.dropna().map(type).ne(str)
        example = column.dropna()[non_strings].iloc[0]
        return f"column '{name}' must hold strings, got {type(example).__name__} {example!r}"
    return f"column '{name}' must be string, got {column.dtype}"


def validate_source(df: pd.DataFrame) -> pd.DataFrame:
    """Check columns, types and non-emptiness; return the table with the source columns in order.

    Integer columns that arrive as floats without fractions (CSV with NA) are accepted as nullable
    integers, since cleaning drops NA rows anyway. Extra columns are dropped.
    """
    problems = []
    missing = [name for name in SOURCE_COLUMNS if name not in df.columns]
    if missing:
        problems.append(f"missing required column(s): {', '.join(missing)}")
    if df.empty:
        problems.append("the table has no rows")
    for name, kind in SOURCE_COLUMNS.items():
        if name in df.columns and not df.empty:
            check = _integer_problem if kind == INTEGER else _string_problem
            if (problem := check(name, df[name])) is not None:
                problems.append(problem)
    if problems:
        raise SchemaError("census source is invalid: " + "; ".join(problems))
    table = df[list(SOURCE_COLUMNS)].copy()
    for name, kind in SOURCE_COLUMNS.items():
        if kind == INTEGER and not pd.api.types.is_integer_dtype(table[name]):
            table[name] = table[name].astype("Int64")
    return table
