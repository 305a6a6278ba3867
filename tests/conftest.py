"""Test harness: an isolated Airflow home with a migrated metadata DB, a real MLflow server, a moto S3 server.

Environment switches:

* ``MLOPS_REQUIRE_SERVICES=1``: a test whose service is missing fails instead of skipping (CI sets it).
* ``MLOPS_METADATA_BACKEND=postgres``: the Airflow metadata DB is a fresh database on this machine's
  PostgreSQL, dropped at the end (``make test`` runs the ``airflow_db`` tests a second time this way).

Everything Airflow reads at import time is set in ``pytest_configure``, which runs before any test module
is imported (so before Airflow is). ``tests`` and ``include`` are on ``sys.path`` through ``pythonpath`` in
pyproject.toml.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from support import services  # ``tests`` is on sys.path through pyproject.toml's pythonpath

REPO_ROOT = Path(__file__).resolve().parents[1]

REQUIRE_SERVICES = os.environ.get("MLOPS_REQUIRE_SERVICES") == "1"
METADATA_BACKEND = os.environ.get("MLOPS_METADATA_BACKEND", "sqlite")
TEST_ROOT = Path(tempfile.mkdtemp(prefix="mlops-tests-"))

METADATA_DB_ERROR: str | None = None
METADATA_DB_URL: str | None = None


def _interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    """The test environment, set before pytest imports any test module (and so before Airflow reads it)."""
    global METADATA_DB_ERROR, METADATA_DB_URL
    # `kill <pytest>` (a CI timeout, a developer) ends the run as Ctrl-C does: fixtures tear down, so the services
    # they started in sessions of their own (Airflow, Celery, MLflow, moto) stop too instead of running on.
    signal.signal(signal.SIGTERM, _interrupted)
    if METADATA_BACKEND not in ("sqlite", "postgres"):
        raise pytest.UsageError(f"MLOPS_METADATA_BACKEND={METADATA_BACKEND!r}: use 'sqlite' or 'postgres'.")
    for name in list(os.environ):
        # Outer settings must not leak in: tests talk only to the services started here.
        # OpenLineage too: Airflow's provider emits only when a transport is configured, and no test but
        # test_openlineage.py (which configures its own) should send events anywhere.
        if name.startswith(("MLFLOW_", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "OPENLINEAGE_", "AIRFLOW__OPENLINEAGE__")) or name in (
            "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
        ):  # fmt: skip
            del os.environ[name]

    os.environ.update(
        {
            "AIRFLOW_HOME": str(TEST_ROOT / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                [
                    {
                        "name": name,
                        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                        "kwargs": {"path": str(path)},
                    }
                    for name, path in (
                        ("mlops-reference-dags", REPO_ROOT / "dags"),
                        ("mlops-test-dags", REPO_ROOT / "tests" / "dags"),
                    )
                ]
            ),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "MLOPS_HOME": str(TEST_ROOT / "mlops_home"),
            "GX_ANALYTICS_ENABLED": "false",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_DEFAULT_REGION": "us-east-1",
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )

    if METADATA_BACKEND == "postgres":
        try:
            METADATA_DB_URL = services.create_postgres_database("mlops_airflow")
            os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = METADATA_DB_URL
        except services.ServiceUnavailable as error:
            METADATA_DB_ERROR = str(error)
    else:
        os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{TEST_ROOT / 'airflow' / 'airflow.db'}"


def service_missing(name: str, reason: str):
    """Skip the test, or fail it when services are required (CI)."""
    message = f"{name} is not available: {reason}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (MLOPS_REQUIRE_SERVICES=1 makes this a failure)", pytrace=False)
    pytest.skip(message)


SERVICE_FIXTURES = frozenset(
    {"mlflow_servers", "mlflow_server", "mlflow_auth_server", "moto_server", "s3_bucket", "postgres_url", "redis_url"}
)


def pytest_collection_modifyitems(config, items):
    """Markers follow what a test uses, so no test can be filed in the wrong layer:

    * the metadata database -> ``airflow_db`` (``make test`` runs it on PostgreSQL too);
    * a real service process (MLflow server, moto S3, PostgreSQL, Redis) or a clean install -> ``system``.

    What is left, ``-m "not airflow_db and not system"``, is the fast in-process layer.
    """
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if "airflow_db" in used and item.get_closest_marker("airflow_db") is None:
            item.add_marker(pytest.mark.airflow_db)
        needs_services = used & SERVICE_FIXTURES or item.get_closest_marker("packaging") is not None
        if needs_services and item.get_closest_marker("system") is None:
            item.add_marker(pytest.mark.system)


def pytest_report_header(config):
    return [f"mlops: metadata backend={METADATA_BACKEND}, test root={TEST_ROOT}, require services={REQUIRE_SERVICES}"]


def pytest_sessionfinish(session, exitstatus):
    if METADATA_DB_URL:
        try:
            services.drop_postgres_database(METADATA_DB_URL)
        except Exception as error:  # leave the run's verdict alone; say what is left behind
            print(f"\nmlops: could not drop {METADATA_DB_URL}: {error}", file=sys.stderr)
    if os.environ.get("MLOPS_KEEP_TEST_ROOT") != "1":
        shutil.rmtree(TEST_ROOT, ignore_errors=True)


# Garbage collection. Airflow, MLflow, GX, Feast and Evidently leave about a million long-lived objects, and each
# full collection walks them all: about 15 such collections took 4-6 s of a run of the fast layer, and the
# interpreter's own collections at exit 3-5 s more. So after collection, and after each test module once its
# fixtures are gone, whatever survives a collection is frozen (gc.freeze): later collections walk only newer
# objects. The price: a frozen object that later becomes garbage in a reference cycle stays in memory until the
# process ends (the fast layer's peak memory stayed at ~800 MB).


def _freeze_survivors() -> None:
    gc.collect()
    gc.freeze()


def pytest_collection_finish(session):
    _freeze_survivors()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    result = yield
    if nextitem is None or getattr(nextitem, "module", None) is not getattr(item, "module", None):
        _freeze_survivors()
    return result


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a command from the project's environment with the test environment."""
    return subprocess.run(
        [str(services.BIN / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def airflow_db():
    """The Airflow metadata database, migrated once per run (SQLite or a fresh PostgreSQL database)."""
    if METADATA_DB_ERROR:
        service_missing("PostgreSQL (Airflow metadata DB)", METADATA_DB_ERROR)
    result = run_cli("airflow", "db", "migrate")
    if result.returncode != 0:
        pytest.fail(f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


MLFLOW_ADMIN = {"username": "admin", "password": "s3cret-Adm1n-pass"}


@pytest.fixture(scope="session")
def mlflow_servers():
    """Both MLflow servers, started side by side on first use (each spends ~15 s migrating its database)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        plain = pool.submit(services.start_mlflow_server, TEST_ROOT / "mlflow-server")
        auth = pool.submit(
            services.start_mlflow_server, TEST_ROOT / "mlflow-server-auth", admin_password=MLFLOW_ADMIN["password"]
        )
    started = {}
    for name, future in (("plain", plain), ("auth", auth)):
        try:
            started[name] = future.result()
        except services.ServiceUnavailable as error:
            started[name] = error
    yield started
    for process in started.values():
        if isinstance(process, services.ManagedProcess):
            process.stop()


def _server(started: dict, name: str, label: str):
    process = started[name]
    if isinstance(process, Exception):
        service_missing(label, str(process))
    return process


@pytest.fixture(scope="session")
def mlflow_server(mlflow_servers):
    """A real ``mlflow server`` process (SQLite backend, proxied artifacts), stopped by pid at the end."""
    return _server(mlflow_servers, "plain", "MLflow server")


@pytest.fixture(scope="session")
def mlflow_auth_server(mlflow_servers):
    """An ``mlflow server --app-name basic-auth`` process; its admin login is in ``extra``."""
    process = _server(mlflow_servers, "auth", "MLflow server with basic auth")
    process.extra.update(MLFLOW_ADMIN)
    return process


MOTO_CONN_ID = "aws_default"
MOTO_KEY = {"login": "testing", "password": "testing"}


@pytest.fixture(scope="session")
def moto_server():
    """A moto S3 server process; the ``aws_default`` connection points at it."""
    try:
        process = services.start_moto_server(TEST_ROOT / "moto")
    except services.ServiceUnavailable as error:
        service_missing("moto S3 server", str(error))
    connection = {
        "conn_type": "aws",
        **MOTO_KEY,
        "extra": {"endpoint_url": process.url, "region_name": "us-east-1"},
    }
    os.environ[f"AIRFLOW_CONN_{MOTO_CONN_ID.upper()}"] = json.dumps(connection)
    yield process
    os.environ.pop(f"AIRFLOW_CONN_{MOTO_CONN_ID.upper()}", None)
    process.stop()


@pytest.fixture
def s3_bucket(moto_server):
    """A fresh, empty bucket on the moto server; yields its name."""
    import uuid

    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=moto_server.url,
        aws_access_key_id=MOTO_KEY["login"],
        aws_secret_access_key=MOTO_KEY["password"],
        region_name="us-east-1",
    )
    name = f"mlops-test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def connection_env(monkeypatch):
    """Define an Airflow connection for one test through its ``AIRFLOW_CONN_*`` variable."""

    def define(conn_id: str, **fields) -> str:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
        return conn_id

    return define


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    try:
        url = services.create_postgres_database("mlops_test")
    except services.ServiceUnavailable as error:
        service_missing("PostgreSQL", str(error))
    yield url
    services.drop_postgres_database(url)


@pytest.fixture
def redis_url():
    if not services.redis_reachable():
        service_missing("Redis", "nothing answers on 127.0.0.1:6379")
    return f"redis://{services.REDIS['host']}:{services.REDIS['port']}/0"
