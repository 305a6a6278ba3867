"""
### mlops_retrain_on_drift

Scheduled on the Asset `mlops://drift/<model>`: when `mlops_drift_monitor` finds drift, this DAG retrains on the
newest week of data up to the drifted day and sends the challenger through the same gate as every other
model. A worse challenger is rejected and the champion stays.
"""

from __future__ import annotations

import os

from airflow.sdk import DAG

from mlops_provider.assets import drift_asset
from mlops_provider.operators.datasets import SelectPartitionsOperator
from mlops_provider.operators.drift import DriftEventOperator
from mlops_provider.operators.lifecycle import lifecycle_task_group
from mlops_provider.reference import START_DATE, reference_settings

settings = reference_settings(os.path.dirname(__file__))
RETRAIN_WINDOW_DAYS = 7

with DAG(
    dag_id="mlops_retrain_on_drift",
    schedule=[drift_asset(settings.model_name)],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "drift", "retrain"],
    doc_md=__doc__,
) as dag:
    event = DriftEventOperator(task_id="drift_event", model_name=settings.model_name)
    window = SelectPartitionsOperator(
        task_id="recent_partitions",
        dataset_uri=settings.data_uri,
        until=event.output["until"],
        last=RETRAIN_WINDOW_DAYS,
        on_empty="fail",
    )
    lifecycle_task_group(settings.lifecycle(dataset_uri=window.output["dataset_uri"], experiment_name=dag.dag_id))
