"""
### mlops_retrain_on_performance

Scheduled on the Asset `mlops://performance/<model>`: when `mlops_performance_monitor` finds that the champion's
live performance dropped (with or without input drift), this DAG retrains on the newest week of labelled data
up to the degraded day and sends the challenger through the same gate as every other model.
"""

from __future__ import annotations

import os

from airflow.sdk import DAG

from mlops_provider.assets import performance_asset
from mlops_provider.operators.datasets import SelectPartitionsOperator
from mlops_provider.operators.lifecycle import lifecycle_task_group
from mlops_provider.operators.performance import PerformanceEventOperator
from mlops_provider.reference import START_DATE, reference_settings

settings = reference_settings(os.path.dirname(__file__))
RETRAIN_WINDOW_DAYS = 7

with DAG(
    dag_id="mlops_retrain_on_performance",
    schedule=[performance_asset(settings.model_name)],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "performance", "retrain"],
    doc_md=__doc__,
) as dag:
    event = PerformanceEventOperator(task_id="performance_event", model_name=settings.model_name)
    window = SelectPartitionsOperator(
        task_id="recent_partitions",
        dataset_uri=settings.data_uri,
        until=event.output["until"],
        last=RETRAIN_WINDOW_DAYS,
        on_empty="fail",
    )
    lifecycle_task_group(settings.lifecycle(dataset_uri=window.output["dataset_uri"], experiment_name=dag.dag_id))
