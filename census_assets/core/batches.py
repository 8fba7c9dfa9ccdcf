"""Batch scoring without Dagster: inbox file names as partition keys, the inbox sensor's decisions
(new, changed, still being written), a batch's validation and drift, and the summary table.

Everything here is a pure function of its arguments; listing and reading the inbox (local folder
or gs://) is census_assets.resources.inbox.BatchInbox, the Dagster wiring is in assets/, checks/
and automation/.

The sensor's rules (docs/batches.md):

- a batch is a file directly in the inbox whose name ends in .csv, .csv.gz, .parquet or .pq and
  does not start with `.` or `_` (temporary names: write `_name.csv`, then rename it);
- its partition key is its name when that is a safe object name, else the name with every other
  character replaced plus a hash of the original name, so a key never names a path and two names
  never share a key;
- a file is known by its content fingerprint (sha256 locally, the object's md5 or crc32c on GCS),
  never by a timestamp: a `touch` or a re-upload of the same bytes is nothing new;
- a local file is taken when two consecutive ticks see the same size and fingerprint (a file still
  being written changes between ticks); a GCS object is complete once it is listed, so it is taken
  at once.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from census_assets.core.cleaning import DROPPED_COLUMNS, CleaningError, clean
from census_assets.core.drift import DriftReport, ReferenceProfile, compare
from census_assets.core.reporting import chart_png
from census_assets.core.schema import SOURCE_COLUMNS, STRING

BATCH_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
TEMPORARY_PREFIXES = (".", "_")
# The storage's rule for object names (census_assets.artifacts.SAFE_NAME): keys become file names
# under `scored/`, so only these characters, never `..` and never a `/`.
SAFE_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
MAX_KEY_LENGTH = 120
KEY_HASH_CHARACTERS = 10
LABEL_COLUMN = "marital_status"
# The columns a row needs to be scored (core.scoring): all but the label and the unused ones.
MODEL_INPUTS = tuple(name for name in SOURCE_COLUMNS if name not in (LABEL_COLUMN, *DROPPED_COLUMNS))
CURSOR_VERSION = 1


class BatchError(ValueError):
    """A batch file cannot be scored; the message says why (it becomes the partition's failure)."""


# ---- names and keys ----------------------------------------------------------------------------


def is_batch_name(name: str) -> bool:
    """A file the inbox sensor takes: a batch suffix, not a temporary (`.`/`_`) name, no folder."""
    return (
        "/" not in name
        and not name.startswith(TEMPORARY_PREFIXES)
        and name.lower().endswith(BATCH_SUFFIXES)
        and name.lower() not in BATCH_SUFFIXES
    )


def is_safe_key(key: str) -> bool:
    return bool(SAFE_KEY.fullmatch(key)) and ".." not in key and len(key) <= MAX_KEY_LENGTH + KEY_HASH_CHARACTERS + 1


def partition_key(name: str) -> str:
    """The stable partition key of an inbox file name.

    A safe name is its own key (`2026-12-01.csv`). Any other name keeps its safe characters, the
    rest become `_`, and a hash of the whole name is appended (`batch 1.csv` ->
    `batch_1.csv-<hash>`): safe names end in a batch suffix and such keys in the hash, so the two
    kinds never collide, and two different unsafe names collide only if their hashes do.
    """
    if is_safe_key(name) and len(name) <= MAX_KEY_LENGTH:
        return name
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    stem = re.sub(r"\.{2,}", lambda dots: "_" * len(dots.group()), stem)
    if not re.match(r"[A-Za-z0-9_]", stem):
        stem = "_" + stem
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:KEY_HASH_CHARACTERS]
    return f"{stem[:MAX_KEY_LENGTH].rstrip('.')}-{digest}"


# ---- the inbox sensor's state and decisions ----------------------------------------------------


@dataclass(frozen=True)
class InboxFile:
    """One listed batch file: name (relative to the inbox), size in bytes, content fingerprint."""

    name: str
    size: int
    fingerprint: str


@dataclass(frozen=True)
class BatchRequest:
    """A run to request: score `name` (content `fingerprint`) as partition `key`."""

    key: str
    name: str
    fingerprint: str
    revision: int  # 1 for a new file, +1 for each change of its content

    @property
    def run_key(self) -> str:
        # The revision makes A -> B -> A three runs: Dagster never repeats a run key.
        return f"{self.key}@{self.fingerprint}#{self.revision}"


