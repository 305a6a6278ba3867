"""
### mlops_retrain_on_data_arrival

Each day waits for that day's partition to land under `MLOPS_LANDING_URI` (`dt=<day>/*.parquet`) and then runs
the lifecycle on it: validation holds back bad data before anything is trained. On S3 the wait is the amazon
provider's deferrable `S3KeySensor` (wildcard keys), which frees its worker slot and waits in the triggerer;
a local landing folder uses the standard `FileSensor` (connection `fs_default`).
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.providers.standard.sensors.filesystem import FileSensor
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from mlops_provider.operators.lifecycle import lifecycle_task_group
from mlops_provider.reference import START_DATE, reference_settings

settings = reference_settings(os.path.dirname(__file__))
PARTITION = settings.landing_uri.rstrip("/") + "/dt={{ data_interval_start | ds }}"
WAIT = {"poke_interval": 30, "timeout": int(timedelta(hours=20).total_seconds())}

with DAG(
    dag_id="mlops_retrain_on_data_arrival",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=3,
    tags=["mlops", "retrain", "landing"],
    doc_md=__doc__,
) as dag:
    if settings.landing_on_s3:
        from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

        wait = S3KeySensor(
            task_id="wait_for_partition",
            bucket_key=PARTITION + "/*.parquet",
            wildcard_match=True,
            deferrable=True,
            aws_conn_id="aws_default",
            **WAIT,
        )
    else:
        wait = FileSensor(task_id="wait_for_partition", filepath=PARTITION + "/*.parquet", mode="reschedule", **WAIT)
    wait >> lifecycle_task_group(settings.lifecycle(dataset_uri=PARTITION, experiment_name=dag.dag_id))
