"""
### mlops_retrain_on_drift

Scheduled on the Asset `mlops://drift/<model>`: when `mlops_drift_monitor` finds drift, this DAG retrains on the
newest week of data up to the drifted day and sends the challenger through the same gate as every other
model. A worse challenger is rejected and the champion stays.
"""

from __future__ import annotations

import os

from airflow.sdk import DAG

from mlops_provider.reference import reference_settings, retrain_on_drift_dag

settings = reference_settings(os.path.dirname(__file__))

dag: DAG = retrain_on_drift_dag(settings, doc_md=__doc__)
