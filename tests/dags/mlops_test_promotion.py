"""Test-only DAG: promote a challenger through the gate, then score with the champion."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

from mlops_provider.operators.prediction import BatchPredictOperator
from mlops_provider.operators.registry import PromoteModelOperator

with DAG(
    "mlops_test_promotion",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params={
        "model_name": Param("promotion-test", type="string"),
        "version": Param("1", type="string"),
        "score_uri": Param("", type="string"),
        "output_uri": Param("", type="string"),
    },
    tags=["test"],
) as dag:
    promote = PromoteModelOperator(
        task_id="promote",
        model_name="{{ params.model_name }}",
        version="{{ params.version }}",
        thresholds={"roc_auc": {"min": 0.6, "min_absolute_change": 0.0001}},
    )

    @task
    def deploy(params: dict) -> str:
        return f"deployed {params['model_name']}"

    score = BatchPredictOperator(
        task_id="score",
        model_name="{{ params.model_name }}",
        dataset_uri="{{ params.score_uri }}",
        output_uri="{{ params.output_uri }}",
        keep_columns=["customer_id"],
    )
    promote >> [deploy(), score]
