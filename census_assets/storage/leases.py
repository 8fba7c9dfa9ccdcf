"""Run leases: what tells `prune` that a run is still at work, and what a run committed.

Each process that works for a run (a step process under the multiprocess or k8s executor, the
whole run under the in-process one) keeps its own record of the run's lease,
`leases/<run_id>/<holder>.json`: an expiry a lease ahead, renewed by a background thread while the
process works for the run, and the assets (and partitions) it committed. The run's lease is all its
records together: live while any record is, listing every commit. A process takes the lease before
the step reads or writes anything and stops renewing when its part of the run ends, but nobody ends
a lease early: it runs out a lease after its last renewal. That covers the time between two steps
of a run, which a release at each step's end left open (prune deleted what the run had committed
and was about to read again), and a killed or frozen process stops renewing, so its lease runs out
on its own. A re-execution also holds the leases of the runs it reads from. Only its own process
writes a record, so a record needs no compare-and-swap and no lock file. Records are kept after
the run (they are small): they are the run's account of what it committed, so a run that finds its
own output gone refuses instead of reading another run's. Storages from before per-process records
hold one record per run, `leases/<run_id>.json`: still read.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from census_assets.storage.errors import CorruptArtifactError, MissingArtifactError
from census_assets.storage.manifests import json_bytes, parse_json
from census_assets.storage.objects import ObjectStore

LEASES = "leases"
# A lease outlives its last renewal by this long: longer than any pause between a run's steps.
LEASE_SECONDS = 600.0
RENEW_SECONDS = 60.0


@dataclass(frozen=True)
class LeaseRecord:
    run_id: str
    expires: float
    committed: tuple[str, ...] = field(default_factory=tuple)

    def is_live(self, now: float) -> bool:
        return self.expires > now

    def to_bytes(self) -> bytes:
        return json_bytes({"run_id": self.run_id, "expires": self.expires, "committed": sorted(self.committed)})


def merged(records: Iterable[LeaseRecord]) -> LeaseRecord | None:
    """The run's lease from its processes' records: the latest expiry, every commit."""
    records = list(records)
    if not records:
        return None
    committed = {relative for record in records for relative in record.committed}
    return LeaseRecord(records[0].run_id, max(record.expires for record in records), tuple(sorted(committed)))


def run_of_record(name: str) -> str:
    """The run id of a record's object name (`leases/<run_id>/<holder>.json` or `leases/<run_id>.json`)."""
    return name.split("/")[1].removesuffix(".json")


def parse_lease(data: bytes, url: str) -> LeaseRecord:
    value = parse_json(data, url)
    try:
        expires = float(value["expires"])
        committed = tuple(str(item) for item in value.get("committed", []))
        run_id = str(value["run_id"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CorruptArtifactError(f"{url} is not a run lease ({error})") from None
    if not math.isfinite(expires):
        raise CorruptArtifactError(f"{url} is not a run lease (expiry {expires})")
    return LeaseRecord(run_id, expires, committed)


def _records(store: ObjectStore, names: Iterable[str]) -> dict[str, LeaseRecord]:
    records: dict[str, list[LeaseRecord]] = {}
    for name in names:
        try:
            record = parse_lease(store.read(name), store.url(name))
        except (CorruptArtifactError, MissingArtifactError):
            continue  # an unreadable record protects nothing: its run's files age like a lease-less run's
        records.setdefault(run_of_record(name), []).append(record)
    return {run_id: merged(found) for run_id, found in records.items()}


def read_leases(store: ObjectStore) -> dict[str, LeaseRecord]:
    """run id -> its lease, for every run that took one."""
    return _records(store, (info.name for info in store.list(LEASES)))


def read_lease(store: ObjectStore, run_id: str) -> LeaseRecord | None:
    """The run's lease, None when no process of it took one."""
    names = [info.name for info in store.list(f"{LEASES}/{run_id}") if run_of_record(info.name) == run_id]
    return _records(store, [*names, f"{LEASES}/{run_id}.json"]).get(run_id)


class _Process:
    """This process's name among a run's lease records, and the lock its threads share; both new
    in a forked child (a child is another holder, and may not inherit a lock held at the fork)."""

    def __init__(self):
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.holder = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.lock = threading.Lock()


PROCESS = _Process()


def record_name(run_id: str) -> str:
    """This process's record of the run's lease."""
    return f"{LEASES}/{run_id}/{PROCESS.holder}.json"


def _change(store: ObjectStore, run_id: str, expires: float | None = None, committed: tuple[str, ...] = ()) -> None:
    # Only this process writes its record: its threads take turns, and no other writer exists.
    with PROCESS.lock:
        name = record_name(run_id)
        try:
            current = parse_lease(store.read(name), store.url(name))
        except MissingArtifactError:
            current = LeaseRecord(run_id, 0.0)
        store.write(name, LeaseRecord(
            run_id,
            current.expires if expires is None else max(current.expires, expires),
            tuple(sorted({*current.committed, *committed})),
        ).to_bytes())


def renew(store: ObjectStore, run_id: str, now: float | None = None) -> None:
    now = time.time() if now is None else now
    _change(store, run_id, expires=now + LEASE_SECONDS)


def record_commit(store: ObjectStore, run_id: str, relative: str) -> None:
    _change(store, run_id, committed=(relative,))


class LeaseHolder:
    """The leases one process renews, with one background thread, each for as long as the process
    works for a run: the run's own lease, and (a re-execution) the leases of the runs it reads from."""

    def __init__(self):
        # (store, leased run, the run this process works for) -> the store
        self._held: dict[tuple[str, str, str], ObjectStore] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        """In a forked child: the parent's runs and thread are not the child's."""
        self._held, self._lock, self._thread = {}, threading.Lock(), None

    def hold(self, store: ObjectStore, run_id: str, for_run: str | None = None) -> None:
        """Renew `run_id`'s lease while this process works for `for_run` (by default run_id itself)."""
        key = (store.base_url, run_id, for_run or run_id)
        with self._lock:
            if key in self._held:
                return
        renew(store, run_id)  # before the step's first read or write: prune must see it first
        with self._lock:
            self._held[key] = store
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._renew_forever, name="census-run-leases", daemon=True)
                self._thread.start()

    def stop_renewing(self, run_id: str) -> None:
        """This process's part of the run has ended. No lease is ended: each runs out a lease after
        its last renewal, so the run's next step (in another process) finds it live."""
        with self._lock:
            self._held = {key: store for key, store in self._held.items() if key[2] != run_id}

    def held(self) -> set[str]:
        """The runs whose leases this process renews."""
        with self._lock:
            return {run_id for _, run_id, _ in self._held}

    def _renew_forever(self) -> None:
        while not self._wake.wait(RENEW_SECONDS):
            with self._lock:
                leased = {(base_url, run_id): store for (base_url, run_id, _), store in self._held.items()}
            for (_, run_id), store in leased.items():
                try:
                    renew(store, run_id)
                except OSError:
                    pass  # tried again next round; the lease lasts several rounds


LEASE_HOLDER = LeaseHolder()
