"""Label files matched to their batch (census_assets.core.label_files): by row_id or by position, partial
labels, and every malformed file refused with its reason (pure, no Dagster)."""

import io

import numpy as np
import pandas as pd
import pytest

from census_assets.core.label_files import ROW_ID, LabelError, match_labels, read_label_file

pytestmark = pytest.mark.loop

STATUSES = ["Never-married", "Married-civ-spouse", "Divorced", "Never-married"]


def batch(rows: int = 4, ids=None) -> pd.DataFrame:
    frame = pd.DataFrame({"age": range(30, 30 + rows)})
    return frame if ids is None else frame.assign(**{ROW_ID: ids})


def match(labels: pd.DataFrame, batch_frame: pd.DataFrame):
    return match_labels(labels, batch_frame, batch_fingerprint="sha256:b", label_fingerprint="sha256:l")


def csv_table(text: str) -> pd.DataFrame:
    return read_label_file(text.encode(), "labels.csv")


def test_positional_labels_with_empty_cells_are_partial():
    labels = csv_table("marital_status\n Never-married\n\nDivorced\n  \n")
    matched = match(labels, batch(4))
    assert matched.positions.tolist() == [0, 2]  # empty and blank cells: not labelled
    assert matched.statuses.tolist() == ["Never-married", "Divorced"]  # stripped, as cleaning strips
    assert matched.never_married.tolist() == [1, 0]
    assert matched.labelled_rows == 2 and matched.coverage == 0.5 and matched.keyed_by == "position"
    assert matched.revision == "sha256:l@sha256:b"  # bound to the batch content it was matched against


def test_labels_keyed_by_row_id_in_any_order_and_type():
    # The batch is Parquet with text ids, the labels a CSV whose ids parse as integers: the same ids.
    parquet = io.BytesIO()
    batch(4, ids=["10", "11", "12", "13"]).to_parquet(parquet)
    batch_frame = read_label_file(parquet.getvalue(), "b.parquet")
    labels = csv_table("row_id,marital_status\n13,Widowed\n10,Never-married\n12,\n")
    matched = match(labels, batch_frame)
    assert matched.positions.tolist() == [0, 3] and matched.statuses.tolist() == ["Never-married", "Widowed"]
    assert matched.keyed_by == ROW_ID and matched.coverage == 0.5


def test_float_ids_match_integer_ids_and_text_ids_stay_text():
    floats = batch(3, ids=[1.0, 2.0, 3.0])  # a column with a missing value elsewhere reads as floats
    matched = match(csv_table("row_id,marital_status\n3,Divorced\n1,Widowed\n"), floats)
    assert matched.positions.tolist() == [0, 2] and matched.statuses.tolist() == ["Widowed", "Divorced"]
    with pytest.raises(LabelError, match="not in the batch: '7'"):
        match(csv_table("row_id,marital_status\n7,Divorced\n"), batch(1, ids=["007"]))


REFUSALS = [
    ("no label column", batch(4), "status\nDivorced\n", "has no marital_status column"),
    ("too few rows", batch(4), "marital_status\nDivorced\nWidowed\n", "has 2 row(s) but the batch has 4"),
    ("too many rows", batch(1), "marital_status\nDivorced\nWidowed\n", "has 2 row(s) but the batch has 1"),
    ("unknown value", batch(3), "marital_status\nDivorced\nMaried\nMaried\n", "'Maried' (2 rows)"),
    ("a number", batch(1), "marital_status\n1\n", "unknown marital_status value(s): '1'"),
    ("duplicate id", batch(3, ids=[1, 2, 3]), "row_id,marital_status\n1,Divorced\n1,Widowed\n", "duplicate row_id"),
    ("unknown id", batch(3, ids=[1, 2, 3]), "row_id,marital_status\n1,Divorced\n9,Widowed\n", "not in the batch: '9'"),
    ("missing id", batch(3, ids=[1, 2, 3]), "row_id,marital_status\n,Divorced\n", "1 label row(s) have no row_id"),
    ("ids, batch has none", batch(2), "row_id,marital_status\n1,Divorced\n", "the batch has none"),
    ("batch has ids", batch(2, ids=[1, 2]), "marital_status\nDivorced\nWidowed\n", "must have one too"),
    ("batch ids repeat", batch(2, ids=[1, 1]), "row_id,marital_status\n1,Divorced\n", "batch's row_id is not unique"),
]


@pytest.mark.parametrize("case, batch_frame, text, reason", REFUSALS, ids=[case[0] for case in REFUSALS])
def test_a_bad_label_file_is_refused_with_its_reason(case, batch_frame, text, reason):
    with pytest.raises(LabelError, match=None) as refused:
        match(csv_table(text), batch_frame)
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    "data, name, reason",
    [
        (b"", "labels.csv", "the file is empty"),
        (b"\x00\x01 not parquet", "labels.parquet", "not a readable Parquet file"),
        (b"marital_status\n", "labels.txt", "cannot tell the format"),
    ],
)
def test_an_unreadable_label_file_is_refused(data, name, reason):
    with pytest.raises(LabelError) as refused:
        read_label_file(data, name)
    assert reason in str(refused.value)


def test_many_unknown_ids_are_counted_not_all_listed():
    labels = pd.DataFrame({ROW_ID: np.arange(100, 120), "marital_status": ["Divorced"] * 20})
    with pytest.raises(LabelError) as refused:
        match(labels, batch(3, ids=[1, 2, 3]))
    assert "(20 in all)" in str(refused.value) and "119" not in str(refused.value)
