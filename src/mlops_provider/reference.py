"""Settings of the reference DAGs in ``dags/``, read from the environment when a DAG file is parsed, and the
functions that build the trigger DAGs (data arrival, drift, performance) from them.

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

One wiring, several callers: ``retrain_on_data_arrival_dag``, ``drift_monitor_dag``, ``retrain_on_drift_dag``,
``performance_monitor_dag`` and ``retrain_on_performance_dag`` build those reference DAGs for ``dags/`` (with
the reference ids and tags as defaults) and the same DAGs for every model of the model catalogue
(``mlops_provider.fleet``), which passes its own ids, tags, owners and ``LifecycleSettings``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_provider.core.tracking import mlops_home
from mlops_provider.operators.lifecycle import LifecycleSettings, _output

if TYPE_CHECKING:
    from airflow.sdk import DAG, BaseOperator

START_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)
SAMPLE_ID_COLUMNS = ("customer_id", "dt")
# A drift or performance event retrains on the newest week of partitions up to the day it names.
RETRAIN_WINDOW_DAYS = 7
# The validation margin of a retraining on drift, in spans of the inferred range (see retrain_on_drift_dag).
DRIFT_RETRAIN_RANGE_TOLERANCE = 1.0


@dataclass(frozen=True)
class ReferenceSettings:
    data_uri: str
    landing_uri: str
    model_name: str
    target_column: str
    timestamp_column: str | None
    feast_repo: str
    primary_metric: str
    min_improvement: float
    drift_share: float
    id_columns: tuple[str, ...] = SAMPLE_ID_COLUMNS
    labels_uri: str = ""
    label_delay_days: int = 3
    # The columns the drift tests compare (None: every column but the ids, the timestamp and the target) and
    # the labelled predictions the performance monitor needs before it judges.
    feature_columns: tuple[str, ...] | None = None
    min_rows: int = 200
    # Alerts (operators.alerting): the notifiers told of drift, a gate rejection, a degradation and an approval
    # waiting, and which of those kinds (None: all).
    notifiers: tuple[Any, ...] = ()
    alert_on: tuple[str, ...] | None = None

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
            notifiers=list(self.notifiers) or None,
            alert_on=self.alert_on,
        )

    def thresholds(self) -> dict[str, dict[str, float]]:
        """The gate: the challenger's primary metric may not fall below the champion's by more than allowed."""
        return {self.primary_metric: {"min_absolute_change": self.min_improvement}}

    def alerts_for(self, kind: str) -> dict[str, Any]:
        """The ``notifiers`` argument of the operator that raises ``kind`` (``{}``: no alert of that kind)."""
        from mlops_provider.operators.alerting import alert_arguments

        return alert_arguments(self.notifiers, self.alert_on, kind)

    def not_features(self) -> list[str]:
        """Columns never drift-tested: the ids, the timestamp and the target."""
        return [c for c in (*self.id_columns, self.timestamp_column, self.target_column) if c]


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


def _dag(
    dag_id: str,
    *,
    schedule: Any,
    tags: Sequence[str],
    doc_md: str | None,
    default_args: Mapping[str, Any] | None,
    max_active_runs: int = 1,
) -> DAG:
    from airflow.sdk import DAG

    return DAG(
        dag_id=dag_id,
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=max_active_runs,
        tags=list(tags),
        doc_md=doc_md,
        default_args=dict(default_args or {}),
    )


def _daily() -> Any:
    from airflow.timetables.interval import CronDataIntervalTimetable

    return CronDataIntervalTimetable("@daily", timezone="UTC")


def _retraining(lifecycle: LifecycleSettings | None, settings: ReferenceSettings, dataset_uri: Any, dag_id: str):
    """The lifecycle a retraining DAG runs on ``dataset_uri``: ``lifecycle`` (its experiment by default named as
    the DAG), or the reference settings' lifecycle."""
    if lifecycle is None:
        return settings.lifecycle(dataset_uri=dataset_uri, experiment_name=dag_id)
    return lifecycle.replace(dataset_uri=dataset_uri, experiment_name=lifecycle.experiment_name or dag_id)


def _drift_check(
    settings: ReferenceSettings, task_id: str, current_uri: Any, *, on_drift: str, alert: bool = False
) -> BaseOperator:
    """The model's input drift check on ``current_uri``: its feature columns (or every column but the ids, the
    timestamp and the target) against the champion's training sample; with ``alert``, the settings' notifiers
    hear of drift."""
    from mlops_provider.core.alerts import DRIFT_DETECTED
    from mlops_provider.operators.drift import DetectDriftOperator

    return DetectDriftOperator(
        task_id=task_id,
        current_uri=current_uri,
        model_name=settings.model_name,
        columns=list(settings.feature_columns) if settings.feature_columns else None,
        exclude_columns=settings.not_features(),
        drift_share=settings.drift_share,
        on_drift=on_drift,
        **(settings.alerts_for(DRIFT_DETECTED) if alert else {}),
    )


