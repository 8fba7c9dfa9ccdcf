"""A real PostgreSQL server on 127.0.0.1 (Debian's initdb/postgres binaries), started through
ManagedProcess.

The server lives in a temporary data directory, on a free port, with password authentication
(scram-sha-256): the password reaches Dagster only through DAGSTER_PG_PASSWORD, as in
deploy/dagster.yaml. Tests take their own database from it (`create_database(name)`). Run as root
(CI containers), initdb refuses to run: the server then runs as the `postgres` user that Debian's
`postgresql` package creates (scripts/setup.sh installs it when missing).
"""

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from census_assets_tests.harness.processes import ManagedProcess, free_port

USER = "dagster"
START_TIMEOUT_S = 60
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
    """One PostgreSQL cluster: initdb into a temporary folder, then `postgres` as a ManagedProcess."""

    def __init__(self, base: Path | None = None):
        self.bin = postgres_binaries()
        self.base = Path(base or tempfile.mkdtemp(prefix="census-pg-"))
        self.base.mkdir(parents=True, exist_ok=True)
        self.data = self.base / "data"
        self.host = "127.0.0.1"
        self.port = free_port()
        self.user = USER
        self.password = secrets.token_urlsafe(16)
        # initdb refuses root: as root, the cluster belongs to the `postgres` system user.
        self.run_as = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(SERVICE_USER)
            except KeyError:
                pytest.fail(f"running as root needs the `{SERVICE_USER}` user (Debian's postgresql package)")
            self.run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
            os.chmod(self.base, 0o755)
            os.chown(self.base, account.pw_uid, account.pw_gid)
        self.server = ManagedProcess(
            "postgres",
            [
                self.bin / "postgres", "-D", self.data, "-p", self.port,
                "-c", f"listen_addresses={self.host}",
                "-c", f"unix_socket_directories={self.base}",
                "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "max_connections=200",
            ],
            self.base / "postgres.log",
            cwd=self.base,
            stop_signals=(signal.SIGINT, signal.SIGTERM),  # fast shutdown first: clients disconnected
            run_as=self.run_as,
        )  # fmt: skip

    def _own(self, path: Path) -> None:
        if self.run_as:
            os.chown(path, self.run_as["user"], self.run_as["group"])

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
            cwd=self.base, capture_output=True, text=True, **self.run_as,
        )  # fmt: skip
        password_file.unlink()
        if initdb.returncode != 0:
            pytest.fail(f"initdb failed ({initdb.returncode}):\n{initdb.stdout[-3000:]}\n{initdb.stderr[-3000:]}")
        self.server.start()
        # psycopg2.OperationalError (not an OSError) while it starts
        self.server.wait_until(lambda: self.connect().close() or True, "accepting connections",
                               timeout=START_TIMEOUT_S, not_yet=(Exception,))  # fmt: skip
        return self

    def connect(self, dbname: str = "postgres"):
        import psycopg2

        return psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=dbname, connect_timeout=5
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

    def remove(self) -> None:
        self.server.stop()
        shutil.rmtree(self.base, ignore_errors=True)
