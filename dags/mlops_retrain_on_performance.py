"""
### mlops_retrain_on_performance

Scheduled on the Asset `mlops://performance/<model>`: when `mlops_performance_monitor` finds that the champion's
live performance dropped (with or without input drift), this DAG retrains on the newest week of labelled data
up to the degraded day and sends the challenger through the same gate as every other model.
"""

from __future__ import annotations

import os

from airflow.sdk import DAG

from mlops_provider.reference import reference_settings, retrain_on_performance_dag

settings = reference_settings(os.path.dirname(__file__))

dag: DAG = retrain_on_performance_dag(settings, doc_md=__doc__)