def retrain_on_data_arrival_dag(
    settings: ReferenceSettings,
    *,
    lifecycle: LifecycleSettings | None = None,
    dag_id: str = "mlops_retrain_on_data_arrival",
    tags: Sequence[str] = ("mlops", "retrain", "landing"),
    doc_md: str | None = None,
    default_args: Mapping[str, Any] | None = None,
) -> DAG:
    """Daily: wait for ``<landing_uri>/dt=<day>/*.parquet``, then the lifecycle on that partition.

    On ``s3://`` the wait is the amazon provider's deferrable ``S3KeySensor`` (connection ``aws_default``); a local
    folder uses ``FileSensor`` in reschedule mode (connection ``fs_default``).
    """
    from datetime import timedelta

    from airflow.providers.standard.sensors.filesystem import FileSensor

    from mlops_provider.operators.lifecycle import lifecycle_task_group

    partition = settings.landing_uri.rstrip("/") + "/dt={{ data_interval_start | ds }}"
    wait_for: dict[str, Any] = {"poke_interval": 30, "timeout": int(timedelta(hours=20).total_seconds())}
    dag = _dag(dag_id, schedule=_daily(), tags=tags, doc_md=doc_md, default_args=default_args, max_active_runs=3)
    with dag:
        wait: BaseOperator
        if settings.landing_on_s3:
            from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

            wait = S3KeySensor(
                task_id="wait_for_partition",
                bucket_key=partition + "/*.parquet",
                wildcard_match=True,
                deferrable=True,
                aws_conn_id="aws_default",
                **wait_for,
            )
        else:
            wait = FileSensor(
                task_id="wait_for_partition", filepath=partition + "/*.parquet", mode="reschedule", **wait_for
            )
        wait >> lifecycle_task_group(_retraining(lifecycle, settings, partition, dag_id))
    return dag


def drift_monitor_dag(
    settings: ReferenceSettings,
    *,
    dag_id: str = "mlops_drift_monitor",
    tags: Sequence[str] = ("mlops", "drift"),
    doc_md: str | None = None,
    default_args: Mapping[str, Any] | None = None,
) -> DAG:
    """Daily: the day's partition against the champion's training sample; the Asset ``mlops://drift/<model>`` on
    drift. A day with no partition is skipped."""
    from mlops_provider.operators.datasets import SelectPartitionsOperator

    with _dag(dag_id, schedule=_daily(), tags=tags, doc_md=doc_md, default_args=default_args) as dag:
        day = SelectPartitionsOperator(
            task_id="day_partition",
            dataset_uri=settings.data_uri,
            since="{{ data_interval_start | ds }}",
            until="{{ data_interval_end | ds }}",
        )
        _drift_check(settings, "detect_drift", _output(day, "dataset_uri"), on_drift="emit", alert=True)
    return dag


def retrain_on_drift_dag(
    settings: ReferenceSettings,
    *,
    lifecycle: LifecycleSettings | None = None,
    dag_id: str = "mlops_retrain_on_drift",
    tags: Sequence[str] = ("mlops", "drift", "retrain"),
    doc_md: str | None = None,
    default_args: Mapping[str, Any] | None = None,
) -> DAG:
    """On the Asset ``mlops://drift/<model>``: the lifecycle on the newest week of partitions up to the drifted day.

    Its validation widens the inferred ranges by ``DRIFT_RETRAIN_RANGE_TOLERANCE`` (a full span on each side, where
    the lifecycle's default is a fifth): the data it retrains on has drifted, and values just past the champion's
    range would otherwise fail the very retraining the drift called for; a full span still stops broken units. A
    ``lifecycle`` that sets ``range_tolerance`` keeps its own."""
    from mlops_provider.assets import drift_asset
    from mlops_provider.operators.drift import DriftEventOperator

    def event() -> BaseOperator:
        return DriftEventOperator(task_id="drift_event", model_name=settings.model_name)

    lifecycle = lifecycle or settings.lifecycle(dataset_uri=None, experiment_name=dag_id)
    if lifecycle.range_tolerance is None:
        lifecycle = lifecycle.replace(range_tolerance=DRIFT_RETRAIN_RANGE_TOLERANCE)
    return _retrain_on_event(settings, event, drift_asset(settings.model_name), lifecycle, dag_id, tags, doc_md,
                             default_args)  # fmt: skip


