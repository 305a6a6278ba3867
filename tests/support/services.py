"""Start and stop the real services the tests run against: MLflow server, moto S3, PostgreSQL databases.

Every process is started in its own session and stopped by its process group id, so that a server's
workers (uvicorn, MLflow's job runner) never outlive the test run. The benchmarks start their servers with
``launch_process`` too (this module imports nothing but the standard library).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS = {"host": "127.0.0.1", "port": 6379}


class ServiceUnavailable(RuntimeError):
    """A service the test needs could not be reached or started."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen
    log_path: Path
    url: str = ""
    extra: dict = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)  # time.monotonic() at its start

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=timeout)
        # Children may survive their leader (uvicorn workers, job runners): sweep the group.
        _signal_group(self.pid, signal.SIGKILL)

    def kill(self, timeout: float = 15.0) -> None:
        """Die as in a crash: SIGKILL to the leader's pid and its whole group (its server workers), no shutdown."""
        _signal_group(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=timeout)


def descendants(pid: int) -> list[int]:
    """Every living process under ``pid`` (children, grandchildren, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def restart_postgres() -> float:
    """Restart this machine's PostgreSQL cluster (fast mode: every open connection is cut); returns the
    seconds it took until it accepted connections again."""
    started = time.monotonic()
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "--mode", "fast"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not port_open(POSTGRES["host"], POSTGRES["port"]):
        if time.monotonic() > deadline:
            raise ServiceUnavailable("PostgreSQL did not come back within 60s of its restart")
        time.sleep(0.2)
    return time.monotonic() - started


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def launch_process(
    name: str,
    command: list[str],
    log_dir: Path,
    *,
    url: str = "",
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    die_with_parent: bool = False,
) -> ManagedProcess:
    """Start ``command`` in its own session, its output in ``log_dir/<name>.log``, without waiting for it.
    ``die_with_parent``: the process gets SIGTERM when the calling thread's process dies, even by SIGKILL
    (Linux ``PR_SET_PDEATHSIG``; tied to the calling thread, so only for callers that outlive the process)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name.replace(' ', '-')}.log"
    log_file = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    popen = subprocess.Popen(
        command,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        cwd=str(cwd or log_dir),
        start_new_session=True,
        preexec_fn=_terminate_with_parent if die_with_parent else None,
    )
    log_file.close()
    return ManagedProcess(name=name, popen=popen, log_path=log_path, url=url)


def _terminate_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start_process(
    name: str,
    command: list[str],
    log_dir: Path,
    *,
    ready: Callable[[], bool],
    timeout: float = 90.0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> ManagedProcess:
    process = launch_process(name, command, log_dir, env=env, cwd=cwd)
    popen = process.popen
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise ServiceUnavailable(f"{name} exited with code {popen.returncode}:\n{process.log_tail()}")
        if ready():
            return process
        time.sleep(0.25)
    process.stop()
    raise ServiceUnavailable(f"{name} did not become ready within {timeout:.0f}s:\n{process.log_tail()}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except (urllib.error.URLError, OSError):
        return False


def start_mlflow_server(
    workdir: Path,
    *,
    backend_store_uri: str | None = None,
    admin_password: str | None = None,
    port: int | None = None,
) -> ManagedProcess:
    """A real ``mlflow server`` on a free port; with ``admin_password``, the basic-auth app (user ``admin``).

    The backend store and artifacts live in ``workdir``: started again on the same ``workdir`` (and ``port``),
    it is the same server restarted, with everything it had stored."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    backend = backend_store_uri or f"sqlite:///{workdir / 'mlflow.db'}"
    command = [
        str(BIN / "mlflow"), "server",
        "--backend-store-uri", backend,
        "--artifacts-destination", str(workdir / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    env = {
        "MLFLOW_TRACKING_URI": "", "MLFLOW_TRACKING_USERNAME": "", "MLFLOW_TRACKING_PASSWORD": "",
        # The job runner (GenAI evaluation jobs) forks several huey workers that busy-poll: no test uses it.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }  # fmt: skip
    name = "mlflow-server"
    if admin_password:
        name = "mlflow-server-auth"
        config = workdir / "basic_auth.ini"
        config.write_text(
            "[mlflow]\ndefault_permission = READ\n"
            f"database_uri = sqlite:///{workdir / 'basic_auth.db'}\n"
            "admin_username = admin\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        command += ["--app-name", "basic-auth"]
        env.update(
            {
                "MLFLOW_AUTH_CONFIG_PATH": str(config),
                "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
                "MLFLOW_FLASK_SERVER_SECRET_KEY": uuid.uuid4().hex,
            }
        )
    url = f"http://127.0.0.1:{port}"
    process = start_process(name, command, workdir, ready=lambda: http_ok(f"{url}/health"), timeout=120, env=env)
    process.url = url
    return process


def start_moto_server(workdir: Path, *, port: int | None = None, durable: bool = False) -> ManagedProcess:
    """A moto S3 server on a free port (or ``port``). moto keeps its state in memory; with ``durable`` it
    records every request to ``workdir/moto_recording.jsonl`` and, started again on the same ``workdir`` (and
    ``port``), replays them first: what was stored before a crash is there again, as on real S3."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    recording = workdir / "moto_recording.jsonl"
    env = {"MOTO_ENABLE_RECORDING": "true", "MOTO_RECORDER_FILEPATH": str(recording)} if durable else None
    replay = durable and recording.exists() and recording.stat().st_size > 0
    process = start_process(
        "moto-server",
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        workdir,
        ready=lambda: http_ok(f"{url}/moto-api/"),
        timeout=60,
        env=env,
    )
    process.url = url
    if replay:
        request = urllib.request.Request(f"{url}/moto-api/recorder/replay-recording", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=60) as response:
            if response.status != 200:
                process.stop()
                raise ServiceUnavailable(f"moto did not replay {recording}: HTTP {response.status}")
    return process


def postgres_admin_connection():
    import psycopg2

    connection = psycopg2.connect(dbname="postgres", connect_timeout=3, **POSTGRES)
    connection.autocommit = True
    return connection


def create_postgres_database(prefix: str) -> str:
    """Create a fresh, uniquely named database and return its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        connection = postgres_admin_connection()
    except Exception as error:
        raise ServiceUnavailable(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {error}") from error
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()
    return f"postgresql+psycopg2://{POSTGRES['user']}@{POSTGRES['host']}:{POSTGRES['port']}/{name}"


def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[-1]
    connection = postgres_admin_connection()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    connection.close()


def redis_reachable() -> bool:
    return port_open(REDIS["host"], REDIS["port"])


class Gateway:
    """A reverse proxy in front of one HTTP server, as a load balancer stands before MLflow in production:
    it forwards every request while ``available`` and answers ``503 Service Unavailable`` (what a balancer
    says when its backend is restarting) while not. ``requests`` counts what reached it."""

    def __init__(self, target_url: str) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        gateway = self
        self.target_url = target_url.rstrip("/")
        self.available = True
        self.requests = {"forwarded": 0, "refused": 0}

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if not gateway.available:
                    gateway.requests["refused"] += 1
                    self._answer(
                        503, {"Content-Type": "text/html"}, b"<html><body>503 Service Unavailable</body></html>"
                    )
                    return
                gateway.requests["forwarded"] += 1
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                request = urllib.request.Request(
                    gateway.target_url + self.path, data=body, headers=headers, method=self.command
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        self._answer(response.status, dict(response.headers), response.read())
                except urllib.error.HTTPError as error:
                    self._answer(error.code, dict(error.headers), error.read())

            def _answer(self, status: int, headers: dict, body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="gateway", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
