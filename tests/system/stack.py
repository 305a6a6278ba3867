"""The production shape on this machine's real services: start it, use it, stop every process it started.

* Airflow 3 with its metadata DB on a fresh PostgreSQL database and the CeleryExecutor with Redis as
  broker (database index ``REDIS_DB``, flushed before and after), as separate processes: ``api-server``,
  ``scheduler``, ``dag-processor``, ``triggerer`` and a ``celery worker``, each in its own process group
  with its log in ``<root>/logs``; all are stopped by process group at the end, whatever happens
  (SIGTERM, then SIGKILL: the scheduler can hang on SIGTERM).
* MLflow as ``mlflow server`` with a PostgreSQL backend store and its artifacts on S3 (the moto server).
* Sample data (``include/sample_data.py``) on S3; Airflow reaches MLflow and S3 only through
  ``AIRFLOW_CONN_*`` connections (no AWS or MLflow variables in the Airflow processes).
* A model fleet: the model catalogue ``<root>/fleet/model_catalog.yaml`` (``MLOPS_MODEL_CATALOG``, read by
  ``dags/mlops_fleet.py``) with the eight models of :func:`fleet_models`, written before the dag-processor starts,
  and their small datasets under ``s3://<bucket>/fleet/`` (churn, deliveries, and deliveries of a second city).
* Known, distinctive secrets (``KNOWN_SECRETS``, new random values per run), so that ``test_secrets.py``
  can prove none of them shows up anywhere: the AWS secret key of ``aws_default`` (moto accepts any key;
  the MLflow server's own S3 access uses the same one), the password of ``mlflow_default`` (the MLflow
  server runs its ``basic-auth`` app with that password for its ``admin`` user), and a password in the
  metadata DB's URL and in the Celery result backend's (PostgreSQL's ``trust`` auth accepts and ignores it).

The test fixture in ``conftest.py`` uses :func:`running_stack`. To look at the stack by hand (the UI, the
API, the logs), run it on its own from the repository root; it stays up until Ctrl-C (or SIGTERM):

    .venv/bin/python -m tests.system.stack
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

SYSTEM_DIR = Path(__file__).resolve().parent
REPO_ROOT = SYSTEM_DIR.parents[1]
for _path in (REPO_ROOT / "tests", REPO_ROOT / "include"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from sample_data import DELIVERY_FEATURES  # noqa: E402
from support import services  # noqa: E402

from .api import AirflowApi  # noqa: E402

REFERENCE_DAGS = REPO_ROOT / "dags"
REDIS_DB = 11  # a broker database no other test uses; only this one is flushed
# The Celery queue of this run's stacks (every operator's default queue, and the one the worker serves): a stack
# left running by a killed test run shares the broker database, and its worker would take this run's tasks.
CELERY_QUEUE = f"mlops-system-{secrets.token_hex(4)}"
ADMIN = {"username": "admin", "password": "system-Adm1n-pass"}
# A second user (role "user": may answer Required actions) for approvals restricted to named approvers.
APPROVER = {"username": "release-manager", "password": "system-Appr0ver-pass"}
# The secrets the stack's connections hold. Each has a random core (caught however it is encoded) and the
# AWS key and MLflow password carry the `/` and `+` of real AWS secret keys, so URL-encoded forms differ.
MOTO_KEY = {"login": "testing", "password": f"aws-secret/{secrets.token_hex(8)}+{secrets.token_hex(4)}"}
MLFLOW_ADMIN = {"username": "admin", "password": f"mlflow-pass/{secrets.token_hex(8)}+{secrets.token_hex(4)}"}
DB_PASSWORD = f"db-pass-{secrets.token_hex(8)}"  # in a URL: kept URL-safe, so every encoding of it is the same
KNOWN_SECRETS = {
    "aws_default secret key": MOTO_KEY["password"],
    "mlflow_default password": MLFLOW_ADMIN["password"],
    "metadata DB password": DB_PASSWORD,
}
BUCKET = "mlops-system"
MODEL_NAME = "customer_churn"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", "celery-worker")
# Settings of one component only, on top of the shared environment.
COMPONENT_ENV = {
    # A DAG that left the file it came from (a model removed from the catalogue) is marked stale seconds after
    # the file's parse, not a minute later (the defaults: a 60 s scan, a 50 s threshold). A small threshold is
    # safe: a parse stamps its DAGs after it stamps the file's finish. Only the dag-processor: the scheduler runs
    # its trigger and asset clean-ups on the same interval.
    "dag-processor": {
        "AIRFLOW__DAG_PROCESSOR__STALE_DAG_THRESHOLD": "1",
        "AIRFLOW__SCHEDULER__PARSING_CLEANUP_INTERVAL": "3",
    },
}
SAMPLE_START = "2026-01-01"  # the reference DAGs start on 2026-01-01
SAMPLE_DAYS = 25  # three full @weekly intervals: 4-10, 11-17 and 18-24 January
SAMPLE_ROWS_PER_DAY = 500
REFERENCE_BUNDLE = "mlops-reference-dags"  # the bundle of the repository's dags/ folder
FLEET_DAYS = 4  # the fleet's datasets: four days from SAMPLE_START ...
FLEET_ROWS_PER_DAY = 300  # ... of 300 rows each: eight lifecycles finish in a few minutes on 2 cores


def fleet_models(bucket: str = BUCKET) -> dict[str, dict]:
    """The stack's model catalogue: eight models on three datasets, classification and regression, each with its
    own target and estimator; no schedule (the tests trigger them through the API). ``delivery_eu`` is the only
    model on ``deliveries_eu``."""
    data = f"s3://{bucket}/fleet"
    churn = {"dataset_uri": f"{data}/churn", "id_columns": ["customer_id", "dt"],
             "timestamp_column": "event_timestamp", "owners": ["team-retention"], "tags": ["churn"]}  # fmt: skip
    deliveries = {"dataset_uri": f"{data}/deliveries", "feature_columns": DELIVERY_FEATURES,
                  "id_columns": ["order_id", "dt"], "timestamp_column": "event_timestamp",
                  "owners": ["team-logistics"], "tags": ["deliveries"]}  # fmt: skip
    models = {
        "churn_gbm": {**churn, "target_column": "churned", "estimator_params": {"max_iter": 50},
                      "primary_metric": "roc_auc", "min_improvement": 0.0},
        "churn_forest": {**churn, "target_column": "churned", "estimator": "sklearn.ensemble.RandomForestClassifier",
                         "estimator_params": {"n_estimators": 30, "max_depth": 6},
                         "thresholds": {"roc_auc": {"min": 0.55}}},
        "churn_logistic": {**churn, "target_column": "churned", "estimator": "sklearn.linear_model.LogisticRegression",
                           "feature_columns": ["tenure_months", "monthly_charges", "support_calls", "contract"],
                           "estimator_params": {"C": 0.5, "max_iter": 300}, "primary_metric": "f1_macro"},
        "churn_charges": {**churn, "target_column": "monthly_charges", "estimator": "sklearn.linear_model.Ridge",
                          "feature_columns": ["tenure_months", "support_calls", "plan", "contract"],
                          "primary_metric": "rmse"},
        "delivery_minutes": {**deliveries, "target_column": "delivery_minutes", "estimator_params": {"max_iter": 50},
                             "primary_metric": "rmse", "min_improvement": 0.0},
        "delivery_minutes_linear": {**deliveries, "target_column": "delivery_minutes",
                                    "estimator": "sklearn.linear_model.LinearRegression", "primary_metric": "mae"},
        "delivery_late": {**deliveries, "target_column": "late", "estimator": "sklearn.tree.DecisionTreeClassifier",
                          "estimator_params": {"max_depth": 5}, "primary_metric": "roc_auc"},
        "delivery_eu": {**deliveries, "dataset_uri": f"{data}/deliveries_eu", "target_column": "delivery_minutes",
                        "estimator": "sklearn.ensemble.RandomForestRegressor",
                        "estimator_params": {"n_estimators": 30, "max_depth": 8}, "primary_metric": "r2"},
    }  # fmt: skip
    return {
        name: {**entry, "schedule": None, "tags": [*entry["tags"], "system-test"]} for name, entry in models.items()
    }


def write_catalogue(path: Path, models: dict) -> None:
    """The catalogue file, replaced in one step (a parse never reads half a file)."""
    import yaml

    text = "# The system tests' model catalogue (tests/system/stack.py).\n" + yaml.safe_dump(
        {"models": models}, sort_keys=False
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)


class StackError(RuntimeError):
    """A part of the stack did not start; the message holds the component's log."""


