"""One object-store interface, a local backend and the factory that picks the backend by URL.

An object is named by a '/'-separated name relative to the store's base URL. Every write is atomic:
`reserve(name)` gives a pending write (locally a temp file beside the target, held under a flock so
`prune` can tell a live writer from a dead one); `commit(data)` publishes it (rename, or one upload
on GCS); `discard()` removes it. `update(name, change)` is the compare-and-swap every pointer uses.

Fault injection has one public seam, `FAULTS`: a test installs a callable that is called at each
named point of a write (`reserved`, `written`, `committing`, `committed`) and of a delete, and may
pause, raise an OSError or kill the process there.
"""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from census_assets.core.fingerprints import content_fingerprint, stream_fingerprint
from census_assets.storage.errors import MissingArtifactError, StorageError, classified

TEMP_SUFFIX = ".tmp"
LOCKS = ".locks"


def lock_name(name: str) -> str:
    """The file under LOCKS that a local store's flock of object `name` uses."""
    return name.replace("/", "__") + ".lock"


def locked_object(lock: str) -> str:
    """The object name whose lock file (lock_name's) this is."""
    return lock.removesuffix(".lock").replace("__", "/")


# Retrying a compare-and-swap that lost a race: each attempt re-reads the current value.
SWAP_ATTEMPTS = 20


@dataclass(frozen=True)
class ObjectInfo:
    """An object under a prefix: its name relative to the store, size, age, and the store's own
    checksum when it keeps one (`md5:...` / `crc32c:...` on GCS; None locally)."""

    name: str
    size: int
    age_seconds: float
    checksum: str | None = None


@dataclass(frozen=True)
class RefusedEntry:
    """An entry a listing cannot use, with the reason (a name that is not UTF-8, a symlink, ...)."""

    name: str  # printable: undecodable bytes shown as \\xNN
    reason: str


class FaultPoints:
    """The store's named fault-injection seam (tests only): `install(hook)` for a block; the hook
    gets (point, object name, temp path or None)."""

    def __init__(self):
        self._hooks: list[Callable[[str, str, Path | None], None]] = []

    @contextmanager
    def installed(self, hook: Callable[[str, str, Path | None], None]) -> Iterator[None]:
        self._hooks.append(hook)
        try:
            yield
        finally:
            self._hooks.remove(hook)

    def install(self, hook: Callable[[str, str, Path | None], None]) -> None:
        """For a process that ends with the fault (a forked child): no need to uninstall."""
        self._hooks.append(hook)

    def __call__(self, point: str, name: str, path: Path | None = None) -> None:
        for hook in list(self._hooks):
            hook(point, name, path)


FAULTS = FaultPoints()


def printable(raw: str) -> str:
    """A file name as text: bytes that are not UTF-8 (kept by os as surrogates) shown as \\xNN."""
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class PendingWrite(ABC):
    """One atomic write in progress: `commit(data)` makes it visible whole, `discard()` drops it."""

    @abstractmethod
    def commit(self, data: bytes) -> None: ...

    @abstractmethod
    def discard(self) -> None: ...


