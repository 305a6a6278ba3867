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

from airflow.sdk import DAG

from mlops_provider.reference import performance_monitor_dag, reference_settings

settings = reference_settings(os.path.dirname(__file__))

dag: DAG = performance_monitor_dag(settings, doc_md=__doc__)
