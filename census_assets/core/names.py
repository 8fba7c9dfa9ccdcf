"""Names that become object names in storage (partition keys, run ids, asset names): the one rule
of what they may hold. In core because partition keys are made here; census_assets.storage
applies the same rule to every name it writes."""

import re

# Letters, digits, `_`, `.` and `-`, not starting with `.` or `-`: never a path, a hidden file or
# an option; `..` anywhere is refused too.
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def is_safe_name(value: str) -> bool:
    return bool(SAFE_NAME.fullmatch(value)) and ".." not in value
