"""`census-assets`: score new rows with the production model, inspect promotions, roll back.

  census-assets predict --input new.csv --output scored.parquet [--strict]
  census-assets history
  census-assets rollback --version <version> [--reason TEXT]
  census-assets prune [--keep N] [--grace-hours H]

The storage location is CENSUS_STORAGE_URL (as for the pipeline) unless --storage is given.
Every failure is one line on stderr, `census-assets <command>: error: <what went wrong>`, with exit
status 2 and no traceback. The output is written atomically (a temp file in its folder renamed into
place, or one upload on gs://), so a failed run leaves neither a partial output nor a temp file.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile

import pandas as pd

from census_assets.artifacts import ArtifactStore, prune
from census_assets.core.registry import Registry, RegistryError
from census_assets.core.scoring import FLAG, PROBABILITY, ScoringError
from census_assets.predict import score_with_production
from census_assets.settings import GCP_CREDENTIALS, Environment, SettingsError, load_environment
from census_assets.sources.common import SourceError
from census_assets.sources.files import file_format, read_file

GCS_SCHEMES = ("gs://", "gcs://")


class CliError(Exception):
    """Reported as `census-assets <command>: error: <message>`, exit status 2."""


def describe(error: BaseException) -> str:
    """An exception as one line that names the problem (and the file, for OS errors)."""
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror + (f": {error.filename}" if error.filename else "")
    elif isinstance(error, KeyError):
        text = f"missing key {error}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def environment() -> Environment:
    return load_environment()


def store(base_url: str, env: Environment) -> ArtifactStore:
    # The pipeline's own settings: on gs://, the same retry deadline and key.
    return ArtifactStore(
        base_url,
        retry_deadline=env.gcs_retry_deadline,
        gcp_credentials=os.environ.get(GCP_CREDENTIALS) or None,
    )


def storage_of(storage: str | None, env: Environment | None = None) -> ArtifactStore:
    """--storage, else CENSUS_STORAGE_URL."""
    env = env or environment()
    return store(storage or env.storage_url, env)


def registry(storage: str | None, env: Environment | None = None) -> Registry:
    return Registry(storage_of(storage, env))


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def local_path(path: str) -> str:
    return os.path.abspath(path.removeprefix("file://"))


def read_input(path: str) -> pd.DataFrame:
    kind = file_format(path)
    if not is_remote(path):
        local = local_path(path)
        if os.path.isdir(local):
            raise CliError(f"input {path} is a folder, not a {kind} file")
        if not os.path.exists(local):
            raise CliError(f"input {path} not found")
    try:
        return read_file(path)
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
    """The output file, prepared before any scoring and written atomically.

    Locally a temp file is created in the output's folder at once, so a missing or unwritable folder
    fails before the work; `write` fills it, fsyncs and renames it into place, and every failure
    removes it. On gs:// the object is published by one upload.
    """

    def __init__(self, path: str, input_path: str):
        self.path, self.temporary = path, None
        file_format(path)  # an unknown output format is refused before any work
        if is_remote(path):
            if path.rstrip("/") == input_path.rstrip("/"):
                raise CliError(f"output {path} is the input: refusing to overwrite it; choose another output")
            return
        self.target = local_path(path)
        if not is_remote(input_path) and _same_file(local_path(input_path), self.target):
            raise CliError(f"output {path} is the input: refusing to overwrite it; choose another output")
        if os.path.isdir(self.target):
            raise CliError(f"output {path} is a folder, not a file")
        folder = os.path.dirname(self.target)
        if not os.path.exists(folder):
            raise CliError(f"output folder {folder} does not exist")
        if not os.path.isdir(folder):
            raise CliError(f"output folder {folder} is not a folder")
        try:
            name = os.path.basename(self.target)
            fd, self.temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
            os.close(fd)
        except OSError as error:
            raise CliError(f"cannot write to output folder {folder}: {error.strerror or describe(error)}") from None

    def write(self, data: bytes, env: Environment) -> None:
        if self.temporary is None:
            folder, _, name = self.path.rpartition("/")
            try:
                store(folder, env).write_bytes(name, data)
            except (OSError, ValueError) as error:
                raise CliError(f"cannot write output {self.path}: {describe(error)}") from None
            return
        try:
            with open(self.temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.temporary, 0o666 & ~umask)  # mkstemp's 0600 -> what open() would give
            os.replace(self.temporary, self.target)
            self.temporary = None
        except OSError as error:
            self.discard()
            reason = error.strerror or describe(error)
            raise CliError(f"cannot write output {self.path}: {reason}; nothing written") from None

    def discard(self) -> None:
        if self.temporary is not None:
            with contextlib.suppress(OSError):  # never mask the error that got us here
                os.unlink(self.temporary)
            self.temporary = None


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
    output = Output(args.output, args.input)
    try:
        pointer, scored = score_with_production(read_input(args.input), registry(args.storage, env), args.strict)
        frame = scored.frame
        output.write(encode_output(frame, args.output), env)
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


def history(args: argparse.Namespace) -> None:
    reg = registry(args.storage)
    current = reg.pointer()
    lines = []
    for record in reg.history():
        metrics = record.get("metrics") or {}
        lines.append(
            f"{record['time']}  {record['action']:<8}  {record['version']}  "
            f"cv={metrics.get('cv_accuracy', float('nan')):.4f}  "
            f"holdout={metrics.get('holdout_accuracy', float('nan')):.4f}  "
            f"run={record.get('run_id') or '-'}"
        )
    lines.append(f"production: {current['version'] if current else 'none'}")
    print("\n".join(lines))  # nothing printed unless every record could be read


def rollback(args: argparse.Namespace) -> None:
    record = registry(args.storage).rollback(args.version, reason=args.reason)
    print(f"production now {record['version']} (was {record['previous_version']})")


def prune_runs(args: argparse.Namespace) -> None:
    if args.keep < 1:
        raise CliError(f"--keep must be at least 1, got {args.keep}")
    deleted = prune(storage_of(args.storage), args.keep, args.grace_hours * 3600)
    print(f"deleted {len(deleted)} run-scoped objects; kept the newest {args.keep} commits of every asset")


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # A usage error is one line too (argparse would print the usage first), status 2.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def rescore(args: argparse.Namespace) -> None:
    """Queue runs that re-score the batches scored by another model than production's
    (docs/batches.md): a `dagster job backfill` of score_batches on the instance at DAGSTER_HOME."""
    from census_assets.automation.inbox import rescore as queue_rescore

    production = registry(args.storage).production()["version"]
    location = ["-w", args.workspace] if args.workspace else ["-m", "census_assets"]
    try:
        queue_rescore(production, args.all, location, dry_run=args.dry_run)
    except RuntimeError as error:
        raise CliError(str(error)) from None


def parser() -> argparse.ArgumentParser:
    main = Parser(prog="census-assets", description=__doc__.split("\n")[0])
    commands = main.add_subparsers(dest="command", required=True, parser_class=Parser)

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--storage", help="storage URL (default: CENSUS_STORAGE_URL)")
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
    command("history", history, "List promotions and rollbacks, oldest first.")
    r = command("rollback", rollback, "Point production at an earlier promoted version.")
    r.add_argument("--version", required=True, help="a version listed by `census-assets history`")
    r.add_argument("--reason", default="", help="recorded in the promotion history")
    k = command("prune", prune_runs, "Delete run-scoped artifacts that no pointer keeps (the registry stays).")
    k.add_argument("--keep", type=int, default=5, help="materialisations kept per asset and partition")
    k.add_argument(
        "--grace-hours", type=float, default=24.0, help="uncommitted files younger than this may be a running run's"
    )
    s = command("rescore", rescore, "Re-score the batches scored by another model than production's (DAGSTER_HOME).")
    s.add_argument("--all", action="store_true", help="every batch, not only those behind production")
    s.add_argument("--workspace", help="the deployment's workspace.yaml (default: the module census_assets)")
    s.add_argument("--dry-run", action="store_true", help="print the batches and the dagster commands only")
    return main


# What a command can fail with, each reported as one line: bad input or settings, a missing or
# invalid registry (RegistryError), storage (StorageError is an OSError; corrupt JSON a ValueError).
EXPECTED_ERRORS = (CliError, RegistryError, SettingsError, SourceError, ScoringError, OSError, ValueError, KeyError)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.handler(args)
    except EXPECTED_ERRORS as error:
        message = describe(error)
    except Exception as error:  # the contract: one line, never a traceback
        message = f"unexpected {type(error).__name__}: {describe(error)}"
    else:
        return 0
    print(f"census-assets {args.command}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
