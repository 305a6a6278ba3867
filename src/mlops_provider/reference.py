"""Settings of the reference DAGs in ``dags/``, read from the environment when a DAG file is parsed.

| variable | default | meaning |
|---|---|---|
| ``MLOPS_DATA_URI`` | ``$MLOPS_HOME/data/churn`` | labelled data, one ``dt=YYYY-MM-DD`` folder per day |
| ``MLOPS_LANDING_URI`` | ``$MLOPS_HOME/landing/churn`` | where new partitions land (``s3://`` waits with S3KeySensor) |
| ``MLOPS_MODEL_NAME`` | ``customer_churn`` | the registered model |
| ``MLOPS_TARGET_COLUMN`` | ``churned`` | the label |
| ``MLOPS_ID_COLUMNS`` | ``customer_id,dt`` | identifier columns, never features nor drift-tested |
| ``MLOPS_TIMESTAMP_COLUMN`` | ``event_timestamp`` | when a row was observed (time split, point-in-time joins) |
| ``MLOPS_FEAST_REPO`` | ``include/feature_repo`` next to ``dags/`` | the Feast repository |
| ``MLOPS_PRIMARY_METRIC`` | ``roc_auc`` | the gate's metric (``rmse`` etc. for regression) |
| ``MLOPS_MIN_IMPROVEMENT`` | ``0.0`` | how much the challenger must beat the champion by |
| ``MLOPS_DRIFT_SHARE`` | ``0.25`` | share of feature columns that must drift to call it drift |
| ``MLOPS_LABELS_URI`` | ``$MLOPS_HOME/labels/churn`` | labels as they arrive: ids, label, ``label_timestamp`` |
| ``MLOPS_LABEL_DELAY_DAYS`` | ``3`` | how many days after a prediction its label is known |

The defaults fit the sample data of ``include/sample_data.py``; point the variables at your own data to
run the same DAGs on it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlops_provider.core.tracking import mlops_home
from mlops_provider.operators.lifecycle import LifecycleSettings

START_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)
SAMPLE_ID_COLUMNS = ("customer_id", "dt")


@dataclass(frozen=True)
class ReferenceSettings:
    data_uri: str
    landing_uri: str
    model_name: str
    target_column: str
    timestamp_column: str
    feast_repo: str
    primary_metric: str
    min_improvement: float
    drift_share: float
    id_columns: tuple[str, ...] = SAMPLE_ID_COLUMNS
    labels_uri: str = ""
    label_delay_days: int = 3

    @property
    def landing_on_s3(self) -> bool:
        return self.landing_uri.startswith("s3://")

    def lifecycle(self, *, dataset_uri: Any, experiment_name: str) -> LifecycleSettings:
        """What a retraining DAG hands ``lifecycle_task_group``: these settings on ``dataset_uri``."""
        return LifecycleSettings(
            dataset_uri=dataset_uri,
            target_column=self.target_column,
            model_name=self.model_name,
            id_columns=list(self.id_columns),
            timestamp_column=self.timestamp_column,
            thresholds=self.thresholds(),
            feast_repo_path=self.feast_repo,
            experiment_name=experiment_name,
        )

    def thresholds(self) -> dict[str, dict[str, float]]:
        """The gate: the challenger's primary metric may not fall below the champion's by more than allowed."""
        return {self.primary_metric: {"min_absolute_change": self.min_improvement}}


def reference_settings(dags_folder: str | os.PathLike | None = None) -> ReferenceSettings:
    home = mlops_home()
    project = Path(dags_folder).resolve().parent if dags_folder else Path.cwd()
    env = os.environ.get
    return ReferenceSettings(
        data_uri=env("MLOPS_DATA_URI") or str(home / "data" / "churn"),
        landing_uri=env("MLOPS_LANDING_URI") or str(home / "landing" / "churn"),
        model_name=env("MLOPS_MODEL_NAME") or "customer_churn",
        target_column=env("MLOPS_TARGET_COLUMN") or "churned",
        id_columns=tuple(
            c.strip() for c in (env("MLOPS_ID_COLUMNS") or ",".join(SAMPLE_ID_COLUMNS)).split(",") if c.strip()
        ),
        timestamp_column=env("MLOPS_TIMESTAMP_COLUMN") or "event_timestamp",
        feast_repo=env("MLOPS_FEAST_REPO") or str(project / "include" / "feature_repo"),
        primary_metric=env("MLOPS_PRIMARY_METRIC") or "roc_auc",
        min_improvement=float(env("MLOPS_MIN_IMPROVEMENT") or 0.0),
        # With a handful of features one drifted column in four is worth a retrain; two of five columns each
        # falsely flagged at the 5% level happens on ~2% of quiet days.
        drift_share=float(env("MLOPS_DRIFT_SHARE") or 0.25),
        labels_uri=env("MLOPS_LABELS_URI") or str(home / "labels" / "churn"),
        label_delay_days=int(env("MLOPS_LABEL_DELAY_DAYS") or 3),
    )
