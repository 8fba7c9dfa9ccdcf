"""The storage layer's error types, shared by objects, commits and the registry: one type a fault."""

import errno

# OS errors that the same operation would hit again: the run fails once, with the object named.
PERMANENT_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EFBIG: "file too large (a file-size limit)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a path component is a file, not a folder",
    errno.EISDIR: "is a folder, not a file",
    errno.EEXIST: "a file stands where a folder belongs",
    errno.ELOOP: "too many levels of symbolic links",
    errno.ENAMETOOLONG: "the name is too long",
}


class StorageError(OSError):
    """The storage cannot be used; the message names the bucket or object and why."""


class PermanentStorageError(StorageError):
    """Retrying cannot help: no space, a size limit, no permission, a corrupt or missing artifact."""


class BucketNotFoundError(PermanentStorageError):
    """The configured bucket does not exist."""


class CorruptArtifactError(PermanentStorageError):
    """A stored file is truncated, unparsable or not the file its manifest names."""


class MissingArtifactError(PermanentStorageError, FileNotFoundError):
    """An object that should be there is not. Waiting does not bring it back (a deleted run file, a
    never-materialised asset), so it is permanent: the step fails once, with the object named."""


class ConflictError(StorageError):
    """A compare-and-swap lost: the object changed since it was read."""


class RegistryError(PermanentStorageError):
    """A registry operation cannot be carried out (nothing promoted, an unknown version, a bad
    pointer); the message says why."""


class ChampionChangedError(RegistryError):
    """production.json moved between a promotion decision and its swap."""


def classified(error: OSError, action: str, url: str) -> OSError:
    """The error to raise for an OS error on `url`: missing and permanent ones named and typed."""
    if isinstance(error, StorageError):
        return error
    if isinstance(error, FileNotFoundError):
        return MissingArtifactError(f"cannot {action} {url}: it does not exist")
    reason = PERMANENT_ERRNOS.get(error.errno or 0)
    if reason is None:
        return error
    return PermanentStorageError(error.errno, f"cannot {action} {url}: {reason}")
