"""MlflowHook against real ``mlflow server`` processes (plain and with basic auth) and the embedded store."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mlops_provider.core.errors import ConfigurationError
from mlops_provider.hooks.mlflow import MlflowHook
from support import services


def server_fields(server, **extra_fields) -> dict:
    parts = urlsplit(server.url)
    return {"conn_type": "mlflow", "host": parts.hostname, "port": parts.port, "schema": "http", **extra_fields}


def test_create_experiment_log_run_and_read_it_back(mlflow_server, connection_env, tmp_path):
    connection_env("mlflow_test", **server_fields(mlflow_server))
    hook = MlflowHook(mlflow_conn_id="mlflow_test")
    experiment_id = hook.get_or_create_experiment("hook-roundtrip")
    assert hook.get_or_create_experiment("hook-roundtrip") == experiment_id  # idempotent

    client = hook.get_conn()
    run = client.create_run(experiment_id, tags={"airflow.dag_id": "d"})
    client.log_param(run.info.run_id, "alpha", "0.5")
    client.log_metric(run.info.run_id, "rmse", 1.25)
    report = tmp_path / "report.json"
    report.write_text('{"ok": true}')
    client.log_artifact(run.info.run_id, str(report))
    client.set_terminated(run.info.run_id)

    # Read back through a second hook: what a downstream task sees.
    reader = MlflowHook(mlflow_conn_id="mlflow_test").get_conn()
    stored = reader.get_run(run.info.run_id)
    assert stored.data.params == {"alpha": "0.5"}
    assert stored.data.metrics == {"rmse": 1.25}
    assert stored.data.tags["airflow.dag_id"] == "d"
    assert stored.info.status == "FINISHED"
    assert [a.path for a in reader.list_artifacts(run.info.run_id)] == ["report.json"]
    downloaded = reader.download_artifacts(run.info.run_id, "report.json", str(tmp_path / "dl"))
    assert Path(downloaded).read_text() == '{"ok": true}'


def test_fluent_session_logs_to_the_connection_and_restores_the_uri(mlflow_server, connection_env):
    import mlflow

    connection_env("mlflow_test", **server_fields(mlflow_server))
    mlflow.set_tracking_uri(None)
    before = mlflow.get_tracking_uri()
    hook = MlflowHook(mlflow_conn_id="mlflow_test")
    with hook.session() as client:
        mlflow.set_experiment("fluent-session")
        with mlflow.start_run() as run:
            mlflow.log_metric("auc", 0.91)
        assert client.get_run(run.info.run_id).data.metrics["auc"] == 0.91
    assert mlflow.get_tracking_uri() == before
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_tracking_uri_in_extra_and_test_connection(mlflow_server, connection_env):
    connection_env("mlflow_uri", conn_type="mlflow", extra={"tracking_uri": mlflow_server.url})
    ok, message = MlflowHook(mlflow_conn_id="mlflow_uri").test_connection()
    assert ok, message
    assert mlflow_server.url in message


def test_basic_auth_connection_works_and_password_is_not_left_behind(
    mlflow_auth_server, connection_env, caplog, capsys
):
    password = mlflow_auth_server.extra["password"]
    connection_env("mlflow_auth", **server_fields(mlflow_auth_server, login="admin", password=password))
    caplog.set_level(logging.DEBUG)
    hook = MlflowHook(mlflow_conn_id="mlflow_auth")
    ok, message = hook.test_connection()
    assert ok, message
    experiment_id = hook.get_or_create_experiment("auth-experiment")
    client = hook.get_conn()
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "f1", 0.8)
    assert client.get_run(run.info.run_id).data.metrics == {"f1": 0.8}

    assert password not in os.environ.values()
    assert "MLFLOW_TRACKING_PASSWORD" not in os.environ
    assert password not in caplog.text
    captured = capsys.readouterr()
    assert password not in captured.out and password not in captured.err
    assert password not in repr(hook.settings) and password not in repr(client)


def test_basic_auth_wrong_password_is_refused_without_echoing_it(mlflow_auth_server, connection_env):
    connection_env("mlflow_bad", **server_fields(mlflow_auth_server, login="admin", password="wrong-pass-123"))
    ok, message = MlflowHook(mlflow_conn_id="mlflow_bad").test_connection()
    assert not ok
    assert "401" in message or "Unauthorized" in message or "credentials" in message.lower()
    assert "wrong-pass-123" not in message
    assert "MLFLOW_TRACKING_PASSWORD" not in os.environ


def test_basic_auth_without_credentials_cannot_write(mlflow_auth_server, connection_env):
    connection_env("mlflow_anon", **server_fields(mlflow_auth_server))
    ok, message = MlflowHook(mlflow_conn_id="mlflow_anon").test_connection()
    assert not ok and mlflow_auth_server.url in message


def test_unreachable_server_is_reported_with_its_address(connection_env, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    port = services.free_port()  # nothing listens there
    connection_env("mlflow_down", conn_type="mlflow", host="127.0.0.1", port=port)
    ok, message = MlflowHook(mlflow_conn_id="mlflow_down").test_connection()
    assert not ok
    assert f"http://127.0.0.1:{port}" in message


def test_embedded_default_without_connection(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    hook = MlflowHook()
    assert hook.settings.embedded
    assert hook.settings.tracking_uri == f"sqlite:///{tmp_path / 'home' / 'mlflow' / 'mlflow.db'}"
    hook.get_conn()
    logged = [line for line in capsys.readouterr().out.splitlines() if "embedded MLflow store" in line]
    assert len(logged) == 1 and "'mlflow_default'" in logged[0]

    experiment_id = hook.get_or_create_experiment("embedded")
    client = hook.get_conn()
    run = client.create_run(experiment_id)
    client.log_text(run.info.run_id, "hello", "note.txt")
    artifact = tmp_path / "home" / "mlflow" / "artifacts" / "embedded" / run.info.run_id / "artifacts" / "note.txt"
    assert artifact.read_text() == "hello"
    assert hook.test_connection()[0]


RACE = """
import pathlib, sys, time
from mlops_provider.hooks.mlflow import MlflowHook
hook = MlflowHook()  # reads the settings; the store is made on first use, below
pathlib.Path(sys.argv[1] + ".ready").touch()
while not pathlib.Path(sys.argv[2]).exists():
    time.sleep(0.002)
