"""Test-only DAG: drift checks against a champion's reference, a no-drift check, and the drift sensor."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from mlops_provider.operators.drift import DetectDriftOperator
from mlops_provider.sensors.drift import DriftSensor

with DAG(
    "mlops_test_drift",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params={
        "model_name": Param("drift-test-model", type="string"),
        "drifted_uri": Param("", type="string"),
        "stable_uri": Param("", type="string"),
        "reference_uri": Param("", type="string"),
        "landing_uri": Param("", type="string"),
    },
    tags=["test"],
) as dag:
    DetectDriftOperator(
        task_id="detect_against_champion",
        current_uri="{{ params.drifted_uri }}",
        model_name="{{ params.model_name }}",
        categorical_columns=["plan"],
        exclude_columns=["customer_id", "churned"],
        drift_share=0.3,
    )
    DetectDriftOperator(
        task_id="detect_stable",
        current_uri="{{ params.stable_uri }}",
        reference_uri="{{ params.reference_uri }}",
        model_name="{{ params.model_name }}",
        exclude_columns=["customer_id", "churned"],
        drift_share=0.3,
        log_to_mlflow=False,
    )
    DriftSensor(
        task_id="wait_for_drift",
        current_uri="{{ params.landing_uri }}",
        reference_uri="{{ params.reference_uri }}",
        model_name="{{ params.model_name }}",
        exclude_columns=["customer_id", "churned"],
        drift_share=0.3,
        on_drift="continue",
        log_to_mlflow=False,
        poke_interval=1,
        timeout=60,
    )