@dataclass
class Stack:
    """What the system tests talk to; ``api`` is logged in as the admin user."""

    root: Path
    env: dict[str, str] = field(repr=False)  # holds the known secrets: not in failure reports
    api: AirflowApi
    api_url: str
    mlflow_url: str
    moto_url: str
    bucket: str
    data_uri: str
    landing_uri: str
    model_name: str
    catalogue_path: Path  # MLOPS_MODEL_CATALOG of the Airflow processes
    known_secrets: dict[str, str] = field(default_factory=lambda: dict(KNOWN_SECRETS), repr=False)
    processes: dict[str, services.ManagedProcess] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict, repr=False)
    timings: dict[str, float] = field(default_factory=dict)

    def kill(self, name: str) -> list[int]:
        """A component dies as its machine would: SIGKILL to its process and every process under it (a Celery
        worker's task processes included, whatever group they are in). Returns the pids killed."""
        process = self.processes[name]
        doomed = [process.pid, *services.descendants(process.pid)]
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.kill()
        return doomed

    def restart(self, name: str) -> services.ManagedProcess:
        """Start a component again with its command and environment (as its supervisor would after a crash)."""
        assert self.processes[name].popen.poll() is not None, f"{name} is still running: kill it first"
        self.processes[name] = start_component(name, self.commands[name], self.root, self.env)
        return self.processes[name]

    def restart_exited(self) -> list[str]:
        """Restart every component that exited (a crash after a fault); returns their names."""
        exited = [name for name in COMPONENTS if self.processes[name].popen.poll() is not None]
        for name in exited:
            self.restart(name)
        return exited

    def s3(self):
        return s3_client(self.moto_url)

    def write_catalogue(self, models: dict) -> None:
        """Replace the model catalogue; the fleet DAGs follow at the next parse of the fleet's DAG files."""
        write_catalogue(self.catalogue_path, models)

    def request_parse(self, relative_fileloc: str, bundle: str = REFERENCE_BUNDLE) -> None:
        """Ask the dag-processor to parse a DAG file now, with the row ``PUT /api/v2/parseDagFile`` adds.

        For a file that defines no DAG (``dags/mlops_fleet_catalogue.py`` with a clean catalogue): the API finds
        the file's DAGs to authorise a reparse and answers 404 when there are none, so neither the UI nor the API
        can ask for it (a person waits for the periodic parse, ``min_file_process_interval``). Files with DAGs
        are reparsed through the API (``AirflowApi.reparse``)."""
        import hashlib

        import psycopg2

        key = hashlib.md5(f"{bundle}:{relative_fileloc}".encode()).hexdigest()
        url = self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg2://", "postgresql://")
        connection = psycopg2.connect(url, connect_timeout=5)
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO dag_priority_parsing_request (id, bundle_name, relative_fileloc) "
                    "VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING",
                    (key, bundle, relative_fileloc),
                )
        finally:
            connection.close()

    def api_as(self, user: dict[str, str]) -> AirflowApi:
        """The REST API signed in as another of the stack's users (close it after use)."""
        return AirflowApi(self.api_url, user["username"], user["password"])

    def mlflow(self):
        """An ``MlflowClient`` of the stack's server, signed in as its ``admin`` user."""
        return AdminMlflowClient(self.mlflow_url)

    def diagnostics(self, lines: int = 25) -> str:
        """Which components are alive, with the tail of each one's log."""
        parts = []
        for name, process in self.processes.items():
            code = process.popen.poll()
            status = "running" if code is None else f"EXITED with code {code}"
            parts.append(
                f"--- {name} (pid {process.pid}, {status}); last lines of {process.log_path}:\n"
                f"{process.log_tail(lines)}"
            )
        return "Components:\n" + "\n".join(parts)


