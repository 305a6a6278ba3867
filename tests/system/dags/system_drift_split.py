"""A wide drift check split over mapped tasks by column (``drift_task_group``), on S3 data, beside the same check
in one task: the Celery worker runs the mapped checks side by side and the merge gives the single task's verdict.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from mlops_provider.operators.drift import DetectDriftOperator
from mlops_provider.operators.drift_split import drift_task_group

with DAG(
    "system_drift_split",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["system-test"],
    params={
        "split_model": Param("unset", type="string"),
        "single_model": Param("unset", type="string"),
        "reference_uri": Param("s3://unset/reference.parquet", type="string"),
        "current_uri": Param("s3://unset/current.parquet", type="string"),
    },
):
    drift_task_group(
        group_id="split",
        columns_per_task=10,
        current_uri="{{ params.current_uri }}",
        reference_uri="{{ params.reference_uri }}",
        model_name="{{ params.split_model }}",
        drift_share=0.1,
    )
    DetectDriftOperator(
        task_id="single",
        current_uri="{{ params.current_uri }}",
        reference_uri="{{ params.reference_uri }}",
        model_name="{{ params.single_model }}",
        drift_share=0.1,
    )
