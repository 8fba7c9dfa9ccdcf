"""Failures that retrying cannot fix: they opt out of the storage retry policy (assets/specs.py)."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from census_assets.storage.errors import PermanentStorageError


def refuse(message: str) -> dg.Failure:
    """A failure that retrying cannot fix: bad input, a corrupt artifact or a failed gate."""
    return dg.Failure(description=message, allow_retries=False)


@contextmanager
def refusing_permanent_errors() -> Iterator[None]:
    """Registry and storage errors that retrying cannot fix (a bad pointer, a corrupt file, a full
    disk) fail the step once, with the message that names the object."""
    try:
        yield
    except PermanentStorageError as error:  # RegistryError included
        raise refuse(str(error)) from error