class AdminMlflowClient:
    """``MlflowClient`` calls with the MLflow admin's basic-auth credentials. MLflow reads them from the
    environment at every request; they are set for the duration of each call only, so the test process's
    environment (and the other tests in it) never keeps them."""

    def __init__(self, url: str):
        from mlflow import MlflowClient

        self._client = MlflowClient(tracking_uri=url, registry_uri=url)
        self._credentials = {
            "MLFLOW_TRACKING_USERNAME": MLFLOW_ADMIN["username"],
            "MLFLOW_TRACKING_PASSWORD": MLFLOW_ADMIN["password"],
        }

    def __getattr__(self, name: str):
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args, **kwargs):
            saved = {key: os.environ.get(key) for key in self._credentials}
            os.environ.update(self._credentials)
            try:
                return attribute(*args, **kwargs)
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

        return call


def with_password(url: str, password: str) -> str:
    """``scheme://user@host/db`` -> ``scheme://user:<password, URL-encoded>@host/db``."""
    scheme, rest = url.split("://", 1)
    user, location = rest.split("@", 1)
    return f"{scheme}://{user}:{quote(password, safe='')}@{location}"


def s3_client(url: str):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=MOTO_KEY["login"],
        aws_secret_access_key=MOTO_KEY["password"],
        region_name="us-east-1",
    )


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and of its children it has reaped, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def stop_all(processes) -> None:
    """Stop every process in parallel (SIGTERM, then SIGKILL of the whole group after a timeout)."""
    alive = list({id(p): p for p in processes if p is not None}.values())
    if not alive:
        return
    with ThreadPoolExecutor(max_workers=len(alive)) as pool:
        list(pool.map(lambda p: p.stop(timeout=10), alive))


