"""A real PostgreSQL server on 127.0.0.1 for the test session (Debian's initdb/postgres binaries).

Loaded by conftest.py through `pytest_plugins`; the `postgres_server` fixture is session-scoped,
so every test that needs PostgreSQL shares one server and takes its own database from it
(`postgres_server.create_database(name)`). The server lives in a temporary data directory, on a
free port, with password authentication (scram-sha-256): the password reaches Dagster only
through DAGSTER_PG_PASSWORD, as in deploy/dagster.yaml. It is stopped at teardown, also when
tests fail (fast shutdown, then SIGTERM/SIGKILL to its process group); its log is printed when it
fails to start.

Run as root (CI containers), initdb refuses to run: the server then runs as the `postgres` user
that Debian's `postgresql` package creates (scripts/setup.sh installs it when missing).
"""

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from census_assets_tests.daemon_support import register_log, unregister_log
from census_assets_tests.ui_support import free_port

USER = "dagster"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20
SERVICE_USER = "postgres"  # who runs the server when the tests run as root


def postgres_binaries() -> Path:
    """The folder holding initdb and postgres: CENSUS_PG_BIN, PATH, or Debian's versioned folder."""
    candidates = [os.environ.get("CENSUS_PG_BIN", "")]
    if shutil.which("initdb") and shutil.which("postgres"):
        candidates.append(str(Path(os.path.realpath(shutil.which("initdb"))).parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)  # newest first
    for folder in filter(None, candidates):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "postgres").exists():
            return Path(folder)
    pytest.fail(
        "no PostgreSQL server binaries (initdb, postgres): `bash scripts/setup.sh` installs Debian's postgresql"
    )


class PostgresServer:
    """One PostgreSQL cluster: initdb into a temporary folder, `postgres` in its own process group."""

    def __init__(self, base: Path | None = None, log_path: Path | None = None):
        self.bin = postgres_binaries()
        self.base = Path(base or tempfile.mkdtemp(prefix="census-pg-"))
        self.base.mkdir(parents=True, exist_ok=True)
        self.data = self.base / "data"
        self.log_path = log_path or self.base / "postgres.log"
        self.host = "127.0.0.1"
        self.port = free_port()
        self.user = USER
        self.password = secrets.token_urlsafe(16)
        self.process: subprocess.Popen | None = None
        # initdb refuses root: as root, the cluster belongs to the `postgres` system user.
        self._as = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(SERVICE_USER)
            except KeyError:
                pytest.fail(f"running as root needs the `{SERVICE_USER}` user (Debian's postgresql package)")
            self._as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
            os.chmod(self.base, 0o755)
            os.chown(self.base, account.pw_uid, account.pw_gid)

    def _own(self, path: Path) -> None:
        if self._as:
            os.chown(path, self._as["user"], self._as["group"])

    def start(self) -> "PostgresServer":
        password_file = self.base / "initdb.password"
        with os.fdopen(os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as secret:
            secret.write(self.password + "\n")
        self._own(password_file)
        initdb = subprocess.run(
            [
                str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user,
                "--pwfile", str(password_file), "--auth=scram-sha-256",
                "-E", "UTF8", "--locale=C", "--no-sync",
            ],
            cwd=self.base, capture_output=True, text=True, **self._as,
        )  # fmt: skip
        password_file.unlink()
        if initdb.returncode != 0:
            pytest.fail(f"initdb failed ({initdb.returncode}):\n{initdb.stdout[-3000:]}\n{initdb.stderr[-3000:]}")
        log = open(self.log_path, "wb")
        self._own(self.log_path)
        self.process = subprocess.Popen(
            [
                str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
                "-c", f"listen_addresses={self.host}",
                "-c", f"unix_socket_directories={self.base}",
                "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "max_connections=200",
            ],
            cwd=self.base, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, ended at stop()
            **self._as,
        )  # fmt: skip
        log.close()
        register_log("postgres", self.log_path)
        self._wait_until_accepting()
        return self

    def connect(self, dbname: str = "postgres"):
        import psycopg2

        return psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=dbname, connect_timeout=5
        )

    def _wait_until_accepting(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        error = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                self.connect().close()
                return
            except Exception as exc:  # psycopg2.OperationalError while it starts
                error = exc
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(
            f"postgres not accepting connections after {START_TIMEOUT_S} s ({error}):\n{self.log_tail()}"
        )

    def create_database(self, name: str) -> dict:
        """A fresh database; returns the DAGSTER_PG_* variables that deploy/dagster.yaml reads."""
        connection = self.connect()
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.env(name)

    def env(self, dbname: str) -> dict:
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": dbname,
        }

    def query(self, dbname: str, sql: str, params: tuple = ()) -> list[tuple]:
        connection = self.connect(dbname)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            connection.close()

    def log_tail(self, characters: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-characters:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients disconnected, checkpoint), then SIGTERM/SIGKILL to the group."""
        if self.process is None or self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, STOP_TIMEOUT_S), (signal.SIGTERM, 5), (signal.SIGKILL, None)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue

    def remove(self) -> None:
        self.stop()
        unregister_log("postgres")
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the session; tests take their own database with create_database()."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()
