"""Integrity (points 6 and 7, and issue 16's prune refusals): the CLI's error contract under
every fault, and bad training data refused at raw_census. Run alone with `python -m pytest -m integrity`.

6. Every failure of `census-assets predict | history | rollback | prune` that the user can act on
   (bad input or settings, storage, registry) is ONE stderr line `census-assets <command>: error: ...`,
   exit status 2, never a traceback; anything else is a bug in census-assets: ONE line
   `census-assets <command>: internal error: ...`, exit status 70 (EX_SOFTWARE), and `--debug` shows
   its traceback. The output is prepared before scoring and written atomically (no partial file, no
   temp file). A few cases run the real console script in a subprocess (proving "no traceback" on
   stderr); the rest call cli.main.
7. A source that passes the schema but cannot train a model fails raw_census with the reason and
   leaves every stored output as it was.

One registry with a production model is built per module (the whole graph in-process on a
3,000-row sample, one CV repeat); each test that breaks storage works on a copy of it. The prune
cases work on a storage of a few committed frames.
"""

import errno
import io
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from census_assets import cli
from census_assets.core.scoring import FLAG, PROBABILITY
from census_assets.storage.codecs import codec_for
from census_assets.storage.commits import ArtifactKey, commit
from census_assets.storage.objects import LocalObjectStore
from census_assets_tests.fixtures import RELEASE_797E3E6_STORAGE
from census_assets_tests.harness.runner import ONE_CV_REPEAT, step_failure_message
from census_assets_tests.harness.runner import run_graph as run_census_graph

pytestmark = pytest.mark.integrity

CONSOLE_SCRIPT = Path(sys.executable).parent / "census-assets"
ROWS = 2000  # scored rows per test input: a CSV output of about 300 kB


def run_graph(storage: Path, source: Path) -> dg.ExecuteInProcessResult:
    """The whole graph, lifecycle included, as the census_pipeline job runs it (one CV repeat)."""
    return run_census_graph({"CENSUS_STORAGE_URL": str(storage), "CENSUS_SOURCE": str(source)}, training=ONE_CV_REPEAT)


