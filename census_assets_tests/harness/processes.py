"""One way to run a server process in the tests: the Dagster webserver, daemon and code servers,
PostgreSQL and the Google Cloud emulators all start and stop through `ManagedProcess`.

Each process runs in its own process group (whatever it spawns, a run or a code server, stops with
it), writes its output to a log file (a pipe nobody reads would block it), is waited for with a
startup timeout that fails at once, log attached, when it exits instead, and is stopped by its stop
signals in turn, then SIGKILL to the whole group (or by SIGKILL alone, kill_all, when what it holds
is thrown away). While a process runs, a failing test's report carries the tail of its log (the
hook is in harness/plugin.py).
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from census_assets_tests.harness.waiting import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 240  # a Dagster process imports census_assets first: slow on two busy cores
STOP_TIMEOUT_S = 20
LOG_TAIL_CHARACTERS = 6000

# Logs of the processes started: name -> path. A process stopped during a test keeps its log in
# that test's report; the teardown hook then forgets it.
_LOGS: dict[str, Path] = {}
_STOPPED: set[str] = set()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def inherited_environment() -> dict[str, str]:
    """This process's environment without CENSUS_* settings, and this checkout first on PYTHONPATH:
    the processes the tests start run the code under test, wherever their working directory and
    whatever is installed, on the defaults whatever the developer's shell or an earlier test has set."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("CENSUS_")}
    inherited["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return inherited


def console_command(script: str, module: str) -> list[str]:
    """The console script installed beside this interpreter (not whatever PATH finds first), or
    `python -m module` when there is none."""
    path = Path(sys.executable).with_name(script)
    return [str(path)] if path.exists() else [sys.executable, "-m", module]


def log_tail(path: Path, characters: int = LOG_TAIL_CHARACTERS) -> str:
    try:
        return Path(path).read_text(errors="replace")[-characters:]
    except OSError:
        return "(no log)"


def logs_to_report() -> dict[str, Path]:
    """The logs a failing test's report shows: every process started and not yet forgotten."""
    return dict(_LOGS)


def forget_stopped_logs() -> None:
    for name in _STOPPED:
        _LOGS.pop(name, None)
    _STOPPED.clear()


class ManagedProcess:
    """One server process in its own process group, its output in `log_path`.

    `stop_signals` are sent in turn, each given the stop timeout, before SIGKILL (PostgreSQL's
    fast shutdown is SIGINT); `run_as` holds Popen's user/group arguments (PostgreSQL refuses root).
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stop_signals: Sequence[int] = (signal.SIGTERM,),
        run_as: dict | None = None,
    ):
        self.name = name
        self.command = [str(part) for part in command]
        self.log_path = Path(log_path)
        self.env = env
        self.cwd = cwd
        self.stop_signals = tuple(stop_signals)
        self.run_as = run_as or {}
        self.process: subprocess.Popen | None = None

    def start(self) -> "ManagedProcess":
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} start: {' '.join(self.command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: its children stop with it
                **self.run_as,
            )
        _LOGS[self.name] = self.log_path
        _STOPPED.discard(self.name)
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_running(self) -> None:
        if not self.running:
            code = None if self.process is None else self.process.returncode
            raise RuntimeError(f"{self.name} exited with {code}:\n{self.log_tail()}")

    def log_tail(self, characters: int = LOG_TAIL_CHARACTERS) -> str:
        return log_tail(self.log_path, characters)

    def wait_until(
        self,
        ready: Callable[[], object],
        what: str,
        timeout: float = STARTUP_TIMEOUT_S,
        not_yet: tuple[type[BaseException], ...] = (OSError,),
    ):
        """Until `ready()` returns a truthy value (see wait_until_ready)."""
        return wait_until_ready([self], ready, what, timeout, not_yet)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        stop_all([self], timeout)

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass


def wait_until_ready(
    processes: Sequence[ManagedProcess],
    ready: Callable[[], object],
    what: str,
    timeout: float = STARTUP_TIMEOUT_S,
    not_yet: tuple[type[BaseException], ...] = (OSError,),
):
    """Until `ready()` returns a truthy value, which is returned; an exception of a `not_yet` type
    (a connection refused while the server starts) counts as not ready. A process that exits
    fails the wait at once with its log: it will never be ready."""

    def condition():
        for process in processes:
            process.check_running()
        try:
            return ready()
        except not_yet:
            return None

    def logs() -> str:
        return "\n".join(f"--- {process.name} ---\n{process.log_tail(3000)}" for process in processes)

    return wait_for(condition, timeout, what=what, details=logs)


def stop_all(processes: Iterable[ManagedProcess], timeout: float = STOP_TIMEOUT_S) -> None:
    """Every process's stop signals in turn, all processes at once (each signal given `timeout`),
    then SIGKILL to every process group: a leader may be gone while its children linger."""
    started = [process for process in processes if process.process is not None]
    rounds = max((len(process.stop_signals) for process in started), default=0)
    for round_ in range(rounds):
        signalled = [p for p in started if p.running and round_ < len(p.stop_signals)]
        for process in signalled:
            process.signal_group(process.stop_signals[round_])
        deadline = time.monotonic() + timeout
        for process in signalled:
            try:
                process.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    kill_all(started)


def kill_all(processes: Iterable[ManagedProcess]) -> None:
    """SIGKILL to every process group, without asking first: for processes whose state is thrown
    away (a test's deployment at its end), and after the stop signals."""
    for process in processes:
        if process.process is not None:
            process.signal_group(signal.SIGKILL)
            process.process.wait()
            _STOPPED.add(process.name)
