"""Test-only DAG: TrainModelOperator with templated arguments (the estimator params arrive as a rendered dict)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from mlops_provider.operators.training import TrainModelOperator

with DAG(
    "mlops_test_training",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params={
        "dataset_uri": Param("", type="string"),
        "model_name": Param("training-dag-test", type="string"),
        "estimator_params": Param({"n_estimators": 20, "max_depth": 6}, type="object"),
    },
    tags=["test"],
) as dag:
    TrainModelOperator(
        task_id="train",
        dataset_uri="{{ params.dataset_uri }}",
        target_column="churned",
        id_columns=["customer_id"],
        timestamp_column="event_timestamp",
        estimator="sklearn.ensemble.RandomForestClassifier",
        estimator_params="{{ params.estimator_params }}",
        model_name="{{ params.model_name }}",
    )
