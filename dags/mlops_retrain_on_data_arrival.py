"""
### mlops_retrain_on_data_arrival

Each day waits for that day's partition to land under `MLOPS_LANDING_URI` (`dt=<day>/*.parquet`) and then runs
the lifecycle on it: validation holds back bad data before anything is trained. On S3 the wait is the amazon
provider's deferrable `S3KeySensor` (wildcard keys), which frees its worker slot and waits in the triggerer;
a local landing folder uses the standard `FileSensor` (connection `fs_default`).
"""

from __future__ import annotations

import os

from airflow.sdk import DAG

from mlops_provider.reference import reference_settings, retrain_on_data_arrival_dag

settings = reference_settings(os.path.dirname(__file__))

dag: DAG = retrain_on_data_arrival_dag(settings, doc_md=__doc__)
