"""Celery configuration of the suite's worker: Airflow's default, plus the heavy libraries loaded once.

``[celery] celery_config_options`` points here. Airflow 3's Celery worker forks a process per task, so a
module imported by the worker before it forks is already loaded in every task: each lifecycle task then
starts in about a second instead of spending 10-20 s importing MLflow, scikit-learn, Great Expectations and
Evidently on this 2-core machine (a production worker image would do the same to warm its workers). Only
the worker preloads; the scheduler reads the same setting and stays light. Nothing else changes: tasks
import these libraries inside ``execute`` exactly as without the preload.
"""

from __future__ import annotations

import importlib
import sys

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

CELERY_CONFIG = DEFAULT_CELERY_CONFIG

PRELOAD = (
    "pandas",
    "pyarrow.parquet",
    "sklearn.ensemble",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.preprocessing",
    "sklearn.metrics",
    "mlflow",
    "mlflow.sklearn",
    "skops.io",
    "great_expectations",
    "evidently",
    "mlops_provider.core.training",
    "mlops_provider.core.validation",
    "mlops_provider.core.drift",
    "mlops_provider.core.registry",
    "mlops_provider.core.prediction",
    "mlops_provider.core.datasets",
    "boto3",
    "airflow.providers.amazon.aws.hooks.s3",
    "mlops_provider.hooks.mlflow",
    "mlops_provider.hooks.datasets",
    "mlops_provider.operators.datasets",
    "mlops_provider.operators.validation",
    "mlops_provider.operators.features",
    "mlops_provider.operators.training",
    "mlops_provider.operators.registry",
    "mlops_provider.operators.prediction",
    "mlops_provider.operators.drift",
)

if "worker" in sys.argv and "celery" in sys.argv:
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as error:  # a missing optional library must not stop the worker
            print(f"celery_preload: could not import {name}: {error}", file=sys.stderr)