def flush_broker() -> None:
    import redis

    redis.Redis(host=services.REDIS["host"], port=services.REDIS["port"], db=REDIS_DB).flushdb()


def airflow_env(root: Path, metadata_url: str, api_port: int, mlflow_url: str, moto_url: str) -> dict[str, str]:
    """Everything the Airflow processes get, on top of the caller's environment."""
    bundles = [
        {
            "name": "mlops-system-dags",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(SYSTEM_DIR / "dags"), "refresh_interval": 5},
        }
    ]
    if REFERENCE_DAGS.is_dir():
        bundles.insert(
            0,
            {
                "name": "mlops-reference-dags",
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(REFERENCE_DAGS), "refresh_interval": 5},
            },
        )
    passwords = root / "airflow" / "simple_auth_manager_passwords.json"
    passwords.parent.mkdir(parents=True, exist_ok=True)
    passwords.write_text(json.dumps({user["username"]: user["password"] for user in (ADMIN, APPROVER)}))
    psycopg_url = metadata_url.replace("postgresql+psycopg2://", "postgresql://")
    mlflow_port = int(mlflow_url.rsplit(":", 1)[1])
    return {
        "AIRFLOW_HOME": str(root / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{services.REDIS['host']}:{services.REDIS['port']}/{REDIS_DB}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{psycopg_url}",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": CELERY_QUEUE,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "3",
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "3600",
        # The worker loads the heavy libraries once before it forks its tasks (see celery_preload.py).
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "system.celery_preload.CELERY_CONFIG",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SYSTEM_DIR.parent), os.environ.get("PYTHONPATH")])),
        "AIRFLOW__CORE__PARALLELISM": "6",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
        "AIRFLOW__CORE__DEFAULT_TASK_RETRIES": "0",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REFERENCE_DAGS),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN['username']}:admin,{APPROVER['username']}:user",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME": "3600",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",  # the DAG files do not change during a run
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "2",
        "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "0",
        # The dag-processor writes a changed DAG at most this often (default 30 s: a model catalogue edited twice
        # within it would keep the first edit until the file's next parse), and the api-server and scheduler
        # re-check their cached copy of a DAG version at this interval.
        "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "3",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "1",
        "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "300",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
        # A dead worker's task, a dead triggerer's triggers: noticed in seconds, not the default minutes.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(services.free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(services.free_port()),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(root / "airflow" / "logs"),
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        # Connections: Airflow reaches every external system only through these.
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps(
            {
                "conn_type": "mlflow",
                "host": "127.0.0.1",
                "port": mlflow_port,
                "schema": "http",
                "login": MLFLOW_ADMIN["username"],
                "password": MLFLOW_ADMIN["password"],
                "extra": {"ui_url": mlflow_url},
            }
        ),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {"conn_type": "aws", **MOTO_KEY, "extra": {"endpoint_url": moto_url, "region_name": "us-east-1"}}
        ),
        # The reference DAGs' configuration, read when a DAG file is parsed.
        "MLOPS_HOME": str(root / "mlops_home"),
        "MLOPS_DATA_URI": f"s3://{BUCKET}/data/churn",
        "MLOPS_LANDING_URI": f"s3://{BUCKET}/landing/churn",
        "MLOPS_MODEL_NAME": MODEL_NAME,
        "MLOPS_WORK_URI": f"s3://{BUCKET}/work",
        "MLOPS_MODEL_CATALOG": str(root / "fleet" / "model_catalog.yaml"),  # dags/mlops_fleet.py's catalogue
        "GX_ANALYTICS_ENABLED": "false",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }


