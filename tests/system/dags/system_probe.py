"""Probe DAGs that prove the system-test harness on its own, independent of the reference DAGs.

``system_probe``: a Python task on the Celery worker that logs a run and an artifact to the MLflow server
(artifacts land on S3), then a deferrable ``S3KeySensor`` that waits in the triggerer for the key given in
the run's conf. ``system_probe_failure``: a task that fails with a known message, so the suite can show
that a failed run is reported with the task's log.
"""

from __future__ import annotations

import pendulum
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

START = pendulum.datetime(2026, 1, 1, tz="UTC")
FAILURE_MARKER = "system-probe-failure-7f3a: the input table 'nowhere' does not exist"


def log_to_mlflow(**context):
    import os
    import socket
    import tempfile

    import mlflow

    from mlops_provider.hooks.mlflow import MlflowHook

    hook = MlflowHook()
    experiment_id = hook.get_or_create_experiment("system-probe")
    with hook.session():
        with mlflow.start_run(experiment_id=experiment_id, run_name=context["run_id"]) as run:
            mlflow.set_tag("airflow.run_id", context["run_id"])
            mlflow.log_metric("answer", 42)
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "probe.txt")
                with open(path, "w") as handle:
                    handle.write(f"written by {context['ti'].task_id} on {socket.gethostname()}\n")
                mlflow.log_artifact(path)
            artifact_uri = run.info.artifact_uri
    return {"mlflow_run_id": run.info.run_id, "artifact_uri": artifact_uri, "pid": os.getpid()}


with DAG(
    "system_probe",
    schedule=None,
    start_date=START,
    catchup=False,
    tags=["system-test"],
    params={"landing_key": "s3://unset/never"},
):
    mlflow_task = PythonOperator(task_id="log_to_mlflow", python_callable=log_to_mlflow)
    wait = S3KeySensor(
        task_id="wait_for_key",
        bucket_key="{{ params.landing_key }}",
        wildcard_match=True,
        aws_conn_id="aws_default",
        deferrable=True,
        poke_interval=2,
        timeout=300,
    )
    mlflow_task >> wait


def fail(**_):
    raise ValueError(FAILURE_MARKER)


with DAG("system_probe_failure", schedule=None, start_date=START, catchup=False, tags=["system-test"]):
    PythonOperator(task_id="read_input", python_callable=fail, retries=0)
