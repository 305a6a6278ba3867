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

from mlops_provider.reference import drift_monitor_dag, reference_settings

settings = reference_settings(os.path.dirname(__file__))

dag: DAG = drift_monitor_dag(settings, doc_md=__doc__)
