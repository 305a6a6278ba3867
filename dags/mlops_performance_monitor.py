"""
### mlops_performance_monitor

Every day: the champion scores the day's partition (`dt=<day>` under `MLOPS_DATA_URI`), and a `challenger`
alias, when one exists, scores it in shadow; both land in the prediction log, stamped at the end of the day.
Labels arrive `MLOPS_LABEL_DELAY_DAYS` later under `MLOPS_LABELS_URI`, so the same run then judges the
predictions made that many days before its interval: it waits for their labels (reschedule mode), tests the
inputs they were made on for drift, and compares the live metrics with the training holdout. A statistically
supported drop raises the Asset `mlops://performance/<model>` and `mlops_retrain_on_performance` retrains.
Too few labels: the evaluation is skipped as "insufficient evidence", never passed.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from mlops_provider.operators.drift import DetectDriftOperator
from mlops_provider.operators.lifecycle import default_work_uri
from mlops_provider.operators.performance import EvaluateLivePerformanceOperator
from mlops_provider.operators.prediction import BatchPredictOperator
from mlops_provider.reference import START_DATE, reference_settings
from mlops_provider.sensors.performance import PerformanceSensor

settings = reference_settings(os.path.dirname(__file__))
DELAY = timedelta(days=settings.label_delay_days)
# The day's predictions are made at the end of its interval, so the window of prediction times that the
# label delay puts in reach, [start - delay, end - delay), holds the predictions of the day before it.
JUDGED_DAY = f"{{{{ (data_interval_start - macros.timedelta(days={settings.label_delay_days + 1})) | ds }}}}"
LIVE = {
    "model_name": settings.model_name,
    "labels_uri": settings.labels_uri,
    "label_column": settings.target_column,
    "id_columns": list(settings.id_columns),
    "label_timestamp_column": "label_timestamp",
    "label_delay": DELAY,
    "min_rows": 200,
}

with DAG(
    dag_id="mlops_performance_monitor",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "performance"],
    doc_md=__doc__,
) as dag:
    BatchPredictOperator(
        task_id="score_day",
        model_name=settings.model_name,
        dataset_uri=settings.data_uri.rstrip("/") + "/dt={{ data_interval_start | ds }}",
        output_uri=default_work_uri().rstrip("/")
        + "/predictions/mlops_performance_monitor/dt={{ data_interval_start | ds }}/",
        id_columns=list(settings.id_columns),
        shadow_aliases=["challenger"],
    )
    # Labels that never come skip the evaluation (soft_fail): "insufficient evidence", not a failed run.
    labels = PerformanceSensor(
        task_id="wait_for_labels", timeout=int(timedelta(days=2).total_seconds()), soft_fail=True, **LIVE
    )
    drift = DetectDriftOperator(
        task_id="input_drift",
        current_uri=settings.data_uri.rstrip("/") + f"/dt={JUDGED_DAY}",
        model_name=settings.model_name,
        exclude_columns=[*settings.id_columns, settings.timestamp_column, settings.target_column],
        drift_share=settings.drift_share,
        on_drift="continue",
    )
    evaluate = EvaluateLivePerformanceOperator(task_id="live_performance", input_drift=drift.output, **LIVE)
    [labels, drift] >> evaluate