def performance_monitor_dag(
    settings: ReferenceSettings,
    *,
    dag_id: str = "mlops_performance_monitor",
    tags: Sequence[str] = ("mlops", "performance"),
    doc_md: str | None = None,
    default_args: Mapping[str, Any] | None = None,
) -> DAG:
    """Daily: score the day's partition into the prediction log (champion served, ``challenger`` in shadow); judge
    the predictions ``label_delay_days`` back on their late labels; the Asset ``mlops://performance/<model>`` on a
    statistically supported drop."""
    from datetime import timedelta

    from mlops_provider.core.alerts import PERFORMANCE_DEGRADED
    from mlops_provider.operators.lifecycle import default_work_uri
    from mlops_provider.operators.performance import EvaluateLivePerformanceOperator
    from mlops_provider.operators.prediction import BatchPredictOperator
    from mlops_provider.sensors.performance import PerformanceSensor

    delay = settings.label_delay_days
    # The day's predictions are made at the end of its interval, so the window of prediction times that the
    # label delay puts in reach, [start - delay, end - delay), holds the predictions of the day before it.
    judged_day = f"{{{{ (data_interval_start - macros.timedelta(days={delay + 1})) | ds }}}}"
    live: dict[str, Any] = {
        "model_name": settings.model_name,
        "labels_uri": settings.labels_uri,
        "label_column": settings.target_column,
        "id_columns": list(settings.id_columns),
        "label_timestamp_column": "label_timestamp",
        "label_delay": timedelta(days=delay),
        "min_rows": settings.min_rows,
    }
    data = settings.data_uri.rstrip("/")
    with _dag(dag_id, schedule=_daily(), tags=tags, doc_md=doc_md, default_args=default_args) as dag:
        BatchPredictOperator(
            task_id="score_day",
            model_name=settings.model_name,
            dataset_uri=data + "/dt={{ data_interval_start | ds }}",
            output_uri=default_work_uri().rstrip("/") + f"/predictions/{dag_id}/dt={{{{ data_interval_start | ds }}}}/",
            id_columns=list(settings.id_columns),
            shadow_aliases=["challenger"],
        )
        # Labels that never come skip the evaluation (soft_fail): "insufficient evidence", not a failed run.
        labels = PerformanceSensor(
            task_id="wait_for_labels", timeout=int(timedelta(days=2).total_seconds()), soft_fail=True, **live
        )
        drift = _drift_check(settings, "input_drift", data + f"/dt={judged_day}", on_drift="continue")
        evaluate = EvaluateLivePerformanceOperator(
            task_id="live_performance",
            input_drift=drift.output,
            **live,
            **settings.alerts_for(PERFORMANCE_DEGRADED),
        )
        [labels, drift] >> evaluate
    return dag


def retrain_on_performance_dag(
    settings: ReferenceSettings,
    *,
    lifecycle: LifecycleSettings | None = None,
    dag_id: str = "mlops_retrain_on_performance",
    tags: Sequence[str] = ("mlops", "performance", "retrain"),
    doc_md: str | None = None,
    default_args: Mapping[str, Any] | None = None,
) -> DAG:
    """On the Asset ``mlops://performance/<model>``: the lifecycle on the newest week of labelled partitions up to
    the degraded day."""
    from mlops_provider.assets import performance_asset
    from mlops_provider.operators.performance import PerformanceEventOperator

    def event() -> BaseOperator:
        return PerformanceEventOperator(task_id="performance_event", model_name=settings.model_name)

    return _retrain_on_event(settings, event, performance_asset(settings.model_name), lifecycle, dag_id, tags,
                             doc_md, default_args)  # fmt: skip


def _retrain_on_event(
    settings: ReferenceSettings,
    make_event: Callable[[], BaseOperator],
    asset: Any,
    lifecycle: LifecycleSettings | None,
    dag_id: str,
    tags: Sequence[str],
    doc_md: str | None,
    default_args: Mapping[str, Any] | None,
) -> DAG:
    """Scheduled on ``asset``: the task ``make_event`` builds (an AssetEventOperator) says up to which day, then the
    lifecycle on the newest week of partitions before it."""
    from mlops_provider.operators.datasets import SelectPartitionsOperator
    from mlops_provider.operators.lifecycle import lifecycle_task_group

    with _dag(dag_id, schedule=[asset], tags=tags, doc_md=doc_md, default_args=default_args) as dag:
        event = make_event()
        window = SelectPartitionsOperator(
            task_id="recent_partitions",
            dataset_uri=settings.data_uri,
            until=_output(event, "until"),
            last=RETRAIN_WINDOW_DAYS,
            on_empty="fail",
        )
        lifecycle_task_group(_retraining(lifecycle, settings, _output(window, "dataset_uri"), dag_id))
    return dag
