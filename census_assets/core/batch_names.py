"""Which inbox files are batches, and the partition key of each (no Dagster, no storage).

- a batch is a file directly in the inbox whose name ends in one of core.file_formats.SUFFIXES and
  does not start with `.` or `_` (temporary names: write `_name.csv`, then rename it);
- its partition key is its name when that is a safe object name (core.names), else the name with
  every other character replaced plus a hash of the original name, so a key never names a path
  and two names never share a key.
"""

import hashlib
import re

from census_assets.core.file_formats import SUFFIXES
from census_assets.core.names import is_safe_name

TEMPORARY_PREFIXES = (".", "_")
MAX_KEY_LENGTH = 120
KEY_HASH_CHARACTERS = 10


def is_batch_name(name: str) -> bool:
    """A file the inbox sensor takes: a batch suffix, not a temporary (`.`/`_`) name, no folder."""
    lowered = name.lower()
    return (
        "/" not in name
        and not name.startswith(TEMPORARY_PREFIXES)
        and lowered.endswith(SUFFIXES)
        and (lowered not in SUFFIXES)
    )


def is_safe_key(key: str) -> bool:
    """A partition key the inbox could have made: a safe object name of bounded length."""
    return is_safe_name(key) and len(key) <= MAX_KEY_LENGTH + KEY_HASH_CHARACTERS + 1


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
