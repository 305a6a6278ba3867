"""Test-only DAG: a clean S3 partition passes the sample suite; a bad partition skips its downstream task."""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param, task

from mlops_provider.operators.validation import ValidateDataOperator

SAMPLE_SUITE = Path(__file__).resolve().parents[2] / "include" / "expectations" / "customer_churn.json"

with DAG(
    "mlops_test_validation",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params={
        "clean_uri": Param("", type="string"),
        "bad_uri": Param("", type="string"),
        "reference_uri": Param("", type="string"),
        "clean_reports_uri": Param("", type="string"),
    },
    tags=["test"],
) as dag:
    validate_clean = ValidateDataOperator(
        task_id="validate_clean",
        dataset_uri="{{ params.clean_uri }}",
        expectation_suite=str(SAMPLE_SUITE),
        reports_uri="{{ params.clean_reports_uri }}",
    )
    validate_bad = ValidateDataOperator(
        task_id="validate_bad",
        dataset_uri="{{ params.bad_uri }}",
        infer_from="{{ params.reference_uri }}",
        on_failure="skip",
    )

    @task
    def train_on_clean(result: dict) -> int:
        return result["evaluated"]

    @task
    def train_on_bad() -> str:
        return "must not run"

    train_on_clean(validate_clean.output)
    validate_bad >> train_on_bad()
