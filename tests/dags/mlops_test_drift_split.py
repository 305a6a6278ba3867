"""Test-only DAG: one wide drift check split over mapped tasks by column, beside the same check in one task."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from mlops_provider.operators.drift import DetectDriftOperator
from mlops_provider.operators.drift_split import drift_task_group

with DAG(
    "mlops_test_drift_split",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params={
        "split_model": Param("drift-split-model", type="string"),
        "single_model": Param("drift-single-model", type="string"),
        "reference_uri": Param("", type="string"),
        "current_uri": Param("", type="string"),
    },
    tags=["test"],
) as dag:
    drift_task_group(
        group_id="split",
        columns_per_task=4,
        current_uri="{{ params.current_uri }}",
        reference_uri="{{ params.reference_uri }}",
        model_name="{{ params.split_model }}",
        drift_share=0.1,
        log_to_mlflow=False,
    )
    DetectDriftOperator(
        task_id="single",
        current_uri="{{ params.current_uri }}",
        reference_uri="{{ params.reference_uri }}",
        model_name="{{ params.single_model }}",
        drift_share=0.1,
        log_to_mlflow=False,
    )
