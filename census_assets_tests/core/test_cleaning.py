"""clean(): the reference semantics on small hand-made frames, for object and string dtypes, and the
seed's own row-wise code on the whole bundled table."""

import pandas as pd
import pytest

from benchmarks.reference import reference_clean
from census_assets.core.cleaning import CleaningError, clean, normalize


def raw_rows(**overrides) -> dict:
    row = {
        "age": 39,
        "workclass": " State-gov",
        "functional_weight": 77516,
        "education": " Bachelors",
        "education_num": 13,
        "marital_status": " Never-married",
        "occupation": " Adm-clerical",
        "relationship": " Not-in-family",
        "race": " White",
        "sex": " Male",
        "capital_gain": 2174,
        "capital_loss": 0,
        "hours_per_week": 40,
        "native_country": " United-States",
        "income_bracket": " <=50K",
    }
    return {**row, **overrides}


@pytest.fixture(params=["object", "string"])
def text_dtype(request):
    return request.param


def frame(rows, text_dtype) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    text = [name for name in table.columns if table[name].dtype == object]
    return table.astype({name: text_dtype for name in text})


def test_strips_both_sides_and_keeps_values_without_spaces(text_dtype):
    table = clean(frame([raw_rows(), raw_rows(age=40, workclass="Private ", sex="Female")], text_dtype))
    assert list(table["workclass"]) == ["State-gov", "Private"]
    assert list(table["sex"]) == ["Male", "Female"]
    assert list(table["income_bracket"]) == ["<=50K", "<=50K"]


def test_question_mark_becomes_unknown_only_in_three_columns(text_dtype):
    row = raw_rows(workclass=" ?", occupation="?", native_country=" ?", education=" ?")
    table = clean(frame([row], text_dtype))
    assert table.loc[0, ["workclass", "occupation", "native_country"]].tolist() == ["Unknown"] * 3
    assert table.loc[0, "education"] == "?"


def test_drops_na_and_duplicates_and_unused_columns(text_dtype):
    rows = [raw_rows(), raw_rows(), raw_rows(age=50), raw_rows(age=60, occupation=None)]
    table = clean(frame(rows, text_dtype))
    assert list(table["age"]) == [39, 50]
    assert not {"education_num", "relationship", "functional_weight"} & set(table.columns)
    assert list(table.index) == [0, 1]


def test_duplicates_are_judged_on_raw_values_as_the_reference_does(text_dtype):
    # " Private" and "Private" differ before stripping, so the reference keeps both rows.
    rows = [raw_rows(workclass=" Private"), raw_rows(workclass="Private")]
    assert len(clean(frame(rows, text_dtype))) == 2


def test_nothing_left_is_a_clear_error(text_dtype):
    with pytest.raises(CleaningError, match="no rows left"):
        clean(frame([raw_rows(age=None)], text_dtype))


def test_normalize_is_clean_keeping_every_row_in_order(text_dtype):
    rows = [raw_rows(workclass=" ?"), raw_rows(age=50), raw_rows(workclass=" ?")]
    table = normalize(frame(rows, text_dtype))
    assert list(table["age"]) == [39, 50, 39]  # the repeated row kept, in place
    assert list(table["workclass"]) == ["Unknown", "State-gov", "Unknown"]
    pd.testing.assert_frame_equal(table.drop_duplicates(ignore_index=True), clean(frame(rows, text_dtype)))


def test_bundled_table_equals_the_seeds_row_wise_cleaning(bundled_raw, bundled_clean):
    """The seed's code (dropna, drop_duplicates, apply(strip), apply('?' -> 'Unknown'), drop) on the
    full table: the same frame, values, dtypes and row order. Only the index differs: the seed keeps
    the gaps its drops leave, clean() numbers the rows 0..n-1."""
    expected = reference_clean(bundled_raw)
    assert len(expected) == 32537  # 24 duplicate rows dropped, as the seed drops them
    assert bundled_clean.index.equals(pd.RangeIndex(len(expected)))
    pd.testing.assert_frame_equal(bundled_clean, expected.reset_index(drop=True), check_exact=True)
