"""
### mlops_retrain_scheduled

Weekly retraining on the week's partitions (`dt=<day>` under `MLOPS_DATA_URI` within the data interval). Runs
one at a time in date order, so a backfill over past weeks retrains each week in turn; a rerun of a week
returns the version that week already registered, and a week whose data matches the champion's trains nothing.
"""

from __future__ import annotations

import os

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from mlops_provider.operators.datasets import SelectPartitionsOperator
from mlops_provider.operators.lifecycle import lifecycle_task_group
from mlops_provider.reference import START_DATE, reference_settings

settings = reference_settings(os.path.dirname(__file__))

with DAG(
    dag_id="mlops_retrain_scheduled",
    schedule=CronDataIntervalTimetable("@weekly", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "retrain"],
    doc_md=__doc__,
) as dag:
    week = SelectPartitionsOperator(
        task_id="interval_partitions",
        dataset_uri=settings.data_uri,
        since="{{ data_interval_start | ds }}",
        until="{{ data_interval_end | ds }}",
    )
    lifecycle_task_group(settings.lifecycle(dataset_uri=week.output["dataset_uri"], experiment_name=dag.dag_id))