def tree(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under root."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory, bundled_raw):
    root = tmp_path_factory.mktemp("contract")
    sample = bundled_raw.sample(3000, random_state=0)
    source = root / "sample.parquet"
    sample.to_parquet(source, index=False)
    storage = root / "storage"
    result = run_graph(storage, source)
    assert result.success, [e.step_key for e in result.all_events if e.is_step_failure]
    pointer = cli.registry(str(storage)).production()
    return {"storage": storage, "version": pointer["version"], "rows": bundled_raw.head(ROWS)}


@pytest.fixture
def storage(built, tmp_path) -> Path:
    """A private copy of the built storage, free to break."""
    return Path(shutil.copytree(built["storage"], tmp_path / "storage"))


@pytest.fixture
def rows_csv(built, tmp_path) -> Path:
    path = tmp_path / "in" / "rows.csv"
    path.parent.mkdir()
    built["rows"].to_csv(path, index=False)
    return path


def one_error_line(stderr: str, command: str) -> str:
    """The single line of stderr, checked to be the contract's error line; returns its message."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    prefix = f"census-assets {command}: error: "
    assert len(lines) == 1 and lines[0].startswith(prefix), stderr
    return lines[0].removeprefix(prefix)


def main(capsys, *argv: str) -> tuple[int, str]:
    """cli.main in-process: (exit status, stderr)."""
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


def start_console(*argv: str, limit_file_size: int | None = None) -> subprocess.Popen:
    """The installed console script, as a user runs it (one OpenMP thread: several run at once)."""

    def limit():
        # CPython ignores SIGXFSZ, so a write past the limit fails with EFBIG instead of killing us.
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))

    return subprocess.Popen(
        [str(CONSOLE_SCRIPT), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        preexec_fn=limit if limit_file_size is not None else None,
    )


@pytest.fixture(scope="module")
def console_runs(built, tmp_path_factory) -> dict:
    """The console-script cases, started together once the registry is built (each process spends
    most of its time importing): case -> (CompletedProcess, the case's paths)."""
    root = tmp_path_factory.mktemp("console")
    cases, paths = {}, {}

    garbage = root / "garbage.csv"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    paths["garbage"] = {"input": garbage, "output": root / "garbage_out.csv"}
    cases["garbage"] = ("predict", "--input", str(garbage), "--output", str(root / "garbage_out.csv"),
                        "--storage", str(built["storage"])), None

    rows, out_dir = root / "rows.csv", root / "fsize"
    built["rows"].to_csv(rows, index=False)
    out_dir.mkdir()
    output = out_dir / "scored.csv"
    output.write_text("previous output\n")
    paths["file_size"] = {"output": output}
    cases["file_size"] = ("predict", "--input", str(rows), "--output", str(output),
                          "--storage", str(built["storage"])), 64 * 1024

    pointer = Path(shutil.copytree(built["storage"], root / "pointer"))
    (pointer / "production.json").write_text("{ not json")
    paths["pointer"] = {"storage": pointer}
    cases["pointer"] = ("history", "--storage", str(pointer)), None

    promotions = Path(shutil.copytree(built["storage"], root / "promotions"))
    shutil.rmtree(promotions / "promotions")
    (promotions / "promotions").write_text("not a folder")
    paths["promotions"] = {"storage": promotions}
    cases["promotions"] = ("rollback", "--version", built["version"], "--storage", str(promotions)), None

    started = {name: (argv, start_console(*argv, limit_file_size=limit)) for name, (argv, limit) in cases.items()}
    done = {}
    for name, (argv, process) in started.items():
        stdout, stderr = process.communicate(timeout=180)
        done[name] = (subprocess.CompletedProcess(argv, process.returncode, stdout, stderr), paths[name])
    return done


def no_leftovers(folder: Path, *names: str) -> None:
    """Neither the output nor a temp file is left in `folder`."""
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    for name in names:
        assert not (folder / name).exists()


def refuse_to_score(monkeypatch) -> None:
    """Fail the test if scoring starts: the output checks must come first."""

    def scoring_started(*args, **kwargs):
        raise AssertionError("scoring started before the output was checked")

    monkeypatch.setattr(cli, "score_with_production", scoring_started)


# ---- tmpfs: a real full disk and a read-only folder, when this machine lets us mount ------------


def mount_tmpfs(target: Path, options: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def tmpfs(tmp_path):
    mounted = []

    def make(name: str, options: str) -> Path:
        target = tmp_path / name
        if not mount_tmpfs(target, options):
            pytest.skip(
                f"mount -t tmpfs -o {options} is not permitted here (uid {os.getuid()}): "
                "the full disk is covered by the file-size limit test only"
            )
        mounted.append(target)
        return target

    yield make
    for target in mounted:
        subprocess.run(["umount", str(target)], check=True)


# ---- 6. predict: bad input ---------------------------------------------------------------------


def test_garbage_bytes_as_csv_input_console_script(console_runs):
    done, paths = console_runs["garbage"]
    assert done.returncode == 2
    message = one_error_line(done.stderr, "predict")
    assert message.startswith(f"cannot read input {paths['input']} as csv: ") and "codec can't decode" in message
    assert not paths["output"].exists()
    no_leftovers(paths["output"].parent)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def ragged_csv(frame: pd.DataFrame) -> bytes:
    return (frame.head(3).to_csv(index=False) + ",".join(["1"] * 17) + "\n").encode()


def corrupt_middle(data: bytes) -> bytes:
    middle = len(data) // 3
    return data[:middle] + b"\0" * 500 + data[middle + 500 :]


@pytest.mark.parametrize(
    "name, make, expected",
    [
        ("garbage.parquet", lambda rows: np.random.default_rng(1).bytes(4096), "as parquet: "),
        ("ragged.csv", ragged_csv, "as csv: Error tokenizing data. C error: Expected 15 fields in line 5, saw 17"),
        ("corrupt.parquet", lambda rows: corrupt_middle(parquet_bytes(rows)), "as parquet: "),
        ("truncated.parquet", lambda rows: parquet_bytes(rows)[: len(parquet_bytes(rows)) // 2],
         "as parquet: Could not open Parquet input source '<Buffer>': Parquet magic bytes not found in footer"),
        ("empty.csv", lambda rows: b"", "is empty (not even a header row)"),
        ("header_only.csv", lambda rows: rows.head(0).to_csv(index=False).encode(), "the table has no rows"),
        ("no_occupation.csv", lambda rows: rows.drop(columns="occupation").to_csv(index=False).encode(),
         "missing required column(s): occupation"),
    ],
)
def test_unreadable_or_invalid_input(capsys, storage, built, tmp_path, name, make, expected):
    path = tmp_path / name
    path.write_bytes(make(built["rows"]))
    code, err = main(capsys, "predict", "--input", str(path), "--output", str(tmp_path / "out.csv"),
                     "--storage", str(storage))
    assert code == 2 and expected in one_error_line(err, "predict")
    no_leftovers(tmp_path, "out.csv")


def test_directory_or_missing_input(capsys, storage, tmp_path):
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    out = ["--output", str(tmp_path / "out.csv"), "--storage", str(storage)]
    code, err = main(capsys, "predict", "--input", str(folder), *out)
    assert code == 2 and one_error_line(err, "predict") == f"input {folder} is a folder, not a csv file"
    missing = tmp_path / "missing.parquet"
    code, err = main(capsys, "predict", "--input", str(missing), *out)
    assert code == 2 and one_error_line(err, "predict") == f"input {missing} not found"
    code, err = main(capsys, "predict", "--input", str(tmp_path / "rows.xlsx"), *out)
    assert code == 2 and "cannot tell the format of" in one_error_line(err, "predict")
    no_leftovers(tmp_path, "out.csv")


# ---- 6. predict: the output, checked before scoring and written atomically -----------------------


@pytest.mark.parametrize("case", ["missing folder", "folder is a file", "output is a folder", "same file", "symlink"])
def test_output_refused_before_scoring(capsys, monkeypatch, storage, rows_csv, tmp_path, case):
    refuse_to_score(monkeypatch)
    before = rows_csv.read_bytes()
    if case == "missing folder":
        output, expected = tmp_path / "missing" / "out.csv", f"output folder {tmp_path / 'missing'} does not exist"
    elif case == "folder is a file":
        (tmp_path / "file").write_text("x")
        output, expected = tmp_path / "file" / "out.csv", f"output folder {tmp_path / 'file'} is not a folder"
    elif case == "output is a folder":
        output = tmp_path / "out.csv"
        output.mkdir()
        expected = f"output {output} is a folder, not a file"
    elif case == "same file":
        output, expected = rows_csv, f"output {rows_csv} is the input: refusing to overwrite it; choose another output"
    else:
        output = tmp_path / "alias.csv"
        output.symlink_to(rows_csv)
        expected = f"output {output} is the input: refusing to overwrite it; choose another output"
    code, err = main(capsys, "predict", "--input", str(rows_csv), "--output", str(output), "--storage", str(storage))
    assert code == 2 and one_error_line(err, "predict") == expected
    assert rows_csv.read_bytes() == before
    no_leftovers(rows_csv.parent)


def test_unwritable_output_folder_is_refused_before_scoring(capsys, monkeypatch, storage, rows_csv, tmp_path, tmpfs):
    if os.getuid() == 0:  # root writes through permission bits: a read-only mount is what stops it
        folder = tmpfs("readonly", "ro,size=64k")
        reason = "Read-only file system"
    else:
        folder = tmp_path / "readonly"
        folder.mkdir()
        folder.chmod(0o555)
        reason = "Permission denied"
    refuse_to_score(monkeypatch)
    output = folder / "out.csv"
    code, err = main(capsys, "predict", "--input", str(rows_csv), "--output", str(output), "--storage", str(storage))
    assert code == 2 and one_error_line(err, "predict") == f"cannot write to output folder {folder}: {reason}"
    no_leftovers(folder, "out.csv")


def test_file_size_limit_while_writing_console_script(console_runs):
    """RLIMIT_FSIZE below the output's size: the write fails with EFBIG; an existing output is kept
    as it was and no temp file is left."""
    done, paths = console_runs["file_size"]
    output = paths["output"]
    assert done.returncode == 2
    assert one_error_line(done.stderr, "predict") == (
        f"cannot write output {output}: {os.strerror(errno.EFBIG)}; nothing written"
    )
    assert output.read_text() == "previous output\n"
    assert sorted(p.name for p in output.parent.iterdir()) == ["scored.csv"]  # no temp file


def test_full_disk_while_writing(capsys, storage, rows_csv, tmpfs):
    """A 1 MiB tmpfs nearly full: ENOSPC mid-write leaves no partial output and no temp file."""
    disk = tmpfs("disk", "size=1m")
    (disk / "filler").write_bytes(b"\0" * (1024 * 1024 - 128 * 1024))
    output = disk / "scored.csv"
    code, err = main(capsys, "predict", "--input", str(rows_csv), "--output", str(output), "--storage", str(storage))
    assert code == 2
    expected = f"cannot write output {output}: {os.strerror(errno.ENOSPC)}; nothing written"
    assert one_error_line(err, "predict") == expected
    no_leftovers(disk, "scored.csv")
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_successful_predict_replaces_the_output_atomically(capsys, storage, rows_csv, tmp_path, built):
    output = tmp_path / "scored.parquet"
    output.write_bytes(b"old")
    code, err = main(capsys, "predict", "--input", str(rows_csv), "--output", str(output), "--storage", str(storage))
    assert code == 0, err
    scored = pd.read_parquet(output)
    assert len(scored) == ROWS and scored[PROBABILITY].notna().all()
    assert oct(output.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())
    no_leftovers(tmp_path)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.gcp
def test_gs_output_is_one_object_and_a_missing_bucket_is_one_line(capsys, gcs_emulator, built, rows_csv):
    """On gs:// the output is published by one upload: no temp object, nothing on failure."""
    from google.cloud import storage as gcs

    bucket = gcs.Client().create_bucket("contract-out")
    storage = ["--storage", str(built["storage"])]
    output = "gs://contract-out/scored/out.parquet"
    code, err = main(capsys, "predict", "--input", str(rows_csv), "--output", output, *storage)
    assert code == 0, err
    assert [blob.name for blob in bucket.list_blobs()] == ["scored/out.parquet"]
    assert len(pd.read_parquet(io.BytesIO(bucket.blob("scored/out.parquet").download_as_bytes()))) == ROWS
    code, err = main(capsys, "predict", "--input", str(rows_csv), "--output", "gs://no-such-bucket/o.csv", *storage)
    message = one_error_line(err, "predict")
    assert code == 2
    assert message.startswith("cannot write output gs://no-such-bucket/o.csv: GCS bucket 'no-such-bucket'")


# ---- 6. numeric values outside what training saw or physically possible --------------------------


def test_impossible_and_out_of_range_values_are_flagged_or_refused(capsys, storage, built, tmp_path):
    rows = built["rows"].head(8).copy()
    rows.loc[0, "age"] = -1
    rows.loc[1, "age"] = 121
    rows.loc[2, "hours_per_week"] = -5
    rows.loc[3, "hours_per_week"] = 169
    rows.loc[4, "capital_gain"] = -1
    rows.loc[5, "capital_loss"] = -2
    rows.loc[6, "capital_gain"] = 10**7  # possible, but beyond the 99,999 training saw
    path, output = tmp_path / "rows.parquet", tmp_path / "out.csv"
    rows.to_parquet(path, index=False)
    args = ["predict", "--input", str(path), "--storage", str(storage)]
    code, err = main(capsys, *args, "--output", str(output))
    assert code == 0, err
    flags = pd.read_csv(output, keep_default_na=False)[FLAG].tolist()
    assert flags == [
        "impossible age=-1",
        "impossible age=121",
        "impossible hours_per_week=-5",
        "impossible hours_per_week=169",
        "impossible capital_gain=-1",
        "impossible capital_loss=-2",
        "outside training range capital_gain=10000000",
        "",
    ]
    assert "1 row(s) with capital_gain outside the model's training range 0..99999" in err
    assert "2 row(s) with an impossible age (possible: 0..120)" in err

    strict = tmp_path / "strict.csv"
    code, err = main(capsys, *args, "--output", str(strict), "--strict")
    message = one_error_line(err, "predict")
    assert code == 2 and "2 row(s) with an impossible age (possible: 0..120)" in message
    assert "capital_gain outside the model's training range" in message
    no_leftovers(tmp_path, "strict.csv")


# ---- 6. the registry: no model, invalid or dangling pointer, promotions/ not a folder -------------


def break_pointer(storage: Path, how: str, version: str) -> None:
    pointer = storage / "production.json"
    if how == "garbage":
        pointer.write_bytes(b"\x00\xffnot json")
    elif how == "truncated":
        pointer.write_bytes(pointer.read_bytes()[:20])
    elif how == "not an object":
        pointer.write_text("[]\n")
    elif how == "no version":
        pointer.write_text('{"action": "promote"}\n')
    elif how == "dangling":
        shutil.rmtree(storage / "models" / version)
    elif how == "unknown version":
        pointer.write_text(pointer.read_text().replace(version, "0123456789abcdef"))
    elif how == "folder":
        pointer.unlink()
        pointer.mkdir()


POINTER_FAULTS = ["garbage", "truncated", "not an object", "no version", "dangling", "unknown version", "folder"]


@pytest.mark.parametrize("how", POINTER_FAULTS)
def test_invalid_or_dangling_production_pointer(capsys, storage, built, rows_csv, tmp_path, how):
    break_pointer(storage, how, built["version"])
    out = tmp_path / "out.csv"
    for command in (
        ["predict", "--input", str(rows_csv), "--output", str(out)],
        ["history"],
        ["rollback", "--version", built["version"]],
    ):
        code, err = main(capsys, *command, "--storage", str(storage))
        message = one_error_line(err, command[0])
        assert code == 2 and f"{storage / 'production.json'}" in message, message
        if how in ("dangling", "unknown version"):
            assert "names an unusable version" in message
    no_leftovers(tmp_path, "out.csv")


def test_invalid_pointer_console_script(console_runs):
    done, paths = console_runs["pointer"]
    message = one_error_line(done.stderr, "history")
    assert done.returncode == 2 and message.startswith(f"{paths['storage'] / 'production.json'} is not valid JSON")


def test_promotions_not_a_folder_console_script(console_runs):
    done, paths = console_runs["promotions"]
    assert done.returncode == 2 and f"{paths['storage'] / 'promotions'}" in one_error_line(done.stderr, "rollback")
    assert (paths["storage"] / "promotions").read_text() == "not a folder"


def test_promotions_not_a_folder_rollback_moves_nothing(console_runs, built):
    _, paths = console_runs["promotions"]
    assert (paths["storage"] / "production.json").read_bytes() == (built["storage"] / "production.json").read_bytes()


def test_promotions_not_a_folder_history(capsys, storage, built):
    # A second record, so that history must read the first one from promotions/ (the pointer
    # carries the current record itself).
    assert main(capsys, "rollback", "--version", built["version"], "--storage", str(storage))[0] == 0
    shutil.rmtree(storage / "promotions")
    (storage / "promotions").write_text("not a folder")
    code, err = main(capsys, "history", "--storage", str(storage))
    assert code == 2 and f"{storage / 'promotions'}" in one_error_line(err, "history")


@pytest.mark.parametrize("record", [b"[1, 2]\n", b'{"action": "promote"}\n'])
def test_a_damaged_promotion_record_is_refused_naming_it(capsys, tmp_path, record):
    """A record in the chain that is JSON but not a record: the user's error (exit 2, its path),
    not an internal error. On a copy of release 797e3e6's storage (promote, promote, rollback)."""
    storage = Path(shutil.copytree(RELEASE_797E3E6_STORAGE, tmp_path / "census_storage"))
    damaged = storage / "promotions" / "20261204T143206.246976Z-promote-fff3ddf502cafbe5-81ecdefa.json"
    damaged.write_bytes(record)
    code, err = main(capsys, "history", "--storage", str(storage))
    assert code == 2
    assert one_error_line(err, "history") == f"{damaged} is not a promotion record (no action, version and time)"


# Release 797e3e6's promotion history: promote, promote, rollback (production.json holds the last).
RELEASE_FIRST_RECORD = "promotions/20261204T143154.803877Z-promote-c6074c565a7ed478-e62e8c0d.json"
RELEASE_SECOND_RECORD = "promotions/20261204T143206.246976Z-promote-fff3ddf502cafbe5-81ecdefa.json"


@pytest.mark.parametrize("missing", ["time", "action"])
def test_a_production_pointer_without_time_or_action_is_refused_by_history_naming_it(capsys, tmp_path, missing):
    """production.json is validated for its version when read; history shows its time and action
    too: without them, the user's error (exit 2, one line naming the file), not an internal error."""
    storage = Path(shutil.copytree(RELEASE_797E3E6_STORAGE, tmp_path / "census_storage"))
    pointer = json.loads((storage / "production.json").read_text())
    del pointer[missing]
    (storage / "production.json").write_text(json.dumps(pointer))
    code, err = main(capsys, "history", "--storage", str(storage))
    assert code == 2
    assert one_error_line(err, "history") == (
        f"{storage}/production.json is not a promotion record (no action, version and time)"
    )


def test_a_record_from_before_the_chain_without_a_time_is_refused_by_history_naming_it(capsys, tmp_path):
    """The oldest records are read from the folder (they name no predecessor) and sorted by time:
    one without a time is refused, naming it."""
    storage = Path(shutil.copytree(RELEASE_797E3E6_STORAGE, tmp_path / "census_storage"))
    first = storage / RELEASE_FIRST_RECORD
    record = json.loads(first.read_text())
    for key in ("previous_record", "record", "time"):
        record.pop(key, None)
    first.write_text(json.dumps(record))
    second = storage / RELEASE_SECOND_RECORD
    chained = json.loads(second.read_text())
    chained["previous_record"] = None  # the first chained record, on top of the older one
    second.write_text(json.dumps(chained))
    code, err = main(capsys, "history", "--storage", str(storage))
    assert code == 2
    assert one_error_line(err, "history") == f"{first} is not a promotion record (no action, version and time)"


def test_history_shows_metrics_that_are_not_numbers_as_nan(capsys, tmp_path):
    """Metrics are shown, not judged: a record whose metrics are missing, not numbers or not an
    object is listed with nan, never an internal error."""
    storage = Path(shutil.copytree(RELEASE_797E3E6_STORAGE, tmp_path / "census_storage"))
    pointer = json.loads((storage / "production.json").read_text())
    pointer["metrics"] = {"cv_accuracy": "high", "holdout_accuracy": None}
    (storage / "production.json").write_text(json.dumps(pointer))
    previous = storage / pointer["previous_record"]
    previous.write_text(json.dumps({**json.loads(previous.read_text()), "metrics": [0.8]}))
    assert cli.main(["history", "--storage", str(storage)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines[:3]] == ["promote", "promote", "rollback"]
    assert "cv=nan  holdout=nan" in lines[1] and "cv=nan  holdout=nan" in lines[2]
    assert "cv=0.8" in lines[0] and lines[3] == "production: c6074c565a7ed478"


def test_no_model_unknown_version_and_bad_storage(capsys, storage, rows_csv, tmp_path):
    out = ["--output", str(tmp_path / "out.csv")]
    code, err = main(capsys, "predict", "--input", str(rows_csv), *out, "--storage", str(tmp_path / "empty"))
    assert code == 2 and "no production model" in one_error_line(err, "predict")
    code, err = main(capsys, "rollback", "--version", "nope", "--storage", str(storage))
    assert code == 2 and "never promoted" in one_error_line(err, "rollback")
    code, err = main(capsys, "history", "--storage", "ftp://example.org/census")
    assert code == 2 and "ftp://example.org/census" in one_error_line(err, "history")
    no_leftovers(tmp_path, "out.csv")


def test_corrupt_model_file(capsys, storage, built, rows_csv, tmp_path):
    model = storage / "models" / built["version"] / "model.txt"
    model.write_bytes(model.read_bytes()[:200])
    code, err = main(capsys, "predict", "--input", str(rows_csv), "--output", str(tmp_path / "o.csv"),
                     "--storage", str(storage))
    assert code == 2 and one_error_line(err, "predict").startswith(f"{model} is not the file that was committed")
    no_leftovers(tmp_path, "o.csv")


def test_usage_errors_are_one_line_too(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["predict", "--input", "x.csv"])
    assert exit_info.value.code == 2
    assert one_error_line(capsys.readouterr().err, "predict").startswith(
        "the following arguments are required: --output"
    )


def test_an_internal_error_is_one_line_with_status_70_and_debug_shows_the_traceback(capsys, monkeypatch, tmp_path):
    """A programming error (here: the registry helper returning nothing) is not reported as the
    user's: "internal error", status 70; --debug prints the traceback before the same line."""
    monkeypatch.setattr(cli, "registry", lambda *args, **kwargs: None)
    expected = (
        "census-assets history: internal error: AttributeError: 'NoneType' object has no attribute 'pointer' "
        "(a bug in census-assets; --debug shows the traceback)"
    )
    code, err = main(capsys, "history", "--storage", str(tmp_path))
    assert code == cli.EX_SOFTWARE == 70
    assert err.splitlines() == [expected]
    code, err = main(capsys, "history", "--storage", str(tmp_path), "--debug")
    lines = err.strip().splitlines()
    assert code == 70 and lines[0] == "Traceback (most recent call last):" and lines[-1] == expected
    assert "AttributeError: 'NoneType' object has no attribute 'pointer'" in lines[-2]


# ---- issue 16: what prune refuses ---------------------------------------------------------------


@pytest.fixture
def small_storage(tmp_path) -> Path:
    """Two commits of one frame: prune --keep 1 would delete the first."""
    root = tmp_path / "census_storage"
    store = LocalObjectStore(root)
    for run in ("r1", "r2"):
        commit(store, ArtifactKey("t"), run, codec_for(pd.DataFrame).encode(pd.DataFrame({"a": [run]})))
    return root


def prune_cli(capsys, storage: str, *options: str) -> tuple[int, str, str]:
    code = cli.main(["prune", "--storage", storage, *options])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", ["missing folder", "a file", "relative path", "no census storage"])
def test_prune_refuses_a_storage_that_is_not_one(capsys, tmp_path, monkeypatch, case):
    """16.10: a typo in --storage is an error, never "deleted 0" and exit 0."""
    monkeypatch.chdir(tmp_path)
    if case == "missing folder":
        storage, expected = str(tmp_path / "missing"), f"storage {tmp_path / 'missing'}: no such folder"
    elif case == "a file":
        (tmp_path / "file").write_text("x")
        storage, expected = str(tmp_path / "file"), f"storage {tmp_path / 'file'}: a file, not a folder"
    elif case == "relative path":
        (tmp_path / "relative" / "pointers").mkdir(parents=True)
        storage, expected = "relative", "--storage relative is a relative path: give the storage's absolute path"
    else:
        (tmp_path / "empty").mkdir()
        storage = str(tmp_path / "empty")
        expected = f"{tmp_path / 'empty'} holds no census storage (no pointers/, runs/ or models/)"
    code, out, err = prune_cli(capsys, storage)
    assert code == 2 and one_error_line(err, "prune") == expected and out == ""


def test_prune_refuses_a_pointer_that_is_not_one(capsys, small_storage):
    """16.10: a pointer holding [1, 2] is a corrupt artifact named by its path (exit 2), not an
    unexpected TypeError; nothing is deleted."""
    before = tree(small_storage)
    pointer = small_storage / "pointers" / "t.json"
    pointer.write_text("[1, 2]\n")
    code, out, err = prune_cli(capsys, str(small_storage), "--keep", "1")
    assert code == 2 and out == ""
    assert one_error_line(err, "prune") == f"{pointer} is not an artifact pointer (no list of run ids)"
    assert tree(small_storage) == {**before, "pointers/t.json": b"[1, 2]\n"}


@pytest.mark.parametrize("grace", ["-1", "-0.5", "nan", "inf", "-inf"])
def test_prune_refuses_a_grace_period_that_is_negative_or_not_finite(capsys, small_storage, grace):
    """16.2: --grace-hours must be a finite number of hours, at least 0; refused before anything
    is deleted."""
    before = tree(small_storage)
    code, out, err = prune_cli(capsys, str(small_storage), "--keep", "1", f"--grace-hours={grace}")
    assert code == 2 and out == ""
    assert one_error_line(err, "prune") == (
        f"--grace-hours must be a finite number of hours, at least 0, got {float(grace)}"
    )
    assert tree(small_storage) == before
    code, out, err = prune_cli(capsys, str(small_storage), "--keep", "1", "--grace-hours", "0")
    assert code == 0 and out.startswith("deleted 2 run-scoped objects"), err


# ---- 7. bad training data is refused at raw_census, before anything is written ------------------


def never_married(frame: pd.DataFrame) -> pd.Series:
    return frame["marital_status"].str.strip() == "Never-married"


def few_positives(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame[~never_married(frame)], frame[never_married(frame)].head(3)])


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda f: f.assign(occupation=None),
         "no row has every value, so cleaning would drop all 3000 rows (missing: occupation in 3000 of 3000 rows)"),
        (lambda f: f.assign(marital_status=" Divorced"),
         "only one class of the target never_married (marital_status == 'Never-married'): every one of the "
         "3000 row(s) cleaning keeps has never_married=0"),
        (few_positives, "only 3 distinct row(s) with never_married=1 after cleaning"),
        (lambda f: f.assign(age=f["age"].where(f.index != f.index[0], 150)),
         "1 row(s) with an impossible age (possible: 0..120), e.g. 150"),
    ],
    ids=["occupation_all_missing", "one_class", "fewer_than_n_splits", "impossible_age"],
)
def test_raw_census_refuses_data_later_steps_cannot_use(built, bundled_raw, tmp_path, make, reason):
    storage = Path(shutil.copytree(built["storage"], tmp_path / "storage"))
    before = tree(storage)
    source = tmp_path / "bad.parquet"
    make(bundled_raw.sample(3000, random_state=0)).to_parquet(source, index=False)
    result = run_graph(storage, source)
    assert not result.success
    message = step_failure_message(result, "raw_census")
    assert message.startswith(f"{source}: census source cannot train a model: ") and reason in message, message
    assert result.get_asset_materialization_events() == []
    assert tree(storage) == before  # nothing committed, the previous outputs untouched