hook.get_or_create_experiment("first-tasks")
"""


@pytest.mark.system  # three interpreters importing MLflow: ~10 s, kept out of the fast layer
def test_tasks_starting_together_on_a_new_embedded_store_all_succeed(tmp_path):
    """A LocalExecutor's first tasks open the new embedded store at the same moment: MLflow's creation of it
    must happen once, or most of them fail ("table _alembic_tmp_tags already exists")."""
    import subprocess
    import sys
    import time

    env = {**os.environ, "MLOPS_HOME": str(tmp_path / "home")}
    go = tmp_path / "go"
    tasks = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(tmp_path / f"task{i}"), str(go)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(3)
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("task*.ready"))) < len(tasks) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()  # all three open the store at once
    failures = [error[-600:] for error in (task.communicate(timeout=120)[1] for task in tasks) if "Traceback" in error]
    assert not failures, failures
    assert all(task.returncode == 0 for task in tasks)


def test_missing_named_connection_is_an_error_not_a_fallback():
    with pytest.raises(ConfigurationError, match="'mlflow_prod' is not defined"):
        MlflowHook(mlflow_conn_id="mlflow_prod").get_conn()


def test_connection_without_host_or_uri(connection_env):
    connection_env("mlflow_empty", conn_type="mlflow")
    with pytest.raises(ConfigurationError, match="neither a host nor extra.tracking_uri"):
        MlflowHook(mlflow_conn_id="mlflow_empty").get_conn()


def test_ui_field_behaviour_relabels_auth_fields():
    behaviour = MlflowHook.get_ui_field_behaviour()
    assert behaviour["relabeling"]["login"].startswith("Username")
    assert "tracking_uri" in behaviour["placeholders"]["extra"]
