"""
### mlops_fleet_catalogue: the model catalogue's problems, as one import error

Reads the same model catalogue as `dags/mlops_fleet.py` (`MLOPS_MODEL_CATALOG`, else the Airflow Variable
`mlops_model_catalog`). When an entry is bad (an unknown field, a value of the wrong type, a schedule that is no
cron expression, a gate metric that is not scored ...) or the file cannot be used at all, this file's import error
lists every problem with its model, its field and the fix; a clean catalogue leaves the file without DAGs.

Why a file of its own: Airflow marks every DAG of a file that has an import error as stale and stops scheduling
it, so the error cannot sit in `mlops_fleet.py` without stopping the good models with the bad one.
"""

from __future__ import annotations

from airflow.sdk import DAG

from mlops_provider.fleet import load_catalogue
from mlops_provider.fleet.dags import catalogue_errors_dag

# A placeholder whose validate() raises the CatalogueError; Airflow records it as this file's import error.
errors: DAG | None = catalogue_errors_dag(load_catalogue())
