"""Run leases: what tells `prune` that a run is still at work, and what a run committed.

Before a run writes anything it takes a lease, `leases/<run_id>.json`: an expiry a few minutes
ahead, renewed by a background thread while a process of the run holds it, and released (expiry
now, `released` set) when the process's resources are torn down. A killed or frozen process stops
renewing, so its lease runs out on its own. The record also lists every asset (and partition) the
run committed, so a run that finds its own output gone refuses instead of reading another run's.
Records are kept after the run (they are small): they are the run's account of what it committed.
"""

from __future__ import annotations

import math
import threading
import time
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
    released: float | None = None
    committed: tuple[str, ...] = field(default_factory=tuple)

    def is_live(self, now: float) -> bool:
        return self.expires > now

    @property
    def ended(self) -> float:
        """When the run stopped holding the lease (released, or the expiry of its last renewal)."""
        return self.released if self.released is not None else self.expires

    def to_bytes(self) -> bytes:
        return json_bytes({"run_id": self.run_id, "expires": self.expires, "released": self.released,
                           "committed": sorted(self.committed)})


def lease_name(run_id: str) -> str:
    return f"{LEASES}/{run_id}.json"


def parse_lease(data: bytes, url: str) -> LeaseRecord:
    value = parse_json(data, url)
    try:
        expires = float(value["expires"])
        released = None if value.get("released") is None else float(value["released"])
        committed = tuple(str(item) for item in value.get("committed", []))
        run_id = str(value["run_id"])
    except (KeyError, TypeError, ValueError) as error:
        raise CorruptArtifactError(f"{url} is not a run lease ({error})") from None
    if not math.isfinite(expires):
        raise CorruptArtifactError(f"{url} is not a run lease (expiry {expires})")
    return LeaseRecord(run_id, expires, released, committed)


def read_lease(store: ObjectStore, run_id: str) -> LeaseRecord | None:
    try:
        data = store.read(lease_name(run_id))
    except MissingArtifactError:
        return None
    return parse_lease(data, store.url(lease_name(run_id)))


def _change(store: ObjectStore, run_id: str, add_committed: tuple[str, ...] = (), **changes):
    def change(current: bytes | None) -> bytes:
        record = parse_lease(current, store.url(lease_name(run_id))) if current else LeaseRecord(run_id, 0.0)
        committed = set(record.committed) | set(add_committed)
        return LeaseRecord(
            run_id,
            changes.get("expires", record.expires),
            changes["released"] if "released" in changes else record.released,
            tuple(committed),
        ).to_bytes()

    return change


def renew(store: ObjectStore, run_id: str, now: float | None = None) -> None:
    now = time.time() if now is None else now
    store.update(lease_name(run_id), _change(store, run_id, expires=now + LEASE_SECONDS, released=None))


def release(store: ObjectStore, run_id: str, now: float | None = None) -> None:
    now = time.time() if now is None else now
    store.update(lease_name(run_id), _change(store, run_id, expires=now, released=now))


def record_commit(store: ObjectStore, run_id: str, relative: str) -> None:
    store.update(lease_name(run_id), _change(store, run_id, add_committed=(relative,)))


class LeaseHolder:
    """The leases one process holds, renewed by one background thread until released."""

    def __init__(self):
        self._held: dict[tuple[str, str], ObjectStore] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, store: ObjectStore, run_id: str) -> None:
        key = (store.base_url, run_id)
        with self._lock:
            if key in self._held:
                return
        renew(store, run_id)  # before the run's first write: prune must see it first
        with self._lock:
            self._held[key] = store
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._renew_forever, name="census-run-leases", daemon=True)
                self._thread.start()

    def release_all(self) -> None:
        with self._lock:
            held, self._held = dict(self._held), {}
        for (_, run_id), store in held.items():
            release(store, run_id)

    def _renew_forever(self) -> None:
        while not self._wake.wait(RENEW_SECONDS):
            with self._lock:
                held = dict(self._held)
            for (_, run_id), store in held.items():
                try:
                    renew(store, run_id)
                except OSError:
                    pass  # tried again next round; the lease lasts several rounds


LEASE_HOLDER = LeaseHolder()