class ObjectStore(ABC):
    """Named byte objects under one base URL."""

    base_url: str
    # GCS lists an object only once its upload finished; a local file may be half-written.
    complete_when_listed: bool = False

    @abstractmethod
    def url(self, name: str) -> str: ...

    @abstractmethod
    def read(self, name: str) -> bytes:
        """The object's bytes; MissingArtifactError when absent."""

    @abstractmethod
    def reserve(self, name: str) -> PendingWrite:
        """Start an atomic write of `name` (a missing or unwritable folder fails here, before work)."""

    def write(self, name: str, data: bytes) -> None:
        pending = self.reserve(name)
        try:
            pending.commit(data)
        finally:
            pending.discard()

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove the object; nothing to do when absent."""

    @abstractmethod
    def list(self, prefix: str, temporary: bool = False) -> list[ObjectInfo]:
        """Every object under `prefix`, recursively; pending writes' temp objects only with
        `temporary` (a write in progress, or one a killed process left)."""

    @abstractmethod
    def listdir(self, prefix: str) -> tuple[list[ObjectInfo], list[RefusedEntry]]:
        """The regular objects directly under `prefix` (not in sub-folders), and the entries that
        cannot be used, each with its reason. One bad entry never fails the listing."""

    @abstractmethod
    def stat(self, name: str) -> ObjectInfo:
        """Size, age and checksum of one object; MissingArtifactError when absent."""

    @abstractmethod
    def update(self, name: str, change: Callable[[bytes | None], bytes]) -> bytes:
        """Replace `name` with change(current bytes or None), atomically against other writers.
        `change` may raise to abandon the update."""

    def fingerprint(self, name: str) -> str:
        """The content fingerprint of an object, without holding it in memory where the store allows."""
        return self.read_with_checksum(name)[1]

    def read_with_checksum(self, name: str) -> tuple[bytes, str]:
        """The bytes and the fingerprint of exactly those bytes."""
        data = self.read(name)
        return data, content_fingerprint(data)

    def exists(self, name: str) -> bool:
        try:
            self.stat(name)
        except FileNotFoundError:
            return False
        return True

    def delete_abandoned_temporaries(self, min_age_seconds: float) -> list[str]:
        """Temp objects of writes that are not in progress, older than `min_age_seconds`."""
        return []


# ---- local folder -------------------------------------------------------------------------------


class LocalPendingWrite(PendingWrite):
    def __init__(self, store: LocalObjectStore, name: str):
        self.store, self.name, self.target = store, name, store.path(name)
        self.temporary: Path | None = None
        self._handle = None
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            # Open, then lock, then check it is still our file: prune deletes a temp file only when
            # it can take its lock, so a file it deleted between our open and lock is detected here.
            while self.temporary is None:
                candidate = self.target.with_name(f".{self.target.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")
                handle = open(candidate, "xb")  # noqa: SIM115 - kept open until commit or discard
                fcntl.flock(handle, fcntl.LOCK_EX)
                if os.path.exists(candidate) and os.path.samestat(os.fstat(handle.fileno()), os.stat(candidate)):
                    self.temporary, self._handle = candidate, handle
                else:
                    handle.close()
            FAULTS("reserved", name, self.temporary)
        except BaseException as error:
            self.discard()  # a write that fails as it starts leaves no temp file either
            if isinstance(error, OSError):
                raise classified(error, "write", store.url(name)) from error
            raise

    def commit(self, data: bytes) -> None:
        if self._handle is None:
            raise StorageError(f"the write of {self.store.url(self.name)} was already committed or discarded")
        try:
            self._handle.write(data)
            self._handle.flush()
            FAULTS("written", self.name, self.temporary)
            os.fsync(self._handle.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(self._handle.fileno(), 0o666 & ~umask)
            FAULTS("committing", self.name, self.temporary)
            os.replace(self.temporary, self.target)
        except BaseException as error:
            # Every failure path (a full disk, a size limit, an interrupt) removes the temp file.
            self.discard()
            if isinstance(error, OSError):
                raise classified(error, "write", self.store.url(self.name)) from error
            raise
        self._close()
        self.temporary = None
        FAULTS("committed", self.name, None)

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def discard(self) -> None:
        if self.temporary is not None:
            with suppress(OSError):  # never mask the error that got us here
                self.temporary.unlink()
            self.temporary = None
        self._close()


class LocalObjectStore(ObjectStore):
    """Objects as files under a folder; the folder is created by the first write."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.base_url = str(self.root)

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}" if name else self.base_url

    def path(self, name: str) -> Path:
        return self.root / name

    def read(self, name: str) -> bytes:
        try:
            return self.path(name).read_bytes()
        except OSError as error:
            raise classified(error, "read", self.url(name)) from error

    def reserve(self, name: str) -> PendingWrite:
        return LocalPendingWrite(self, name)

    def fingerprint(self, name: str) -> str:
        try:
            with open(self.path(name), "rb") as handle:
                return stream_fingerprint(handle)
        except OSError as error:
            raise classified(error, "read", self.url(name)) from error

    def delete(self, name: str) -> None:
        FAULTS("deleting", name, None)
        try:
            self.path(name).unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            raise classified(error, "delete", self.url(name)) from error

    def _info(self, path: Path, now: float) -> ObjectInfo:
        status = path.stat()
        return ObjectInfo(path.relative_to(self.root).as_posix(), status.st_size, now - status.st_mtime)

    def list(self, prefix: str, temporary: bool = False) -> list[ObjectInfo]:
        root, now, found = self.path(prefix), time.time(), []
        if not root.is_dir():
            return []
        for folder, _, names in os.walk(root):  # never follows symlinked folders
            for name in names:
                path = Path(folder) / name
                if (not temporary and name.endswith(TEMP_SUFFIX)) or path.is_symlink():
                    continue
                with suppress(FileNotFoundError):  # removed since the walk saw it
                    found.append(self._info(path, now))
        return found

    def listdir(self, prefix: str) -> tuple[list[ObjectInfo], list[RefusedEntry]]:
        root, now = self.path(prefix), time.time()
        try:
            entries = list(os.scandir(root))
        except FileNotFoundError:
            raise MissingArtifactError(f"folder {root} does not exist") from None
        except OSError as error:
            raise classified(error, "list", str(root)) from error
        found, refused = [], []
        for entry in entries:
            shown = printable(entry.name)
            if entry.name.startswith(".") or entry.name.endswith(TEMP_SUFFIX):
                continue  # hidden files and writes in progress are not objects
            if shown != entry.name:
                refused.append(RefusedEntry(shown, "the file name is not valid UTF-8: rename the file"))
            elif entry.is_symlink():
                refused.append(RefusedEntry(shown, "a symbolic link: copy the file into the folder instead"))
            elif entry.is_dir(follow_symlinks=False):
                continue
            elif not entry.is_file(follow_symlinks=False):
                refused.append(RefusedEntry(shown, "not a regular file"))
            else:
                try:
                    status = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                found.append(ObjectInfo(f"{prefix.rstrip('/')}/{entry.name}".lstrip("/"), status.st_size,
                                        now - status.st_mtime))
        return found, refused

    def stat(self, name: str) -> ObjectInfo:
        try:
            return self._info(self.path(name), time.time())
        except OSError as error:
            raise classified(error, "read", self.url(name)) from error

    @contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        """An exclusive flock for `name`: released by the kernel if the holder is killed."""
        lock = self.path(LOCKS) / lock_name(name)
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            handle = open(lock, "a+b")  # noqa: SIM115 - held for the block
        except OSError as error:
            raise classified(error, "lock", self.url(name)) from error
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def update(self, name: str, change: Callable[[bytes | None], bytes]) -> bytes:
        with self._lock(name):
            try:
                current = self.read(name)
            except MissingArtifactError:
                current = None
            data = change(current)
            self.write(name, data)
            return data

    def delete_abandoned_temporaries(self, min_age_seconds: float) -> list[str]:
        deleted = []
        for info in self.list("", temporary=True):
            if not info.name.endswith(TEMP_SUFFIX) or info.age_seconds < min_age_seconds:
                continue
            path = self.path(info.name)
            # Deleted under its own lock: a writer that still holds it is alive.
            try:
                handle = open(path, "rb")  # noqa: SIM115
            except OSError:
                continue
            with handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                with suppress(FileNotFoundError):
                    path.unlink()
                    deleted.append(info.name)
        return deleted


def split_url(url: str) -> tuple[str, str]:
    """(folder or prefix URL, object name) of a file URL."""
    folder, _, name = url.rstrip("/").rpartition("/")
    return folder, name


def open_store(url: str, retry_deadline: float | None = None, credentials: str | None = None) -> ObjectStore:
    """The store for a local folder (a path or file://) or gs://bucket/prefix. `credentials` is a
    base64 service-account key (GCP_CREDENTIALS); None: Google's default credentials."""
    url = url.rstrip("/") if url not in ("/", "") else url
    scheme = url.split("://")[0] if "://" in url else ""
    if scheme in ("gs", "gcs"):
        from census_assets.storage.gcp import GcsObjectStore

        return GcsObjectStore(url, retry_deadline=retry_deadline, credentials=credentials)
    if scheme not in ("", "file"):
        raise StorageError(f"storage {url!r}: only a local folder or gs://bucket/prefix is supported")
    return LocalObjectStore(url.removeprefix("file://"))
