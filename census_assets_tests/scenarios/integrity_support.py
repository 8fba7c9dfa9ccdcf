"""Test-side machinery for test_integrity: whole-graph runs in child processes, with faults.

A run that must be killed mid-write (SIGKILL), or that must run under a file-size limit, cannot run
in the pytest process. Starting a fresh interpreter per case would cost seconds of imports each, so
`python -m census_assets_tests.scenarios.integrity_support <cpu>` is a small fork server: it imports Dagster,
the package, LightGBM, scikit-learn, matplotlib and pyarrow once (it never runs any of them, so no
OpenMP or Arrow thread pool exists when it forks), pins itself to one CPU, and for each job read
from stdin (one JSON line) forks a child that runs the graph in-process (the harness's run_graph,
census_assets_tests.harness.runner) and exits. The server answers with one JSON line: the child's return code
(negative: killed by that signal).

Faults are installed in the child only, through the store's fault seam
(census_assets.storage.objects.FAULTS, called at each named point of every write): a kill before a
write's bytes (just after its temp file is reserved), mid-write (the temp file cut to half its
bytes, then killed) or after it is committed, at the first write whose object name matches a regular
expression; or a pause there (the child writes `<job>.paused` and waits for `<job>.resume`), so the
test can act while the run stands still. Every write the child committed is appended to a trace
file first, so the test knows exactly what was on disk when it died.

Two servers, each pinned to its own CPU with OMP_NUM_THREADS=1 and CENSUS_WORKERS=1, keep LightGBM
at one thread per run: two runs side by side never use more than the machine's two cores.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from census_assets_tests.harness.processes import REPO_ROOT

SERVER_ENV = {"OMP_NUM_THREADS": "1", "CENSUS_WORKERS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
THRESHOLD = 0.5  # the sampled runs are judged by their consistency, not their accuracy
TOLERANCE = 1.0  # champion/challenger (overall and per group) never blocks: every new model is promoted
HOLDOUT_ROWS = 300  # the held-out rows holdout_metrics judges on (see small_holdout)
FIT_VOCABULARY = {"ops": {"features": {"config": {"vocabulary": "fit"}}}}
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
# A run with no selection runs the census graph through production_model, with the checks
# (batch scoring is not part of these runs).
DEFAULT_SELECTION = ["raw_census", "clean_census", "features", "cv_accuracy", "lgbm_model", "holdout_metrics",
                     "drift", "production_model"]
# Metadata copied from the run's materialisations into the child's result (JSON-serialisable).
KEPT_METADATA = ("training_rows", "version", "action", "already_in_production", "model_version", "rows",
                 "published", "publication_error")


# ---- running the graph (in the pytest process or in a server's child) --------------------------


def run_graph(
    storage: str | Path,
    source: str | Path,
    vocabulary: str = "bundled",
    selection: list[str] | None = None,
    instance=None,
    holdout: str | Path | None = None,
):
    """The graph as the census_pipeline job runs it, in this process (the harness's runner): the
    CV cut to one repeat of 2 folds (integrity, not accuracy, is under test), one LightGBM thread
    per fit, the gate at 0.5, champion/challenger never blocking; `holdout`: a smaller held-out
    table (CENSUS_HOLDOUT) than the bundled one, which holdout_metrics judges challenger and
    champion on."""
    from census_assets_tests.harness.runner import run_graph as run_census_graph

    return run_census_graph(
        {
            "CENSUS_STORAGE_URL": str(storage),
            "CENSUS_SOURCE": str(source),
            "CENSUS_ACCURACY_THRESHOLD": str(THRESHOLD),
            "CENSUS_WORKERS": "1",
            **({"CENSUS_HOLDOUT": str(holdout)} if holdout else {}),
        },
        selection=selection or DEFAULT_SELECTION,
        instance=instance,
        run_config={**QUIET_LOGS, **(FIT_VOCABULARY if vocabulary == "fit" else {})},
        training={"n_splits": 2, "n_repeats": 1},
        lifecycle={"champion_tolerance": TOLERANCE},
        audit={"group_tolerance": TOLERANCE},
    )


def small_holdout(path: Path) -> Path:
    """A held-out table of HOLDOUT_ROWS rows of the bundled one, for run_graph's `holdout`: the
    audit in holdout_metrics costs in proportion to the rows it judges, and integrity, not
    accuracy, is under test."""
    import pandas as pd

    from census_assets.sources.common import BUNDLED_HOLDOUT, bundled_file

    pd.read_parquet(bundled_file(BUNDLED_HOLDOUT)).sample(HOLDOUT_ROWS, random_state=0).to_parquet(path, index=False)
    return path


def summarize(result) -> dict[str, Any]:
    """What the tests need of a run, as JSON."""
    from census_assets_tests.harness.runner import failure_messages

    materialized = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        name = materialization.asset_key.to_user_string()
        materialized[name] = {
            key: value.value
            for key, value in materialization.metadata.items()
            if key in KEPT_METADATA and isinstance(value.value, str | int | float | bool)
        }
    return {
        "success": result.success,
        "run_id": result.run_id,
        "failures": failure_messages(result),
        "restarted": [event.step_key for event in result.all_events if event.event_type_value == "STEP_RESTARTED"],
        "materialized": materialized,
    }


# ---- faults --------------------------------------------------------------------------------------

MODES = ("before", "after", "mid")
# The fault point at which each kill mode strikes.
KILL_POINTS = {"before": "reserved", "mid": "written", "after": "committed"}


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_faults(trace: str, kill: dict | None = None, pause: dict | None = None) -> None:
    """In this child: trace every committed write; kill ({"pattern", "mode"}) or pause
    ({"pattern", "point", "paused", "resume"}) at the first write whose name matches the pattern."""
    from census_assets.storage.objects import FAULTS

    trace_file = open(trace, "a")  # noqa: SIM115 - lives as long as the process
    armed = {"kill": kill is not None, "pause": pause is not None}
    if kill:
        assert kill["mode"] in MODES, kill

    def record(name: str) -> None:
        # Flushed to the kernel, which keeps it when the process is killed (no fsync: the machine stays up).
        trace_file.write(name + "\n")
        trace_file.flush()

    def hook(point: str, name: str, temporary: Path | None) -> None:
        if point == "committed":
            record(name)
        if armed["kill"] and point == KILL_POINTS[kill["mode"]] and re.search(kill["pattern"], name):
            armed["kill"] = False
            if kill["mode"] == "mid":  # the bytes are in the temp file, not yet fsync'd: half of them reach the disk
                os.truncate(temporary, temporary.stat().st_size // 2)
            _die()
        if armed["pause"] and point == pause["point"] and re.search(pause["pattern"], name):
            armed["pause"] = False
            Path(pause["paused"]).write_text(name)
            while not Path(pause["resume"]).exists():
                time.sleep(0.02)

    FAULTS.install(hook)


# ---- the fork server -----------------------------------------------------------------------------


def _child(job: dict) -> int:
    log = os.open(job.get("log") or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    signal.alarm(job.get("timeout") or 300)  # a run that hangs (a lock never released) dies: -14
    try:
        if job.get("fsize"):
            import resource

            resource.setrlimit(resource.RLIMIT_FSIZE, (job["fsize"], job["fsize"]))
        install_faults(job["trace"], job.get("kill"), job.get("pause"))
        instance = None
        if job.get("dagster_home"):
            import dagster as dg

            instance = dg.DagsterInstance.from_config(job["dagster_home"])
        result = run_graph(job["storage"], job["source"], job.get("vocabulary", "bundled"), job.get("selection"),
                           instance, job.get("holdout"))
        times = os.times()
        Path(job["result"]).write_text(json.dumps({**summarize(result), "cpu_seconds": times.user + times.system}))
        return 0
    except BaseException:
        import traceback

        traceback.print_exc()
        return 3
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def serve(cpu: int) -> None:
    """Answer each job line on stdin with {"returncode": ...} on stdout, one child per job."""
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[cpu % len(cpus)]})
    os.environ.update(SERVER_ENV)
    # Imported once, here: the children fork with them loaded (none of them has run yet).
    import dagster  # noqa: F401
    import lightgbm  # noqa: F401
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import sklearn.model_selection  # noqa: F401

    import census_assets.definitions  # noqa: F401
    import census_assets_tests.harness.runner  # noqa: F401

    dagster.DagsterInstance.ephemeral().dispose()  # its storage modules imported (nothing started)
    assert threading.active_count() == 1, "a thread before fork"

    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else printed goes to stderr, never into the replies
    replies.write(json.dumps({"ready": True}) + "\n")
    replies.flush()
    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            os._exit(_child(job))
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        replies.flush()


class ForkServer:
    """The client side of one server: run(job) -> the child's return code and its result."""

    def __init__(self, cpu: int, workdir: Path, holdout: Path | None = None):
        self.workdir, self.holdout, self.count, self.lock = workdir, holdout, 0, threading.Lock()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "census_assets_tests.scenarios.integrity_support", str(cpu)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(workdir / f"server{cpu}.log", "w"),  # noqa: SIM115
            text=True,
            env={**os.environ, **SERVER_ENV},
            cwd=REPO_ROOT,
        )
        self.cpu = cpu
        self.ready = False

    def _wait_ready(self) -> None:
        if not self.ready:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"fork server {self.cpu} died; see {self.workdir}/server{self.cpu}.log")
            self.ready = True

    def run(self, storage, source, *, vocabulary="bundled", selection=None, kill=None, pause=None, fsize=None,
            dagster_home=None, quiet=False) -> dict:
        """{"returncode", "result" (None unless the run finished), "trace" (object names written),
        "log" (the child's output)}."""
        with self.lock:
            self._wait_ready()
            self.count += 1
            stem = self.workdir / f"job{self.cpu}-{self.count}"
            job = {
                "storage": str(storage),
                "source": str(source),
                "vocabulary": vocabulary,
                "selection": selection,
                "kill": dict(zip(("pattern", "mode"), kill, strict=True)) if kill else None,
                "pause": pause,
                "trace": str(stem) + ".trace",
                "result": str(stem) + ".json",
                "log": None if quiet else str(stem) + ".log",
                "fsize": fsize,
                "dagster_home": str(dagster_home) if dagster_home else None,
                "holdout": str(self.holdout) if self.holdout else None,
            }
            self.process.stdin.write(json.dumps(job) + "\n")
            self.process.stdin.flush()
            reply = self.process.stdout.readline()
            if not reply:
                raise RuntimeError(f"fork server {self.cpu} died; see {self.workdir}/server{self.cpu}.log")
        result_path, trace_path, log_path = (Path(job[key]) if job[key] else None for key in ("result", "trace", "log"))
        return {
            "returncode": json.loads(reply)["returncode"],
            "result": json.loads(result_path.read_text()) if result_path.exists() else None,
            "trace": trace_path.read_text().splitlines() if trace_path.exists() else [],
            "log": log_path.read_text(errors="replace")[-4000:] if log_path and log_path.exists() else "",
        }

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class PausedRun:
    """A run on `server`, started in a thread, that stands still at the first write whose object
    name matches `pattern`, at fault point `point`, until resume(). Use it in a `with` block. Never
    pause inside a compare-and-swap (a pointer, a lease, production.json): the run would stand still
    holding that object's flock, and every other writer of it would wait for it."""

    def __init__(self, server: ForkServer, storage, source, pattern: str, point: str = "committed", **options):
        stem = server.workdir / f"pause-{uuid.uuid4().hex[:8]}"
        self.paused, self.resumed = Path(f"{stem}.paused"), Path(f"{stem}.resume")
        pause = {"pattern": pattern, "point": point, "paused": str(self.paused), "resume": str(self.resumed)}
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.future = self.pool.submit(server.run, storage, source, pause=pause, **options)

    def wait_paused(self, timeout: float = 180) -> str:
        """The object name the run stands still at."""
        deadline = time.monotonic() + timeout
        while not self.paused.exists():
            if self.future.done():
                raise AssertionError(f"the run ended before it paused: {self.future.result()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the run did not pause within {timeout:.0f} s")
            time.sleep(0.05)
        return self.paused.read_text()

    def resume(self, timeout: float = 300) -> dict:
        self.resumed.touch()
        try:
            return self.future.result(timeout)
        finally:
            self.pool.shutdown()

    def __enter__(self) -> PausedRun:
        return self

    def __exit__(self, *exc_info) -> None:
        # A test that failed while the run stood still must not leave it (and its server) waiting.
        if not self.resumed.exists():
            self.resumed.touch()
            self.pool.shutdown()


def start_servers(workdir: Path, count: int = 2, holdout: Path | None = None) -> list[ForkServer]:
    """`holdout`: the CENSUS_HOLDOUT of every run (see run_graph)."""
    servers = [ForkServer(cpu, workdir, holdout) for cpu in range(count)]
    started = time.time()
    for server in servers:
        server._wait_ready()
    servers[0].startup_seconds = time.time() - started
    return servers


if __name__ == "__main__":
    serve(int(sys.argv[1]))