@dataclass
class InboxState:
    """The sensor's cursor: what was taken (name -> fingerprint, revision), what was seen once and
    waits for a second look (name -> size, fingerprint), the scoring activity the last summary
    covered, and the production version the last tick saw (a change makes the batches stale)."""

    taken: dict[str, tuple[str, int]] = field(default_factory=dict)
    pending: dict[str, tuple[int, str]] = field(default_factory=dict)
    summarised: int = 0
    production: str | None = None

    def to_cursor(self) -> str:
        return json.dumps(
            {
                "v": CURSOR_VERSION,
                "taken": {name: list(value) for name, value in sorted(self.taken.items())},
                "pending": {name: list(value) for name, value in sorted(self.pending.items())},
                "summarised": self.summarised,
                "p": self.production,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_cursor(cls, cursor: str | None) -> InboxState:
        if not cursor:
            return cls()
        data = json.loads(cursor)
        if data.get("v") != CURSOR_VERSION:
            raise ValueError(f"inbox cursor version {data.get('v')!r} is not {CURSOR_VERSION}")
        return cls(
            taken={name: (str(fp), int(rev)) for name, (fp, rev) in data["taken"].items()},
            pending={name: (int(size), str(fp)) for name, (size, fp) in data["pending"].items()},
            summarised=int(data.get("summarised", 0)),
            production=data.get("p"),
        )


@dataclass(frozen=True)
class TickPlan:
    requests: list[BatchRequest]
    state: InboxState  # the next cursor
    unchanged: int  # files taken before with the same content
    waiting: list[str]  # new or changed since the last tick: taken once they stay the same
    deferred: int  # ready but above the per-tick limit: requested on the next tick
    collisions: dict[str, str]  # name -> the name that already owns its key (not taken)

    def describe(self) -> str:
        parts = [f"{len(self.requests)} batch run(s) requested", f"{self.unchanged} unchanged"]
        if self.waiting:
            parts.append(f"{len(self.waiting)} new or changed, taken when unchanged on the next tick")
        if self.deferred:
            parts.append(f"{self.deferred} deferred to the next tick (limit per tick)")
        if self.collisions:
            parts.append("key collisions (not taken): " + ", ".join(sorted(self.collisions)))
        return "; ".join(parts)


def plan_tick(
    state: InboxState, files: Iterable[InboxFile], *, complete_when_listed: bool, max_requests: int
) -> TickPlan:
    """What one sensor tick does with the inbox listing.

    New or changed content is requested once it is stable: at once when the store lists only
    complete objects (GCS), else when this tick sees the same size and fingerprint as the last
    one. At most `max_requests` runs per tick; the rest stay ready for the next tick. Files that
    left the inbox keep their entry, so a file that comes back with other content gets a new
    revision (its scores are never silently older than the file).
    """
    taken = dict(state.taken)
    pending: dict[str, tuple[int, str]] = {}
    owners = {partition_key(name): name for name in sorted(state.taken)}
    requests: list[BatchRequest] = []
    waiting: list[str] = []
    collisions: dict[str, str] = {}
    unchanged = deferred = 0
    for entry in sorted(files, key=lambda f: f.name):
        key = partition_key(entry.name)
        owner = owners.setdefault(key, entry.name)
        if owner != entry.name:
            collisions[entry.name] = owner
            continue
        previous = state.taken.get(entry.name)
        if previous is not None and previous[0] == entry.fingerprint:
            unchanged += 1
            continue
        observed = (entry.size, entry.fingerprint)
        if not complete_when_listed and state.pending.get(entry.name) != observed:
            pending[entry.name] = observed
            waiting.append(entry.name)
            continue
        if len(requests) >= max_requests:
            pending[entry.name] = observed  # stable already: requested as soon as there is room
            deferred += 1
            continue
        revision = previous[1] + 1 if previous else 1
        taken[entry.name] = (entry.fingerprint, revision)
        requests.append(BatchRequest(key, entry.name, entry.fingerprint, revision))
    next_state = InboxState(taken=taken, pending=pending, summarised=state.summarised, production=state.production)
    return TickPlan(requests, next_state, unchanged, waiting, deferred, collisions)


def content_fingerprint(data: bytes) -> str:
    """The local fingerprint of a file's bytes (what the sensor computes for a local inbox)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---- one batch: read, validate, drift ----------------------------------------------------------


def read_batch(data: bytes, name: str) -> pd.DataFrame:
    """A batch file's bytes as the CLI reads the same file (`census-assets predict`)."""
    lowered = name.lower()
    if not lowered.endswith(BATCH_SUFFIXES):
        raise BatchError(f"cannot tell the format of {name!r}: expected one of {', '.join(BATCH_SUFFIXES)}")
    if not data:
        raise BatchError("the file is empty (0 bytes, not even a header row)")
    kind = "CSV" if ".csv" in lowered else "Parquet"
    try:
        if kind == "Parquet":
            return pd.read_parquet(io.BytesIO(data))
        return pd.read_csv(io.BytesIO(data), compression="gzip" if lowered.endswith(".gz") else None)
    except pd.errors.EmptyDataError:
        raise BatchError("the file is empty (not even a header row)") from None
    except Exception as error:  # pyarrow, the C parser, gzip: each has its own error types
        raise BatchError(f"not a readable {kind} file: {type(error).__name__}: {error}") from None


@dataclass(frozen=True)
class BatchProfile:
    rows: int
    unscorable_rows: int
    missing_by_column: dict[str, int]

    @property
    def unscorable_share(self) -> float:
        return self.unscorable_rows / self.rows if self.rows else 0.0


def check_batch(raw: pd.DataFrame, max_unscorable_share: float) -> BatchProfile:
    """Refuse a batch that has no rows, lacks a model input column, or has more than
    `max_unscorable_share` of rows that cannot be scored (a model input missing). Types are
    checked by scoring itself (core.schema), before anything is stored."""
    missing = [name for name in SOURCE_COLUMNS if name != LABEL_COLUMN and name not in raw.columns]
    if missing:
        raise BatchError(f"missing required column(s): {', '.join(missing)}")
    if raw.empty:
        raise BatchError("the table has no rows (a header only)")
    absent = raw[list(MODEL_INPUTS)].isna()
    unscorable = absent.any(axis=1)
    counts = absent.sum()
    profile = BatchProfile(
        rows=len(raw),
        unscorable_rows=int(unscorable.sum()),
        missing_by_column={name: int(count) for name, count in counts[counts > 0].items()},
    )
    if profile.unscorable_share > max_unscorable_share:
        worst = ", ".join(
            f"{name} in {count}" for name, count in sorted(profile.missing_by_column.items(), key=lambda kv: -kv[1])
        )
        raise BatchError(
            f"{profile.unscorable_rows} of {profile.rows} rows ({profile.unscorable_share:.1%}) cannot be "
            f"scored, more than max_unscorable_share {max_unscorable_share:.1%}: a model input is missing "
            f"({worst})"
        )
    return profile


def batch_drift(profile: ReferenceProfile, raw: pd.DataFrame) -> DriftReport | None:
    """PSI of the batch's scorable rows against the production model's training profile, cleaned
    as the `drift` asset cleans raw_census (core.drift); None when no row can be scored."""
    unused = [LABEL_COLUMN, *DROPPED_COLUMNS]
    table = raw.reindex(columns=list(SOURCE_COLUMNS))
    table = table.fillna({name: ("" if SOURCE_COLUMNS[name] == STRING else 0) for name in unused})
    try:
        return compare(profile, clean(table))
    except CleaningError:
        return None


# ---- the summary across batches ----------------------------------------------------------------

SUMMARY_COLUMNS = (
    "partition", "status", "model_version", "current", "updated_at", "rows", "scored_rows",
    "flagged_rows", "positive_rate", "max_psi", "worst_feature", "failure",
)  # fmt: skip


def summary_table(records: Sequence[Mapping], production_version: str | None) -> pd.DataFrame:
    """One row per partition, newest first: status (scored / failed / in progress / not scored),
    the version that scored it and whether that is production's, the figures of its latest
    materialization, and the reason its latest attempt failed."""
    rows = []
    for record in records:
        version = record.get("model_version") or ""
        rows.append(
            {
                "partition": record["partition"],
                "status": record.get("status", "not scored"),
                "model_version": version,
                "current": bool(version) and version == production_version,
                "updated_at": record.get("updated_at") or "",
                "rows": float(record.get("rows", np.nan)),
                "scored_rows": float(record.get("scored_rows", np.nan)),
                "flagged_rows": float(record.get("flagged_rows", np.nan)),
                "positive_rate": float(record.get("positive_rate", np.nan)),
                "max_psi": float(record.get("max_psi", np.nan)),
                "worst_feature": record.get("worst_feature") or "",
                "failure": record.get("failure") or "",
            }
        )
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return table.sort_values(["updated_at", "partition"], ascending=[False, True], kind="stable").reset_index(
        drop=True
    )


def drift_chart_png(scored: pd.DataFrame, warn_psi: float, fail_psi: float) -> bytes:
    """Max PSI of each scored batch against the time it was scored, with the warn and fail limits."""
    ordered = scored.sort_values("updated_at")
    times = pd.to_datetime(ordered["updated_at"], utc=True)

    def draw(figure, axes) -> None:
        axes.plot(times, ordered["max_psi"], marker="o", linestyle="-", color="#4f43dd", label="max PSI")
        axes.axhline(warn_psi, color="#e0a100", linestyle="--", label=f"warn {warn_psi:g}")
        axes.axhline(fail_psi, color="#d1304a", linestyle="--", label=f"fail {fail_psi:g}")
        axes.set_ylabel("max PSI over features")
        axes.set_title("scored_batch: drift per batch", fontsize=10)
        axes.legend(fontsize=7, loc="upper left")
        figure.autofmt_xdate()

    return chart_png(3.0, draw)
