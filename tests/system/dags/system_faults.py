"""DAGs the stack-level fault tests (``test_stack_faults.py``) disturb: the provider's operators, with retries.

``system_fault_train``: ``TrainModelOperator`` on the stack's sample data, for a worker killed mid-task and
for PostgreSQL restarted during a run. ``system_fault_materialize``: ``FeastApplyOperator`` then
``MaterializeFeaturesOperator`` into a SQLite online store the test prepares. ``system_fault_wait``: a
deferred ``ModelAliasSensor`` and a deferred ``S3KeySensor``, each followed by a task that records it ran,
for the triggerer restarted while they wait.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from mlops_provider.operators.features import FeastApplyOperator, MaterializeFeaturesOperator
from mlops_provider.operators.training import TrainModelOperator
from mlops_provider.sensors.registry import ModelAliasSensor

START = pendulum.datetime(2026, 1, 1, tz="UTC")
RETRIES = {"retries": 2, "retry_delay": timedelta(seconds=2)}

with DAG(
    "system_fault_train",
    schedule=None,
    start_date=START,
    catchup=False,
    tags=["system-test"],
    params={"model_name": "unset", "n_estimators": 200},
    render_template_as_native_obj=True,
):
    TrainModelOperator(
        task_id="train",
        dataset_uri=os.environ.get("MLOPS_DATA_URI", "unset"),
        target_column="churned",
        id_columns=["customer_id"],
        model_name="{{ params.model_name }}",
        estimator="sklearn.ensemble.RandomForestClassifier",
        estimator_params={"n_estimators": "{{ params.n_estimators }}", "random_state": 7},
        **RETRIES,
    )

with DAG(
    "system_fault_materialize",
    schedule=None,
    start_date=START,
    catchup=False,
    tags=["system-test"],
    params={"repo_path": "unset", "window_start": "unset", "window_end": "unset"},
):
    apply = FeastApplyOperator(task_id="apply", repo_path="{{ params.repo_path }}", **RETRIES)
    materialize = MaterializeFeaturesOperator(
        task_id="materialize",
        repo_path="{{ params.repo_path }}",
        window_start="{{ params.window_start }}",
        window_end="{{ params.window_end }}",
        **RETRIES,
    )
    apply >> materialize


def record_release(waited_for: str, **context):
    """What the sensor handed over, and which try this is (a second run of it would show try 2)."""
    return {"released_by": waited_for, "sensor_result": context["ti"].xcom_pull(task_ids=waited_for)}


with DAG(
    "system_fault_wait",
    schedule=None,
    start_date=START,
    catchup=False,
    tags=["system-test"],
    params={"model_name": "unset", "landing_key": "s3://unset/never"},
):
    alias = ModelAliasSensor(
        task_id="wait_for_champion",
        model_name="{{ params.model_name }}",
        deferrable=True,
        poke_interval=2,
        timeout=900,
    )
    key = S3KeySensor(
        task_id="wait_for_key",
        bucket_key="{{ params.landing_key }}",
        aws_conn_id="aws_default",
        deferrable=True,
        poke_interval=2,
        timeout=900,
    )
    alias >> PythonOperator(
        task_id="after_champion", python_callable=record_release, op_kwargs={"waited_for": "wait_for_champion"}
    )
    key >> PythonOperator(task_id="after_key", python_callable=record_release, op_kwargs={"waited_for": "wait_for_key"})
