"""Batches without Dagster: which files are batches and their partition keys (core.batch_names),
the inbox sensor's decisions (core.inbox), reading and validating one batch (core.batches), the
summary (core.batch_summary), re-score requests and the re-score sensor's state (core.rescore),
and the label rule (core.labels)."""

import gzip
import io
import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from census_assets.core import batch_names, inbox
from census_assets.core import batches as core
from census_assets.core.batch_summary import behind_production, drift_chart_png, summary_table
from census_assets.core.cleaning import clean
from census_assets.core.drift import compare, fit_reference
from census_assets.core.features import Vocabulary
from census_assets.core.file_formats import SUFFIXES
from census_assets.core.labels import is_target
from census_assets.core.rescore import QueuedRun, RequestError, RescoreRequest, RescoreState
from census_assets.core.scoring import score
from census_assets.sources.common import BUNDLED_VOCABULARY, bundled_file
from census_assets.sources.files import read_file

pytestmark = pytest.mark.batches


# ---- names and keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, taken",
    [
        ("2026-12-01.csv", True),
        ("batch.CSV", True),
        ("batch.csv.gz", True),
        ("b.parquet", True),
        ("b.pq", True),
        ("_b.csv", False),  # written under a temporary name, renamed when complete
        (".b.csv", False),
        ("b.csv.tmp", False),
        ("b.csv.part", False),
        ("b.json", False),
        ("sub/b.csv", False),
        (".csv", False),
    ],
)
def test_which_names_are_batches(name, taken):
    assert batch_names.is_batch_name(name) is taken


@pytest.mark.parametrize("name", ["2026-12-01.csv", "a_b-c.1.parquet", "X.pq"])
def test_a_safe_name_is_its_own_key(name):
    assert batch_names.partition_key(name) == name


@pytest.mark.parametrize(
    "name",
    ["batch 1.csv", "ünïcödé.csv", "a..b.csv", "-lead.csv", "a/b.csv", "x" * 300 + ".csv", "semi;colon&.csv"],
)
def test_other_names_get_a_safe_stable_key(name):
    key = batch_names.partition_key(name)
    assert batch_names.is_safe_key(key) and "/" not in key and ".." not in key
    assert key == batch_names.partition_key(name)  # stable
    assert not key.lower().endswith(SUFFIXES)  # so never equal to a safe name's key


def test_names_that_sanitise_alike_still_get_different_keys():
    names = ["batch 1.csv", "batch?1.csv", "batch_1.csv", "batch*1.csv"]
    assert len({batch_names.partition_key(name) for name in names}) == len(names)


@pytest.mark.parametrize("key", ["../x", "a/b", "..", ".hidden", "a..b", "", "a b", "a,b.csv", "x" * 200])
def test_unsafe_keys_are_refused(key):
    assert not batch_names.is_safe_key(key)


# ---- the sensor's decisions ------------------------------------------------------------------------


def files(**contents) -> list[inbox.InboxFile]:
    return [inbox.InboxFile(name.replace("_", ".", 1), len(fp), fp) for name, fp in contents.items()]


def tick(state, listing, complete=False, limit=100):
    plan = inbox.plan_tick(state, listing, complete_when_listed=complete, max_requests=limit)
    # The cursor round-trips through JSON as Dagster stores it.
    return plan, inbox.InboxState.from_cursor(plan.state.to_cursor())


def test_a_local_file_is_taken_when_unchanged_on_two_ticks():
    first, state = tick(inbox.InboxState(), files(a_csv="sha256:1"))
    assert first.requests == [] and first.waiting == ["a.csv"]
    second, state = tick(state, files(a_csv="sha256:1"))
    [request] = second.requests
    assert (request.key, request.name, request.revision) == ("a.csv", "a.csv", 1)
    assert request.run_key == "a.csv@sha256:1#1"
    third, state = tick(state, files(a_csv="sha256:1"))  # a touch: same bytes, nothing new
    assert third.requests == [] and third.unchanged == 1


def test_a_file_still_being_written_waits():
    state = inbox.InboxState()
    for content in ("sha256:partial", "sha256:more", "sha256:done"):
        plan, state = tick(state, files(a_csv=content))
        assert plan.requests == []
    plan, state = tick(state, files(a_csv="sha256:done"))
    assert [r.fingerprint for r in plan.requests] == ["sha256:done"]


def test_gcs_objects_are_taken_when_listed():
    plan, _ = tick(inbox.InboxState(), files(a_csv="md5:x"), complete=True)
    assert [r.key for r in plan.requests] == ["a.csv"]


def test_a_changed_file_gets_a_new_revision_and_back_again_too():
    state = inbox.InboxState()
    run_keys = []
    for content in ("md5:A", "md5:B", "md5:A"):
        plan, state = tick(state, files(a_csv=content), complete=True)
        run_keys += [r.run_key for r in plan.requests]
    assert run_keys == ["a.csv@md5:A#1", "a.csv@md5:B#2", "a.csv@md5:A#3"]


