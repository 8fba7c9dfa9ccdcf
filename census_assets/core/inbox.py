"""The inbox sensor's state and decisions, without Dagster: what each tick requests, what waits
and what the cursor remembers. Listing and reading the inbox is census_assets.resources.inbox.

- a file is known by its content fingerprint (core.fingerprints locally, the object's md5 or
  crc32c on GCS), never by a timestamp: a `touch` or a re-upload of the same bytes is nothing new;
- a local file is taken when two consecutive ticks see the same size and fingerprint (a file still
  being written changes between ticks); a GCS object is complete once it is listed, so it is taken
  at once;
- an entry the listing refuses (a name that is not UTF-8, a symbolic link, not a regular file) is
  never taken: it is reported with its reason on every tick while it is there, and only it is
  left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from census_assets.core.batch_names import partition_key

CURSOR_VERSION = 1


@dataclass(frozen=True)
class InboxFile:
    """One listed batch file: name (relative to the inbox), size in bytes, content fingerprint."""

    name: str
    size: int
    fingerprint: str


@dataclass(frozen=True)
class InboxListing:
    """The batch files of one listing, and the batch-like entries it refused (shown name -> reason)."""

    files: list[InboxFile]
    refused: dict[str, str] = field(default_factory=dict)


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


def describe_refused(refused: Mapping[str, str]) -> str:
    """The refused entries of a listing, each with its reason, for the tick's log and skip reason."""
    reasons = "; ".join(f"{name}: {why}" for name, why in sorted(refused.items()))
    return f"{len(refused)} refused (not taken): {reasons}"


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
