"""
### mlops_feature_materialization

Every hour, the hour's feature rows go from the offline store to the online store (Feast). Backfill-safe:
materialising an older window never overwrites newer online values, so a backfill can run beside the
hourly schedule. The feature repository is `MLOPS_FEAST_REPO` (default `include/feature_repo`).
"""

from __future__ import annotations

import os

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from mlops_provider.operators.features import FeastApplyOperator, MaterializeFeaturesOperator
from mlops_provider.reference import START_DATE, reference_settings

settings = reference_settings(os.path.dirname(__file__))

with DAG(
    dag_id="mlops_feature_materialization",
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    tags=["mlops", "features"],
    doc_md=__doc__,
) as dag:
    apply = FeastApplyOperator(task_id="apply", repo_path=settings.feast_repo)
    materialize = MaterializeFeaturesOperator(task_id="materialize", repo_path=settings.feast_repo)
    apply >> materialize
