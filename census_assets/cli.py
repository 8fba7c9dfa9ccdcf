"""`census-assets`: score new rows with the production model, inspect promotions, roll back,
prune old run files, re-score batches.

  census-assets predict --input new.csv --output scored.parquet [--strict]
  census-assets history
  census-assets rollback --version <version> [--reason TEXT]
  census-assets prune [--keep N] [--grace-hours H]
  census-assets rescore [--all]

The storage location is CENSUS_STORAGE_URL (as for the pipeline) unless --storage is given.
A failure the user can act on (bad input or settings, storage, registry) is one line on stderr,
`census-assets <command>: error: <what went wrong>`, with exit status 2. Anything else is a bug in
this program: one line `census-assets <command>: internal error: ...`, exit status 70
(EX_SOFTWARE); `--debug` shows its traceback. The output is written atomically (a temp file in its
folder renamed into place, or one upload on gs://), so a failed run leaves neither a partial output
nor a temp file.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import traceback

import pandas as pd

from census_assets.core.cleaning import CleaningError
from census_assets.core.explanations import INPUT_COLUMNS
from census_assets.core.schema import SchemaError
from census_assets.core.scoring import FLAG, PROBABILITY, ScoringError
from census_assets.core.validation import SourceValidationError
from census_assets.predict import score_with_production
from census_assets.settings import Environment, SettingsError, load_environment
from census_assets.sources.common import SourceError
from census_assets.sources.files import file_format, is_remote, read_file
from census_assets.storage.builds import forget
from census_assets.storage.cards import card_text
from census_assets.storage.commits import check_grace, check_is_storage, prune
from census_assets.storage.errors import StorageError
from census_assets.storage.objects import LocalObjectStore, ObjectStore, PendingWrite, open_store, split_url
from census_assets.storage.registry import Registry

EX_SOFTWARE = 70  # sysexits.h: an internal software error


class CliError(Exception):
    """Reported as `census-assets <command>: error: <message>`, exit status 2."""


def describe(error: BaseException) -> str:
    """An exception as one line that names the problem (and the file, for OS errors)."""
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror + (f": {error.filename}" if error.filename else "")
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def os_reason(error: OSError) -> str:
    """The operating system's words for an OS error ("No space left on device")."""
    return os.strerror(error.errno) if error.errno else describe(error)


def environment() -> Environment:
    return load_environment()


def storage_of(storage: str | None, env: Environment | None = None) -> ObjectStore:
    """--storage, else CENSUS_STORAGE_URL; on gs:// with the pipeline's retry deadline and key."""
    env = env or environment()
    url = storage or env.storage_url
    return open_store(url, retry_deadline=env.gcs_retry_deadline, credentials=env.gcp_credentials)


def registry(storage: str | None, env: Environment | None = None) -> Registry:
    return Registry(storage_of(storage, env))


def local_path(path: str) -> str:
    return os.path.abspath(path.removeprefix("file://"))


def read_input(path: str, env: Environment) -> pd.DataFrame:
    kind = file_format(path)
    if not is_remote(path):
        local = local_path(path)
        if os.path.isdir(local):
            raise CliError(f"input {path} is a folder, not a {kind} file")
        if not os.path.exists(local):
            raise CliError(f"input {path} not found")
    try:
        return read_file(path, env.gcp_credentials)
    except pd.errors.EmptyDataError:
        raise CliError(f"input {path} is empty (not even a header row)") from None
    except (SourceError, CliError):
        raise
    except (OSError, ValueError, UnicodeError) as error:
        # Garbage bytes, a ragged CSV, a truncated or corrupt Parquet file: pandas and pyarrow raise
        # ValueError subclasses (ParserError, ArrowInvalid, UnicodeDecodeError) or OSError.
        raise CliError(f"cannot read input {path} as {kind}: {describe(error)}") from None


def encode_output(frame: pd.DataFrame, path: str) -> bytes:
    if file_format(path) == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()
    return frame.to_csv(index=False).encode()


