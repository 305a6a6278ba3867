"""Test-only DAGs for the registry: wait for an alias to move (deferrable), and roll an alias back."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from mlops_provider.operators.registry import RollbackModelOperator
from mlops_provider.sensors.registry import ModelAliasSensor

PARAMS = {"model_name": Param("registry-test", type="string"), "to_version": Param("", type="string")}

with DAG(
    "mlops_test_alias_sensor",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params=PARAMS,
    tags=["test"],
) as alias_sensor_dag:
    ModelAliasSensor(
        task_id="wait_for_new_champion",
        model_name="{{ params.model_name }}",
        deferrable=True,
        poke_interval=1,
        timeout=120,
    )

with DAG(
    "mlops_test_rollback",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params=PARAMS,
    tags=["test"],
) as rollback_dag:
    RollbackModelOperator(
        task_id="rollback",
        model_name="{{ params.model_name }}",
        to_version="{{ params.to_version }}",
        reason="test: the new champion misbehaves in production",
    )
