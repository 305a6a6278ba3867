"""The provider inside Airflow: registration, and hooks reading connections from the metadata database.

These tests run twice in ``make test``: on SQLite and on a fresh PostgreSQL metadata database.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest

from conftest import run_cli

pytestmark = pytest.mark.airflow_db


def test_provider_is_registered(airflow_db):
    result = run_cli("airflow", "providers", "get", "airflow-provider-mlops", "--output", "json")
    assert result.returncode == 0, result.stderr
    assert "airflow-provider-mlops" in result.stdout and "0.1.0" in result.stdout

    hooks = run_cli("airflow", "providers", "hooks", "--output", "json")
    assert hooks.returncode == 0, hooks.stderr
    assert '"mlops_provider.hooks.mlflow.MlflowHook"' in hooks.stdout
    assert '"mlops_provider.hooks.feast.FeastHook"' in hooks.stdout

    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert manager.field_behaviours["mlflow"]["relabeling"]["login"] == "Username (MLflow basic auth)"
    assert "password" in manager.field_behaviours["feast"]["hidden_fields"]


@pytest.fixture
def metadata_connection(airflow_db):
    """Store a connection in the metadata database (not in the environment); remove it afterwards."""
    from airflow.models import Connection
    from airflow.utils.session import create_session

    created = []

    def add(**fields) -> str:
        conn_id = f"mlflow_meta_{uuid.uuid4().hex[:8]}"
        with create_session() as session:
            session.add(Connection(conn_id=conn_id, **fields))
        created.append(conn_id)
        return conn_id

    yield add
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id.in_(created)).delete(synchronize_session=False)


def test_task_uses_mlflow_connection_from_metadata_db(metadata_connection, mlflow_auth_server, connection_env):
    from dags.mlops_test_mlflow_probe import dag as probe_dag
    from mlops_provider.hooks.mlflow import MlflowHook

    url = urlsplit(mlflow_auth_server.url)
    connection_fields = {
        "conn_type": "mlflow",
        "host": url.hostname,
        "port": url.port,
        "schema": "http",
        "login": mlflow_auth_server.extra["username"],
        "password": mlflow_auth_server.extra["password"],
    }
    conn_id = metadata_connection(**connection_fields)
    experiment = f"airflow-task-{uuid.uuid4().hex[:6]}"

    dag_run = probe_dag.test(run_conf={"mlflow_conn_id": conn_id, "experiment": experiment})
    assert dag_run.state == "success"

    # Read back with the same credentials, defined outside the metadata DB.
    reader_id = connection_env("mlflow_reader", **connection_fields)
    client = MlflowHook(mlflow_conn_id=reader_id).get_conn()
    runs = client.search_runs(
        [client.get_experiment_by_name(experiment).experiment_id],
        filter_string=f"tags.`airflow.run_id` = '{dag_run.run_id}'",
    )
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"


def test_airflow_connections_test_cli(metadata_connection, mlflow_server):
    url = urlsplit(mlflow_server.url)
    conn_id = metadata_connection(conn_type="mlflow", host=url.hostname, port=url.port)
    result = run_cli("airflow", "connections", "test", conn_id)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Connection success!" in result.stdout

    bad_id = metadata_connection(conn_type="mlflow", host="127.0.0.1", port=9)  # discard port: nothing listens
    result = run_cli("airflow", "connections", "test", bad_id, env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    assert "Connection failed!" in result.stdout
    assert "http://127.0.0.1:9" in result.stdout
