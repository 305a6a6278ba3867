"""A test-only DAG: one task that logs an MLflow run through the connection named in the run's conf."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

from mlops_provider.hooks.mlflow import MlflowHook

with DAG(
    "mlops_test_mlflow_probe",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params={"mlflow_conn_id": Param("mlflow_default", type="string"), "experiment": Param("probe", type="string")},
    tags=["test"],
) as dag:

    @task
    def log_run(params: dict, run_id: str, dag_run=None) -> str:
        hook = MlflowHook(mlflow_conn_id=params["mlflow_conn_id"])
        client = hook.get_conn()
        run = client.create_run(
            hook.get_or_create_experiment(params["experiment"]),
            tags={"airflow.dag_id": dag_run.dag_id, "airflow.run_id": run_id},
        )
        client.set_terminated(run.info.run_id)
        return run.info.run_id

    log_run()
