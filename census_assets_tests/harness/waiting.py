"""One way to wait in a test: poll a condition until it holds or a deadline passes."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    timeout: float,
    *,
    what: str = "the condition",
    interval: float = 0.5,
    details: Callable[[], str] | None = None,
) -> T:
    """Calls `condition` until it returns a truthy value, and returns that value. After `timeout`
    seconds: TimeoutError naming `what`, followed by `details()` (for example the logs of the
    processes the test waits on)."""
    deadline = time.monotonic() + timeout
    while True:
        if value := condition():
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    message = f"{what}: not reached after {timeout:.0f} s"
    raise TimeoutError(f"{message}\n{details()}" if details else message)