class Output:
    """The output file, reserved before any scoring and written atomically through the storage
    layer's one atomic write: locally a temp file in the output's folder at once, so a missing or
    unwritable folder fails before the work; on gs:// one upload."""

    def __init__(self, path: str, input_path: str, env: Environment):
        self.path = path
        file_format(path)  # an unknown output format is refused before any work
        if is_remote(path):
            if path.rstrip("/") == input_path.rstrip("/"):
                raise CliError(f"output {path} is the input: refusing to overwrite it; choose another output")
            folder, name = split_url(path)
            self.pending: PendingWrite = storage_of(folder, env).reserve(name)
            return
        target = local_path(path)
        if not is_remote(input_path) and _same_file(local_path(input_path), target):
            raise CliError(f"output {path} is the input: refusing to overwrite it; choose another output")
        if os.path.isdir(target):
            raise CliError(f"output {path} is a folder, not a file")
        folder = os.path.dirname(target)
        if not os.path.exists(folder):
            raise CliError(f"output folder {folder} does not exist")
        if not os.path.isdir(folder):
            raise CliError(f"output folder {folder} is not a folder")
        try:
            self.pending = LocalObjectStore(folder).reserve(os.path.basename(target))
        except OSError as error:
            raise CliError(f"cannot write to output folder {folder}: {os_reason(error)}") from None

    def write(self, data: bytes) -> None:
        try:
            self.pending.commit(data)
        except OSError as error:
            reason = describe(error) if is_remote(self.path) else f"{os_reason(error)}; nothing written"
            raise CliError(f"cannot write output {self.path}: {reason}") from None

    def discard(self) -> None:
        self.pending.discard()


def _same_file(a: str, b: str) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def predict(args: argparse.Namespace) -> None:
    env = environment()
    file_format(args.input)
    output = Output(args.output, args.input, env)
    try:
        models = registry(args.storage, env)
        pointer, scored = score_with_production(read_input(args.input, env), models, args.strict, args.explain or 0)
        frame = scored.frame
        output.write(encode_output(frame, args.output))
    finally:
        output.discard()
    print(
        f"scored {int(frame[PROBABILITY].notna().sum())} of {len(frame)} rows with model "
        f"{pointer['version']} -> {args.output}"
    )
    if scored.missing_rows:
        print(
            f"warning: {scored.missing_rows} rows not scored (missing values); see column {FLAG}",
            file=sys.stderr,
        )
    for column, counts in scored.unseen.items():
        print(
            f"warning: unseen {column} categories scored as no known category: {counts}; "
            f"flagged in column {FLAG} (use --strict to refuse)",
            file=sys.stderr,
        )
    for line in scored.range_warnings():
        print(f"warning: {line}; scored and flagged in column {FLAG} (use --strict to refuse)", file=sys.stderr)