def test_a_removed_file_keeps_its_revision():
    state = inbox.InboxState()
    _, state = tick(state, files(a_csv="md5:A"), complete=True)
    plan, state = tick(state, [], complete=True)
    assert plan.requests == [] and "a.csv" in state.taken
    plan, state = tick(state, files(a_csv="md5:B"), complete=True)
    assert [r.revision for r in plan.requests] == [2]


def test_at_most_the_limit_per_tick_and_the_rest_next_tick():
    listing = [inbox.InboxFile(f"{i:04d}.csv", 1, f"sha256:{i}") for i in range(250)]
    state = inbox.InboxState()
    _, state = tick(state, listing, limit=100)
    counts = []
    for _ in range(4):
        plan, state = tick(state, listing, limit=100)
        counts.append(len(plan.requests))
    assert counts == [100, 100, 50, 0]
    assert len(state.taken) == 250 and not state.pending


def test_a_key_collision_is_reported_not_taken(monkeypatch):
    monkeypatch.setattr(inbox, "partition_key", lambda name: "same")
    plan, state = tick(inbox.InboxState(), files(a_csv="md5:1", b_csv="md5:2"), complete=True)
    assert [r.name for r in plan.requests] == ["a.csv"] and plan.collisions == {"b.csv": "a.csv"}
    assert "collision" in plan.describe()


def test_the_cursor_is_compact_json():
    listing = [inbox.InboxFile(f"{i:04d}.csv", 1, "sha256:" + "f" * 64) for i in range(1000)]
    _, state = tick(inbox.InboxState(), listing, complete=True, limit=1000)
    cursor = state.to_cursor()
    assert json.loads(cursor)["v"] == inbox.CURSOR_VERSION and len(cursor) < 100_000
    with pytest.raises(ValueError, match="version"):
        inbox.InboxState.from_cursor(json.dumps({"v": 99}))


def test_refused_entries_are_described_with_their_reasons():
    text = inbox.describe_refused({"bad\\xff.csv": "the file name is not valid UTF-8", "loop.csv": "a symbolic link"})
    assert text == "2 refused (not taken): bad\\xff.csv: the file name is not valid UTF-8; loop.csv: a symbolic link"


# ---- one batch --------------------------------------------------------------------------------------


def as_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def test_read_batch_reads_csv_gzip_and_parquet_like_the_cli(bundled_raw, tmp_path):
    """The same bytes through read_batch and through the CLI's reader (census-assets predict)."""
    rows = bundled_raw.head(30)
    files = {"b.csv": as_csv(rows), "b.csv.gz": gzip.compress(as_csv(rows))}
    buffer = io.BytesIO()
    rows.to_parquet(buffer, index=False)
    files["b.parquet"] = files["B.PQ"] = buffer.getvalue()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        batch = core.read_batch(data, name)
        assert batch.equals(read_file(str(tmp_path / name))), name
        assert batch.equals(rows.reset_index(drop=True).astype(batch.dtypes)), name


@pytest.mark.parametrize(
    "data, name, message",
    [
        (b"", "b.csv", "empty .0 bytes"),
        (b"\n", "b.csv", "not even a header row"),
        (b"not parquet", "b.parquet", "not a readable Parquet file"),
        (b"a,b\n1,2", "b.xlsx", "cannot tell the format"),
    ],
)
def test_read_batch_refuses_unreadable_files(data, name, message):
    with pytest.raises(core.BatchError, match=message):
        core.read_batch(data, name)


def test_check_batch_counts_unscorable_rows_and_refuses_above_the_limit(bundled_raw):
    rows = bundled_raw.head(100).drop(columns="marital_status").copy()
    rows.loc[:9, "occupation"] = None  # 10% of rows cannot be scored
    rows.loc[:4, "age"] = None
    profile = core.check_batch(rows, max_unscorable_share=0.1)
    assert (profile.rows, profile.unscorable_rows) == (100, 10)
    assert profile.missing_by_column == {"age": 5, "occupation": 10}
    with pytest.raises(core.BatchError, match=r"10 of 100 rows \(10.0%\) cannot be scored.*occupation in 10"):
        core.check_batch(rows, max_unscorable_share=0.05)
    # A missing value in a column the model does not use is no reason to refuse.
    assert core.check_batch(rows.assign(relationship=None), 0.1).unscorable_rows == 10


def test_check_batch_refuses_missing_columns_and_header_only(bundled_raw):
    with pytest.raises(core.BatchError, match="missing required column.*occupation"):
        core.check_batch(bundled_raw.head(5).drop(columns="occupation"), 0.1)
    with pytest.raises(core.BatchError, match="no rows"):
        core.check_batch(bundled_raw.head(0), 0.1)


