"""Re-scoring batches, without Dagster: the request `census-assets rescore` writes, and the
`census_rescore` sensor's state (which requests it has handled, which partitions still wait for
their run). One run per partition, so one partition that cannot be scored fails alone.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from census_assets.core.names import is_safe_name

CURSOR_VERSION = 1
REQUEST_FIELDS = {"id": str, "everything": bool, "production": str, "requested_at": str}


class RequestError(ValueError):
    """A stored re-score request that cannot be read; the message says why."""


@dataclass(frozen=True)
class RescoreRequest:
    """What an operator asked for: every batch (`everything`) or those behind production; the
    production version they saw, and when."""

    id: str
    everything: bool
    production: str
    requested_at: str

    @classmethod
    def new(cls, everything: bool, production: str, now: datetime) -> RescoreRequest:
        # Time first, so a listing sorts requests in the order they were made.
        return cls(
            id=f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}",
            everything=everything,
            production=production,
            requested_at=now.isoformat(timespec="seconds"),
        )

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> RescoreRequest:
        try:
            value = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RequestError(f"not JSON: {error}") from None
        if not isinstance(value, dict) or set(value) != set(REQUEST_FIELDS):
            raise RequestError(f"expected the fields {', '.join(sorted(REQUEST_FIELDS))}")
        wrong = [name for name, kind in REQUEST_FIELDS.items() if not isinstance(value[name], kind)]
        if wrong or not is_safe_name(value["id"]):
            raise RequestError(f"invalid {', '.join(wrong) or 'id'}")
        return cls(**value)


@dataclass(frozen=True)
class QueuedRun:
    """One partition of a request, waiting for its run."""

    request: str
    partition: str
    production: str

    @property
    def run_key(self) -> str:
        # Per request and partition: asking again queues again; a sensor that lost its cursor
        # and handles a request a second time does not (Dagster never repeats a run key).
        return f"rescore/{self.request}/{self.partition}"


@dataclass
class RescoreState:
    """The sensor's cursor: the requests handled, and the runs decided but not yet requested
    (a tick requests a bounded number; the rest wait here, in order)."""

    handled: set[str] = field(default_factory=set)
    queue: list[QueuedRun] = field(default_factory=list)

    def to_cursor(self) -> str:
        return json.dumps(
            {
                "v": CURSOR_VERSION,
                "handled": sorted(self.handled),
                "queue": [[run.request, run.partition, run.production] for run in self.queue],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_cursor(cls, cursor: str | None) -> RescoreState:
        if not cursor:
            return cls()
        data = json.loads(cursor)
        if data.get("v") != CURSOR_VERSION:
            raise ValueError(f"rescore cursor version {data.get('v')!r} is not {CURSOR_VERSION}")
        return cls(
            handled={str(name) for name in data["handled"]},
            queue=[QueuedRun(str(request), str(key), str(version)) for request, key, version in data["queue"]],
        )

    def enqueue(self, request: str, partitions: Iterable[str], production: str) -> None:
        self.handled.add(request)
        self.queue.extend(QueuedRun(request, key, production) for key in partitions)

    def take(self, limit: int, existing: set[str]) -> tuple[list[QueuedRun], list[QueuedRun]]:
        """(the next runs to request, at most `limit`; the queued runs whose partition no longer
        exists, dropped). Requesting a run for a deleted partition would fail the whole tick."""
        gone = [run for run in self.queue if run.partition not in existing]
        waiting = [run for run in self.queue if run.partition in existing]
        self.queue = waiting[limit:]
        return waiting[:limit], gone