def start_mlflow(root: Path, backend_url: str, moto_url: str) -> services.ManagedProcess:
    """``mlflow server`` with a PostgreSQL backend store and proxied artifacts on S3, behind MLflow's
    ``basic-auth`` app: every request needs the ``admin`` user's password (``MLFLOW_ADMIN``)."""
    port = services.free_port()
    url = f"http://127.0.0.1:{port}"
    auth = root / "mlflow-auth"
    auth.mkdir(parents=True, exist_ok=True)
    config = auth / "basic_auth.ini"
    config.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{auth / 'basic_auth.db'}\n"
        f"admin_username = {MLFLOW_ADMIN['username']}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # Checking a password costs a PBKDF2 hash: once per credential and hour, not per request.
        "auth_cache_ttl_seconds = 3600\n"
    )
    env = {
        "MLFLOW_TRACKING_URI": "",
        "MLFLOW_TRACKING_USERNAME": "",
        "MLFLOW_TRACKING_PASSWORD": "",
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_AUTH_ADMIN_PASSWORD": MLFLOW_ADMIN["password"],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no huey job runners: nothing here uses MLflow jobs
        "MLFLOW_S3_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": MOTO_KEY["login"],
        "AWS_SECRET_ACCESS_KEY": MOTO_KEY["password"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    command = [
        str(services.BIN / "mlflow"), "server",
        "--backend-store-uri", backend_url,
        "--artifacts-destination", f"s3://{BUCKET}/mlflow",
        "--serve-artifacts",
        "--app-name", "basic-auth",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    process = services.start_process(
        "mlflow-server", command, root / "logs", ready=lambda: services.http_ok(f"{url}/health"), timeout=180, env=env
    )
    process.url = url
    return process


def write_sample_data(root: Path, moto_url: str) -> None:
    """Daily partitions ``dt=YYYY-MM-DD`` from 2026-01-01 under ``s3://<bucket>/data/churn``."""
    from sample_data import write_partitions

    folder = root / "sample" / "churn"
    write_partitions(folder, start=SAMPLE_START, days=SAMPLE_DAYS, rows_per_day=SAMPLE_ROWS_PER_DAY)
    client = s3_client(moto_url)
    for path in sorted(folder.rglob("*.parquet")):
        client.upload_file(str(path), BUCKET, f"data/churn/{path.relative_to(folder).as_posix()}")


def write_fleet_data(root: Path, moto_url: str) -> None:
    """The fleet's datasets under ``s3://<bucket>/fleet/``, ``dt=YYYY-MM-DD`` partitions like the churn data."""
    from sample_data import write_delivery_partitions, write_partitions

    folder = root / "sample" / "fleet"
    size = {"start": SAMPLE_START, "days": FLEET_DAYS, "rows_per_day": FLEET_ROWS_PER_DAY}
    write_partitions(folder / "churn", seed=11, **size)
    write_delivery_partitions(folder / "deliveries", seed=1, **size)
    write_delivery_partitions(folder / "deliveries_eu", seed=2, **size)  # another city: only delivery_eu reads it
    client = s3_client(moto_url)
    for path in sorted(folder.rglob("*.parquet")):
        client.upload_file(str(path), BUCKET, f"fleet/{path.relative_to(folder).as_posix()}")


def start_component(name: str, command: list[str], root: Path, env: dict[str, str]) -> services.ManagedProcess:
    """One Airflow component, its output appended to ``<root>/logs/<name>.log`` (a restart adds to the log)."""
    env = {**env, **COMPONENT_ENV.get(name, {})}
    return services.start_process(name, command, root / "logs", ready=lambda: True, env=env, timeout=5)


def _wait_healthy(stack: Stack, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    health: dict = {}
    worker_log = stack.processes["celery-worker"].log_path
    while time.monotonic() < deadline:
        for name, process in stack.processes.items():
            if process.popen.poll() is not None:
                raise StackError(f"{name} exited with code {process.popen.returncode}:\n{process.log_tail(60)}")
        try:
            health = stack.api.health()
        except Exception:
            time.sleep(1)
            continue
        components_ok = all(
            (health.get(key) or {}).get("status") == "healthy"
            for key in ("metadatabase", "scheduler", "triggerer", "dag_processor")
        )
        worker_ok = worker_log.exists() and " ready." in worker_log.read_text(errors="replace")
        if components_ok and worker_ok:
            return
        time.sleep(1)
    raise StackError(
        f"Airflow did not become healthy within {timeout:.0f}s; last health: {health}\n{stack.diagnostics()}"
    )


@contextmanager
def running_stack(root: Path, moto_url: str) -> Iterator[Stack]:
    """Start everything (about a minute on 2 cores) and stop everything when the block ends.

    Raises ``services.ServiceUnavailable`` when PostgreSQL or Redis is missing, :class:`StackError` when
    a component does not start.
    """
    started = time.monotonic()
    (root / "logs").mkdir(parents=True, exist_ok=True)
    databases: list[str] = []
    processes: dict[str, services.ManagedProcess] = {}

    def cleanup() -> None:
        usage = {name: cpu_seconds(process.pid) for name, process in processes.items()}
        stop_all(list(processes.values()))
        if usage:
            shown = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in usage.items())
            print(f"\nmlops system stack: CPU time per component: {shown}", file=sys.stderr)
        for url in databases:
            try:
                services.drop_postgres_database(url)
            except Exception as error:
                print(f"\nmlops system stack: could not drop {url}: {error}", file=sys.stderr)
        databases.clear()
        try:
            flush_broker()
        except Exception:
            pass

    atexit.register(cleanup)  # also when the run is interrupted before the block ends
    try:
        if not services.redis_reachable():
            raise services.ServiceUnavailable("Redis: nothing answers on 127.0.0.1:6379 (the Celery broker)")
        metadata_url = services.create_postgres_database("mlops_system_airflow")
        databases.append(metadata_url)  # without the password: the cleanup may print it
        airflow_db_url = with_password(metadata_url, DB_PASSWORD)
        mlflow_db = services.create_postgres_database("mlops_system_mlflow")
        databases.append(mlflow_db)
        flush_broker()
        s3_client(moto_url).create_bucket(Bucket=BUCKET)

        api_port = services.free_port()
        write_catalogue(root / "fleet" / "model_catalog.yaml", fleet_models())  # before the dag-processor reads it
        with ThreadPoolExecutor(max_workers=3) as pool:
            mlflow_future = pool.submit(start_mlflow, root, mlflow_db, moto_url)
            data_future = pool.submit(write_sample_data, root, moto_url)
            fleet_future = pool.submit(write_fleet_data, root, moto_url)
            migrate_env = airflow_env(root, airflow_db_url, api_port, "http://127.0.0.1:1", moto_url)
            migrate = subprocess.run(
                [str(services.BIN / "airflow"), "db", "migrate"],
                capture_output=True,
                text=True,
                env={**os.environ, **migrate_env},
                timeout=300,
            )
            try:
                processes["mlflow-server"] = mlflow_future.result()
            except services.ServiceUnavailable as error:
                raise StackError(f"mlflow server did not start: {error}") from error
            data_future.result()
            fleet_future.result()
        if migrate.returncode != 0:
            raise StackError(f"airflow db migrate failed:\n{migrate.stdout[-3000:]}\n{migrate.stderr[-3000:]}")
        mlflow_url = processes["mlflow-server"].url
        env = airflow_env(root, airflow_db_url, api_port, mlflow_url, moto_url)
        migrated = time.monotonic()

        commands = {
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(api_port), "--workers", "1"],
            "scheduler": ["scheduler"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer"],
            "celery-worker": ["celery", "worker", "--concurrency", "3", "--celery-hostname", "mlops-system@%h",
                              "--without-mingle", "--without-gossip"],
        }  # fmt: skip
        commands = {name: [str(services.BIN / "airflow"), *command] for name, command in commands.items()}
        for name in COMPONENTS:  # spawned together; readiness is checked below through the health endpoint
            processes[name] = start_component(name, commands[name], root, env)
        api_url = f"http://127.0.0.1:{api_port}"
        stack = Stack(
            root=root,
            env=env,
            api=AirflowApi(api_url, ADMIN["username"], ADMIN["password"]),
            api_url=api_url,
            mlflow_url=mlflow_url,
            moto_url=moto_url,
            bucket=BUCKET,
            data_uri=env["MLOPS_DATA_URI"],
            landing_uri=env["MLOPS_LANDING_URI"],
            model_name=MODEL_NAME,
            catalogue_path=Path(env["MLOPS_MODEL_CATALOG"]),
            processes=processes,
            commands=commands,
        )
        stack.api.diagnostics = stack.diagnostics
        _wait_healthy(stack)
        stack.timings = {"migrate_and_mlflow_s": migrated - started, "startup_s": time.monotonic() - started}
        try:
            yield stack
        finally:
            stack.api.close()
    finally:
        cleanup()
        atexit.unregister(cleanup)


def main() -> None:
    import signal
    import tempfile

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # `kill <pid>` stops everything too
    signal.signal(signal.SIGINT, interrupt)  # also when started in the background, where SIGINT is ignored
    root = Path(tempfile.mkdtemp(prefix="mlops-system-stack-"))
    moto = services.start_moto_server(root / "moto")
    try:
        with running_stack(root, moto.url) as stack:
            print(
                f"Airflow UI/API: {stack.api_url} (user {ADMIN['username']!r}, password {ADMIN['password']!r})\n"
                f"MLflow: {stack.mlflow_url} (user {MLFLOW_ADMIN['username']!r}, password "
                f"{MLFLOW_ADMIN['password']!r})   S3 (moto): {stack.moto_url} bucket {stack.bucket}\n"
                f"Logs: {root / 'logs'}   started in {stack.timings['startup_s']:.0f}s; Ctrl-C stops everything.",
                flush=True,
            )
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        moto.stop()


if __name__ == "__main__":
    main()
