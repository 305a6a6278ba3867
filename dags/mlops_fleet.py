"""
### mlops_fleet: one lifecycle per model, from the model catalogue

A platform team lists its models in one YAML file, the model catalogue, and this file turns every entry into
DAGs; adding, changing or removing a model is an edit of the catalogue, never of code. Where the catalogue is:
the environment variable `MLOPS_MODEL_CATALOG`, else the Airflow Variable `mlops_model_catalog` (read only when
the environment variable is unset). Neither set: no fleet DAG. A sample with four models on the sample churn and
delivery data: `include/model_catalog.yaml`; every field: `docs/fleet.md`.

Per model `<model>` (the entry's key, also the registered model in MLflow):

* `mlops_fleet_<model>`: the lifecycle (validate -> features -> train -> gate -> [approve] -> promote -> score)
  on the entry's `dataset_uri`, on its `schedule`;
* with `triggers.data_arrival`: `mlops_fleet_<model>_arrival`, the lifecycle on each day's partition once it lands;
* with `triggers.drift`: `mlops_fleet_<model>_drift` raising `mlops://drift/<model>`, and
  `mlops_fleet_<model>_retrain_on_drift` answering it;
* with `triggers.performance`: `mlops_fleet_<model>_performance` raising `mlops://performance/<model>`, and
  `mlops_fleet_<model>_retrain_on_performance` answering it.

and, for the whole fleet, `mlops_fleet_report`: daily, the fleet report, which alerts `model_stale` to every model
that has not retrained for two of its schedule periods.

They are the reference DAGs' wiring (`lifecycle_task_group` and the builders of `mlops_provider.reference`) with
the entry's settings, tagged `mlops`, `fleet` and the entry's tags, owned by its owners. Every `train` task takes a
slot of the Airflow pool `mlops_training` (create it: `airflow pools set mlops_training 4 "fleet training"`), which
bounds how many models train at once; promotions lock per model, so models never wait for each other's.

A bad entry is left out and named, with the field and the fix, in the import error of
`dags/mlops_fleet_catalogue.py`; the other models' DAGs here keep loading and running.
"""

from __future__ import annotations

import os

from airflow.sdk import DAG

from mlops_provider.fleet import load_catalogue
from mlops_provider.fleet.dags import fleet_dags
from mlops_provider.reference import reference_settings

catalogue = load_catalogue()
dags: dict[str, DAG] = fleet_dags(catalogue, feast_repo_path=reference_settings(os.path.dirname(__file__)).feast_repo)
globals().update(dags)  # Airflow finds the DAGs among the module's globals
