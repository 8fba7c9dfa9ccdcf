"""`census-assets`: score new rows with the production model, inspect promotions, roll back.

  census-assets predict --input new.csv --output scored.parquet [--strict]
  census-assets history
  census-assets rollback --version <version> [--reason TEXT]

The storage location is CENSUS_STORAGE_URL (as for the pipeline) unless --storage is given.
Errors go to stderr with exit status 2; nothing is written on error.
"""

import argparse
import os
import sys

import pandas as pd

from census_assets.artifacts import ArtifactStore
from census_assets.core.registry import Registry, RegistryError
from census_assets.core.schema import SchemaError
from census_assets.core.scoring import FLAG, PROBABILITY, ScoringError
from census_assets.predict import score_with_production
from census_assets.settings import GCP_CREDENTIALS, SettingsError, load_environment
from census_assets.sources.common import SourceError
from census_assets.sources.files import file_format, read_file


class CliError(Exception):
    """Reported as `census-assets <command>: error: <message>`, exit status 2."""


def registry(storage: str | None) -> Registry:
    # The pipeline's own settings: the same storage and, on gs://, the same retry deadline and key.
    environment = load_environment()
    return Registry(
        ArtifactStore(
            storage or environment.storage_url,
            retry_deadline=environment.gcs_retry_deadline,
            gcp_credentials=os.environ.get(GCP_CREDENTIALS) or None,
        )
    )


def read_input(path: str) -> pd.DataFrame:
    try:
        return read_file(path)
    except pd.errors.EmptyDataError:
        raise CliError(f"input {path} is empty (not even a header row)") from None


def write_output(frame: pd.DataFrame, path: str) -> None:
    if file_format(path) == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def predict(args: argparse.Namespace) -> None:
    file_format(args.output)  # refuse an unknown output format before any work
    pointer, scored = score_with_production(read_input(args.input), registry(args.storage), strict=args.strict)
    write_output(scored.frame, args.output)
    frame = scored.frame
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


def history(args: argparse.Namespace) -> None:
    reg = registry(args.storage)
    current = reg.pointer()
    for record in reg.history():
        metrics = record.get("metrics", {})
        print(
            f"{record['time']}  {record['action']:<8}  {record['version']}  "
            f"cv={metrics.get('cv_accuracy', float('nan')):.4f}  "
            f"holdout={metrics.get('holdout_accuracy', float('nan')):.4f}  "
            f"run={record.get('run_id') or '-'}"
        )
    print(f"production: {current['version'] if current else 'none'}")


def rollback(args: argparse.Namespace) -> None:
    record = registry(args.storage).rollback(args.version, reason=args.reason)
    print(f"production now {record['version']} (was {record['previous_version']})")


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="census-assets", description=__doc__.split("\n")[0])
    commands = main.add_subparsers(dest="command", required=True)

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--storage", help="storage URL (default: CENSUS_STORAGE_URL)")
        sub.set_defaults(handler=handler)
        return sub

    p = command("predict", predict, "Score CSV/Parquet rows in the raw census schema.")
    p.add_argument("--input", required=True, help="CSV or Parquet file (local path or gs://)")
    p.add_argument("--output", required=True, help="CSV or Parquet file to write")
    p.add_argument("--strict", action="store_true", help="refuse rows with unseen categories")
    command("history", history, "List promotions and rollbacks, oldest first.")
    r = command("rollback", rollback, "Point production at an earlier promoted version.")
    r.add_argument("--version", required=True, help="a version listed by `census-assets history`")
    r.add_argument("--reason", default="", help="recorded in the promotion history")
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.handler(args)
    except (CliError, RegistryError, SchemaError, ScoringError, SettingsError, SourceError) as error:
        print(f"census-assets {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