def test_batch_drift_is_the_drift_assets_psi(bundled_raw, bundled_clean):
    vocabulary = Vocabulary.load(bundled_file(BUNDLED_VOCABULARY))
    profile = fit_reference(bundled_clean, vocabulary)

    def drift_of(raw: pd.DataFrame):
        # Drift reads the rows scoring cleaned; the predictions themselves do not matter to it.
        return core.batch_drift(profile, score(raw, lambda X: np.zeros(len(X)), vocabulary))

    same = drift_of(bundled_raw.drop(columns="marital_status"))
    assert same.max_psi < 0.001
    # the batch's rows cleaned as the drift asset cleans a table (no label: filled, as scoring does)
    assert same == compare(profile, clean(bundled_raw.assign(marital_status="")))
    shifted = drift_of(bundled_raw.assign(age=bundled_raw["age"] + 15))
    assert shifted.worst_feature == "age" and shifted.max_psi > 0.25
    nothing = bundled_raw.head(3).assign(age=np.nan)
    assert drift_of(nothing) is None


def test_summary_table_marks_batches_behind_production():
    records = [
        {"partition": "a.csv", "status": "scored", "model_version": "v1", "updated_at": "2026-01-01T00:00:00Z",
         "rows": 10, "scored_rows": 10, "max_psi": 0.01},
        {"partition": "b.csv", "status": "scored", "model_version": "v2", "updated_at": "2026-01-02T00:00:00Z",
         "rows": 5, "scored_rows": 5, "max_psi": 0.3},
        {"partition": "c.csv", "status": "failed", "failure": "missing column", "updated_at": "2026-01-03T00:00:00Z"},
    ]  # fmt: skip
    table = summary_table(records, production_version="v2")
    assert table["partition"].tolist() == ["c.csv", "b.csv", "a.csv"]  # newest first
    assert table["current"].tolist() == [False, True, False]
    assert table.loc[0, "failure"] == "missing column" and np.isnan(table.loc[0, "rows"])
    png = drift_chart_png(table[table["status"] == "scored"], 0.1, 0.25)
    assert png.startswith(b"\x89PNG")
    # A failed partition is not behind: it has no scores of its own to replace.
    assert behind_production(records, "v2") == ["a.csv"]
    assert behind_production([*records, {"partition": "d.csv", "status": "failed", "model_version": "v1"}], "v2") == [
        "a.csv"
    ]


# ---- the label rule ----------------------------------------------------------------------------------


def test_the_positive_class_is_never_married_spaces_aside():
    labels = pd.Series([" Never-married", "Never-married", "Married-civ-spouse", None, "never-married"])
    assert is_target(labels).tolist() == [1, 1, 0, 0, 0]
    assert is_target(labels.astype("category")).tolist() == [1, 1, 0, 0, 0]


# ---- re-scoring ----------------------------------------------------------------------------------------


def test_a_rescore_request_round_trips_and_bad_ones_are_refused():
    request = RescoreRequest.new(True, "0123456789abcdef", datetime(2026, 12, 1, 8, 30, tzinfo=UTC))
    assert request.id.startswith("20261201T083000") and RescoreRequest.from_json(request.to_json()) == request
    later = RescoreRequest.new(False, "0123456789abcdef", datetime(2026, 12, 2, tzinfo=UTC))
    assert sorted([later.id, request.id]) == [request.id, later.id]  # listed in the order made
    good = json.loads(request.to_json())
    for bad, message in [
        (b"{not json", "not JSON"),
        (json.dumps({**good, "extra": 1}).encode(), "expected the fields"),
        (json.dumps({**good, "everything": "yes"}).encode(), "invalid everything"),
        (json.dumps({**good, "id": "../x"}).encode(), "invalid id"),
    ]:
        with pytest.raises(RequestError, match=message):
            RescoreRequest.from_json(bad)


def test_rescore_state_queues_in_order_a_bounded_number_a_tick():
    state = RescoreState()
    state.enqueue("r1", ["a.csv", "odd,key", "b.csv"], "v2")
    state = RescoreState.from_cursor(state.to_cursor())  # through the cursor, as Dagster keeps it
    first, gone = state.take(2, existing={"a.csv", "odd,key", "b.csv"})
    assert [run.partition for run in first] == ["a.csv", "odd,key"] and gone == []
    assert first[1].run_key == "rescore/r1/odd,key" and first[1].production == "v2"
    # A partition deleted since the request was handled is dropped, not requested.
    second, gone = state.take(2, existing={"a.csv"})
    assert second == [] and gone == [QueuedRun("r1", "b.csv", "v2")] and state.queue == []
    assert state.handled == {"r1"}
    with pytest.raises(ValueError, match="version"):
        RescoreState.from_cursor(json.dumps({"v": 2}))
