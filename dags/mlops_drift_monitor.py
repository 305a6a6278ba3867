"""
### mlops_drift_monitor

Every day, the day's partition (`dt=<day>` under `MLOPS_DATA_URI`) is compared column by column with the
training sample of the current champion (Evidently, pinned tests). When the data drifted, the Asset
`mlops://drift/<model>` gets an event carrying the drifted columns and the report, and
`mlops_retrain_on_drift` runs. A day with no partition is skipped.
"""

from __future__ import annotations

import os

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from mlops_provider.operators.datasets import SelectPartitionsOperator
from mlops_provider.operators.drift import DetectDriftOperator
from mlops_provider.reference import START_DATE, reference_settings

settings = reference_settings(os.path.dirname(__file__))

with DAG(
    dag_id="mlops_drift_monitor",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "drift"],
    doc_md=__doc__,
) as dag:
    day = SelectPartitionsOperator(
        task_id="day_partition",
        dataset_uri=settings.data_uri,
        since="{{ data_interval_start | ds }}",
        until="{{ data_interval_end | ds }}",
    )
    DetectDriftOperator(
        task_id="detect_drift",
        current_uri=day.output["dataset_uri"],
        model_name=settings.model_name,
        exclude_columns=[*settings.id_columns, settings.timestamp_column, settings.target_column],
        drift_share=settings.drift_share,
        on_drift="emit",
    )
