"""Airflow Assets the provider emits, and the URI schemes it registers with Airflow.

* ``mlops://drift/<model_name>``: drift was found for a model's inputs (DetectDriftOperator, DriftSensor).
  Its event ``extra`` carries the drift summary, so a retraining DAG scheduled on it knows which columns
  drifted.
* ``mlops://performance/<model_name>``: a model's live performance degraded (EvaluateLivePerformanceOperator);
  its ``extra`` carries the numbers (metric, live value and interval, baseline, labelled rows, window).
* ``mlflow://<model_name>@<alias>``: a registered model's alias moved (promotion, rollback).

Emitting tasks declare an ``AssetAlias`` as outlet and attach the concrete asset at run time, so an event is
recorded only when something happened (a task that declares an ``Asset`` outlet emits on every success).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow.sdk import Asset, AssetAlias

if TYPE_CHECKING:
    from urllib.parse import SplitResult

DRIFT_ALIAS = "mlops-drift-events"
PERFORMANCE_ALIAS = "mlops-performance-events"
MODEL_ALIAS_EVENTS = "mlops-model-alias-events"
MLOPS_ASSET_KINDS = ("drift", "performance")


def drift_asset(model_name: str) -> Asset:
    """The asset a retraining DAG schedules on: ``schedule=[drift_asset("churn")]``."""
    return Asset(uri=f"mlops://drift/{quote(model_name, safe='')}", name=f"drift:{model_name}", group="mlops")


def drift_alias() -> AssetAlias:
    return AssetAlias(name=DRIFT_ALIAS, group="mlops")


def performance_asset(model_name: str) -> Asset:
    """The asset a retraining DAG schedules on to answer degraded live performance."""
    return Asset(
        uri=f"mlops://performance/{quote(model_name, safe='')}", name=f"performance:{model_name}", group="mlops"
    )


def performance_alias() -> AssetAlias:
    return AssetAlias(name=PERFORMANCE_ALIAS, group="mlops")


def sanitize_mlops_uri(uri: SplitResult) -> SplitResult:
    if uri.netloc not in MLOPS_ASSET_KINDS or not uri.path.strip("/"):
        raise ValueError(
            "An mlops:// asset URI must look like mlops://drift/<model_name> or mlops://performance/<model_name>"
        )
    return uri


def model_alias_asset(model_name: str, alias: str = "champion") -> Asset:
    """The asset a scoring DAG schedules on: ``schedule=[model_alias_asset("churn")]`` runs after each promotion."""
    return Asset(
        uri=f"mlflow://{quote(model_name, safe='')}@{quote(alias, safe='')}",
        name=f"{model_name}@{alias}",
        group="mlops",
    )


def model_alias_events() -> AssetAlias:
    return AssetAlias(name=MODEL_ALIAS_EVENTS, group="mlops")


def sanitize_mlflow_uri(uri: SplitResult) -> SplitResult:
    if "@" not in uri.netloc or uri.netloc.startswith("@") or uri.netloc.endswith("@"):
        raise ValueError("An mlflow:// asset URI must look like mlflow://<model_name>@<alias>")
    return uri