def shown_metric(record: dict, name: str) -> float:
    """A record's metric as history shows it: nan when missing or not a number (shown, not judged)."""
    metrics = record.get("metrics")
    value = metrics.get(name) if isinstance(metrics, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else float("nan")


def history(args: argparse.Namespace) -> None:
    reg = registry(args.storage)
    current = reg.pointer()
    lines = []
    for record in reg.history():  # each with its time, action and version (RegistryError otherwise)
        lines.append(
            f"{record['time']}  {record['action']:<8}  {record['version']}  "
            f"cv={shown_metric(record, 'cv_accuracy'):.4f}  "
            f"holdout={shown_metric(record, 'holdout_accuracy'):.4f}  "
            f"run={record.get('run_id') or '-'}"
        )
    lines.append(f"production: {current['version'] if current else 'none'}")
    print("\n".join(lines))  # nothing printed unless every record could be read


def card(args: argparse.Namespace) -> None:
    print(card_text(registry(args.storage), args.version, as_json=args.json), end="")


def reproduce(args: argparse.Namespace) -> int:
    """Exit status 0 when the rebuild is the same version, 1 when it differs."""
    from census_assets.assets.reproduction import reproduce_version  # Dagster-side: loaded only here

    report = reproduce_version(registry(args.storage), args.version)
    print("\n".join(report.lines()))
    return 0 if report.same else 1


def forget_rows(args: argparse.Namespace) -> None:
    if forget(registry(args.storage), args.version):
        print(f"removed version {args.version}'s training rows; the model stays")
    else:
        print(f"version {args.version}'s training rows were already removed")


def rollback(args: argparse.Namespace) -> None:
    record = registry(args.storage).rollback(args.version, reason=args.reason)
    print(f"production now {record['version']} (was {record['previous_version']})")


def prune_runs(args: argparse.Namespace) -> None:
    if args.keep < 1:
        raise CliError(f"--keep must be at least 1, got {args.keep}")
    try:
        grace_seconds = check_grace(args.grace_hours * 3600)
    except ValueError:
        raise CliError(f"--grace-hours must be a finite number of hours, at least 0, got {args.grace_hours}") from None
    store = storage_of(args.storage)
    if isinstance(store, LocalObjectStore):
        if not os.path.isabs(store.base_url):
            raise CliError(f"--storage {store.base_url} is a relative path: give the storage's absolute path")
        if not store.root.is_dir():
            kind = "a file, not a folder" if store.root.exists() else "no such folder"
            raise CliError(f"storage {store.base_url}: {kind}")
    check_is_storage(store)
    deleted = prune(store, args.keep, grace_seconds)
    print(f"deleted {len(deleted)} run-scoped objects; kept the newest {args.keep} commits of every asset")


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # A usage error is one line too (argparse would print the usage first), status 2.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def rescore(args: argparse.Namespace) -> None:
    """Ask the census_rescore sensor to re-score the batches scored by another model than
    production's, or every batch with --all (docs/batches.md)."""
    from census_assets.automation.rescore import request_rescore  # Dagster only for this command

    for line in request_rescore(storage_of(args.storage), everything=args.all):
        print(line)


def parser() -> argparse.ArgumentParser:
    main = Parser(prog="census-assets", description=__doc__.split("\n")[0])
    commands = main.add_subparsers(dest="command", required=True, parser_class=Parser)

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--storage", help="storage URL (default: CENSUS_STORAGE_URL)")
        sub.add_argument("--debug", action="store_true", help="on an internal error, print its traceback")
        sub.set_defaults(handler=handler)
        return sub

    p = command("predict", predict, "Score CSV/Parquet rows in the raw census schema.")
    p.add_argument("--input", required=True, help="CSV or Parquet file (local path or gs://)")
    p.add_argument("--output", required=True, help="CSV or Parquet file to write (not the input)")
    p.add_argument(
        "--strict",
        action="store_true",
        help="refuse rows with unseen categories, impossible values or values outside the training range",
    )
    p.add_argument(
        "--explain",
        type=int,
        metavar="K",
        choices=range(1, len(INPUT_COLUMNS) + 1),
        help="add each row's K input columns that pushed its score most: reason_1..K (the column), "
        "contribution_1..K (log-odds, LightGBM's pred_contrib) and value_1..K (the row's value)",
    )
    command("history", history, "List promotions and rollbacks, oldest first.")
    c = command("card", card, "Print a registry version's model card (production's by default).")
    c.add_argument("version", nargs="?", help="a version listed by `census-assets history` (default: production)")
    c.add_argument("--json", action="store_true", help="the card as JSON instead of Markdown")
    d = command(
        "reproduce", reproduce,
        "Rebuild a version from its kept training rows and recorded parameters; exit 1 when the rebuild differs.",
    )
    d.add_argument("version", help="a version listed by `census-assets history`")
    f = command("forget", forget_rows, "Remove a version's kept training rows (personal data); the model stays.")
    f.add_argument("version", help="a version listed by `census-assets history`")
    r = command("rollback", rollback, "Point production at an earlier promoted version.")
    r.add_argument("--version", required=True, help="a version listed by `census-assets history`")
    r.add_argument("--reason", default="", help="recorded in the promotion history")
    k = command("prune", prune_runs, "Delete run-scoped artifacts that no pointer keeps (the registry stays).")
    k.add_argument("--keep", type=int, default=5, help="materialisations kept per asset and partition")
    k.add_argument(
        "--grace-hours",
        type=float,
        default=24.0,
        help="a finished run's uncommitted files and abandoned temp files are kept this long (a running run's: always)",
    )
    s = command(
        "rescore",
        rescore,
        "Re-score the batches scored by another model than production's "
        "(a request the census_rescore sensor carries out, one run per batch).",
    )
    s.add_argument("--all", action="store_true", help="every batch, not only those behind production")
    return main


# What a command can fail with that the user can act on, each reported as one line with status 2:
# this project's own error types and the OS errors (storage, files) it classifies. Anything else is
# a bug: "internal error", status 70.
EXPECTED_ERRORS = (
    CliError,
    SettingsError,
    SourceError,
    SourceValidationError,
    SchemaError,
    CleaningError,
    ScoringError,
    StorageError,  # RegistryError, CorruptArtifactError, MissingArtifactError, ...
    OSError,
)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        status = args.handler(args)
    except EXPECTED_ERRORS as error:
        print(f"census-assets {args.command}: error: {describe(error)}", file=sys.stderr)
        return 2
    except Exception as error:
        if args.debug:
            traceback.print_exc()
        print(
            f"census-assets {args.command}: internal error: {type(error).__name__}: {describe(error)} "
            "(a bug in census-assets; --debug shows the traceback)",
            file=sys.stderr,
        )
        return EX_SOFTWARE
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
