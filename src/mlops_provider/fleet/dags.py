"""DAGs from the model catalogue: per model its lifecycle DAG and the DAGs its triggers ask for.

| DAG id | generated when the entry has | built by |
|---|---|---|
| ``mlops_fleet_<model>`` | always | ``lifecycle_task_group`` on ``dataset_uri``, on its ``schedule`` |
| ``mlops_fleet_<model>_arrival`` | ``triggers.data_arrival`` | ``retrain_on_data_arrival_dag`` |
| ``mlops_fleet_<model>_drift`` | ``triggers.drift`` | ``drift_monitor_dag`` |
| ``mlops_fleet_<model>_retrain_on_drift`` | ``triggers.drift`` | ``retrain_on_drift_dag`` |
| ``mlops_fleet_<model>_performance`` | ``triggers.performance`` | ``performance_monitor_dag`` |
| ``mlops_fleet_<model>_retrain_on_performance`` | ``triggers.performance`` | ``retrain_on_performance_dag`` |
| ``mlops_fleet_report`` (one for the fleet) | at least one good model | ``fleet_report_dag`` |

(the other builders are in ``mlops_provider.reference``).

One wiring: the lifecycle is the reference DAGs' ``lifecycle_task_group`` and the trigger DAGs come from the same
functions as ``mlops_retrain_on_data_arrival``, ``mlops_drift_monitor`` and the others, called with the entry's
settings (``lifecycle_settings``, ``monitor_settings``), its DAG ids, its tags (``mlops``, ``fleet``, the kind, then
the entry's) and its owners. Every DAG runs one run at a time (``max_active_runs=1``; the data-arrival DAG keeps the
reference's 3).

Concurrency across the fleet: every ``train`` task sits in the Airflow pool ``mlops_training`` (``TRAINING_POOL``),
so its slots bound how many models train at once, whatever their schedules and triggers. Promotions take no
shared pool: each one holds the registry lock of its own model (``PromotionLock``), so fifty models promote side
by side and only two promotions of the same model wait for each other.

Bad entries: ``catalogue_errors_dag`` is a placeholder DAG whose ``validate()`` raises the ``CatalogueError`` that
lists them; Airflow's DagBag validates every DAG before keeping it and records that error as the import error of
the file defining the placeholder. Airflow marks every DAG of a file with an import error stale, so the placeholder
lives in its own DAG file (``dags/mlops_fleet_catalogue.py``), and the good models' DAGs stay scheduled.

Airflow operators are imported when the DAGs are built, not when this module is imported.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG

from mlops_provider.fleet.entries import (
    DAG_ID_PREFIX,
    DEFAULT_DRIFT_SHARE,
    AlertSettings,
    Catalogue,
    CatalogueError,
    ModelEntry,
)

if TYPE_CHECKING:
    from mlops_provider.operators.lifecycle import LifecycleSettings
    from mlops_provider.reference import ReferenceSettings

TRAINING_POOL = "mlops_training"
ERRORS_DAG_ID = f"{DAG_ID_PREFIX}catalogue_errors"
REPORT_DAG_ID = f"{DAG_ID_PREFIX}report"

# What each generated DAG does, for its doc_md; the model, its settings and its DAG ids are filled in.
_DOES = {
    "lifecycle": "The lifecycle: validate -> features -> train -> gate -> {approve}promote -> score, on `{dataset}`, "
    "{schedule}. Training waits for a slot of the pool `{pool}`.",
    "data_arrival": "Daily: waits for `{prefix}/dt=<day>/*.parquet`, then runs the lifecycle on that partition "
    "(the wiring of `mlops_retrain_on_data_arrival`).",
    "drift_monitor": "Daily: the day's partition of `{dataset}` against the champion's training sample; on drift "
    "the Asset `mlops://drift/{model}` (the wiring of `mlops_drift_monitor`), which starts `{retrain_on_drift}`.",
    "retrain_on_drift": "On the Asset `mlops://drift/{model}`: the lifecycle on the newest week of partitions up "
    "to the drifted day (the wiring of `mlops_retrain_on_drift`).",
    "performance_monitor": "Daily: scores the day's partition into the prediction log and judges the predictions "
    "of {delay} days before on their labels from `{labels}`; on a supported drop the Asset "
    "`mlops://performance/{model}` (the wiring of `mlops_performance_monitor`), which starts "
    "`{retrain_on_performance}`.",
    "retrain_on_performance": "On the Asset `mlops://performance/{model}`: the lifecycle on the newest week of "
    "partitions up to the degraded day (the wiring of `mlops_retrain_on_performance`).",
}


def alert_notifiers(alerts: AlertSettings | None) -> list[Any]:
    """The Airflow notifiers of an entry's ``alerts``: an ``SmtpNotifier`` to its ``email`` addresses and a
    ``WebhookNotifier`` posting to ``webhook_conn_id``'s webhook; each sends the alert's own message."""
    if alerts is None:
        return []
    notifiers: list[Any] = []
    if alerts.email:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        notifiers.append(
            SmtpNotifier(to=list(alerts.email), from_email=alerts.from_email, smtp_conn_id=alerts.smtp_conn_id)
        )
    if alerts.webhook_conn_id:
        from mlops_provider.notifications.webhook import WebhookNotifier

        notifiers.append(WebhookNotifier(webhook_conn_id=alerts.webhook_conn_id))
    return notifiers


def lifecycle_settings(
    entry: ModelEntry, *, feast_repo_path: str | None = None, training_pool: str | None = TRAINING_POOL
) -> LifecycleSettings:
    """What every lifecycle of the model runs: the entry's data, model and gate; ``dataset_uri`` is the entry's
    (the retraining DAGs replace it with the partitions they select)."""
    from mlops_provider.operators.lifecycle import LifecycleSettings

    return LifecycleSettings(
        dataset_uri=entry.dataset_uri,
        target_column=entry.target_column,
        model_name=entry.name,
        feature_columns=list(entry.feature_columns) if entry.feature_columns else None,
        id_columns=list(entry.id_columns),
        timestamp_column=entry.timestamp_column,
        feature_refs=(list(entry.feature_refs) if isinstance(entry.feature_refs, tuple) else entry.feature_refs)
        or None,
        expectation_suite=entry.expectation_suite,
        estimator=entry.estimator,
        estimator_params=dict(entry.estimator_params) or None,
        slice_columns=list(entry.slice_columns) or None,
        sensitive_columns=list(entry.sensitive_columns) or None,
        experiment_name=entry.experiment_name or entry.dag_ids["lifecycle"],
        thresholds=dict(entry.thresholds) if entry.thresholds else None,
        primary_metric=entry.primary_metric,
        min_improvement=entry.min_improvement,
        require_approval=entry.require_approval,
        approvers=list(entry.approvers) or None,
        training_pool=training_pool,
        feast_repo_path=feast_repo_path,
        notifiers=alert_notifiers(entry.alerts) or None,
        alert_on=list(entry.alerts.on) if entry.alerts else None,
    )


def monitor_settings(entry: ModelEntry, *, feast_repo_path: str | None = None) -> ReferenceSettings:
    """The entry as the reference DAG builders read it: where the partitions, landings and labels are."""
    from mlops_provider.reference import ReferenceSettings

    triggers = entry.triggers
    return ReferenceSettings(
        data_uri=entry.dataset_uri,
        landing_uri=triggers.data_arrival.prefix if triggers.data_arrival else "",
        model_name=entry.name,
        target_column=entry.target_column,
        timestamp_column=entry.timestamp_column,
        feast_repo=feast_repo_path or "",
        # The gate of the fleet's retraining DAGs is the entry's (lifecycle_settings), not these two.
        primary_metric=entry.primary_metric or "",
        min_improvement=entry.min_improvement,
        drift_share=triggers.drift.share if triggers.drift else DEFAULT_DRIFT_SHARE,
        id_columns=entry.id_columns,
        labels_uri=triggers.performance.labels_uri if triggers.performance else "",
        label_delay_days=triggers.performance.label_delay_days if triggers.performance else 3,
        min_rows=triggers.performance.min_rows if triggers.performance else 200,
        feature_columns=entry.feature_columns,
        notifiers=tuple(alert_notifiers(entry.alerts)),
        alert_on=entry.alerts.on if entry.alerts else None,
    )


def _schedule(schedule: str | None) -> Any:
    """None (by hand or through the API), ``@once``, or a cron preset/expression with data intervals (as the
    reference DAGs: a run reads its interval's data)."""
    if schedule is None or schedule == "@once":
        return schedule
    from airflow.timetables.interval import CronDataIntervalTimetable

    return CronDataIntervalTimetable(schedule, timezone="UTC")


def _doc(entry: ModelEntry, kind: str, catalogue_path: str | None, training_pool: str | None) -> str:
    ids = entry.dag_ids
    triggers = entry.triggers
    does = _DOES[kind].format(
        model=entry.name,
        dataset=entry.dataset_uri,
        approve="approve -> " if entry.require_approval else "",
        schedule=f"on the schedule `{entry.schedule}`" if entry.schedule else "when triggered",
        pool=training_pool or "default_pool",
        prefix=triggers.data_arrival.prefix.rstrip("/") if triggers.data_arrival else "",
        labels=triggers.performance.labels_uri if triggers.performance else "",
        delay=triggers.performance.label_delay_days if triggers.performance else "",
        retrain_on_drift=ids.get("retrain_on_drift", ""),
        retrain_on_performance=ids.get("retrain_on_performance", ""),
    )
    metric = entry.primary_metric or "roc_auc / rmse by task type"
    params = f"`{json.dumps(dict(entry.estimator_params))}`" if entry.estimator_params else ""
    gate = (
        ", ".join(f"`{name}` `{json.dumps(rules)}`" for name, rules in entry.thresholds.items())
        if entry.thresholds
        else f"`{metric}` beats the champion by {entry.min_improvement:g}"
    )
    source = f"`{catalogue_path}`" if catalogue_path else "the model catalogue"
    approval = ""
    if entry.require_approval:
        approval = f", then approval by {', '.join(entry.approvers)}" if entry.approvers else ", then a human approval"
    lines = [
        f"### {ids[kind]}",
        "",
        f"Generated from {source}, entry `{entry.name}`: change the entry, not this DAG.",
        *(["", entry.description] if entry.description else []),
        "",
        does,
        "",
        "| setting | value |",
        "|---|---|",
        f"| target | `{entry.target_column}` |",
        f"| estimator | `{entry.estimator or 'HistGradientBoosting (default)'}` {params} |",
        f"| gate | {gate}{approval} |",
        f"| owners | {', '.join(entry.owners) or '-'} |",
    ]
    return "\n".join(lines)


def model_dags(
    entry: ModelEntry,
    *,
    catalogue_path: str | None = None,
    feast_repo_path: str | None = None,
    training_pool: str | None = TRAINING_POOL,
) -> dict[str, DAG]:
    """The DAGs of one model, by DAG id (``entry.dag_ids``)."""
    from mlops_provider import reference
    from mlops_provider.operators.lifecycle import lifecycle_task_group

    ids = entry.dag_ids
    lifecycle = lifecycle_settings(entry, feast_repo_path=feast_repo_path, training_pool=training_pool)
    settings = monitor_settings(entry, feast_repo_path=feast_repo_path)
    owner = {"owner": ", ".join(entry.owners)} if entry.owners else {}

    def shared(kind: str, *tags: str) -> dict[str, Any]:
        return {
            "dag_id": ids[kind],
            "tags": list(dict.fromkeys(["mlops", "fleet", *tags, *entry.tags])),
            "doc_md": _doc(entry, kind, catalogue_path, training_pool),
            "default_args": owner,
        }

    dags: dict[str, DAG] = {}
    common = shared("lifecycle")
    with DAG(
        dag_id=common["dag_id"],
        schedule=_schedule(entry.schedule),
        start_date=reference.START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=common["tags"],
        doc_md=common["doc_md"],
        description=entry.description,
        default_args=owner,
    ) as dag:
        lifecycle_task_group(lifecycle)
    dags[dag.dag_id] = dag
    if entry.triggers.data_arrival:
        arrival = reference.retrain_on_data_arrival_dag(
            settings, lifecycle=lifecycle, **shared("data_arrival", "retrain", "landing")
        )
        dags[arrival.dag_id] = arrival
    if entry.triggers.drift:
        for built in (
            reference.drift_monitor_dag(settings, **shared("drift_monitor", "drift")),
            reference.retrain_on_drift_dag(
                settings, lifecycle=lifecycle, **shared("retrain_on_drift", "drift", "retrain")
            ),
        ):
            dags[built.dag_id] = built
    if entry.triggers.performance:
        for built in (
            reference.performance_monitor_dag(settings, **shared("performance_monitor", "performance")),
            reference.retrain_on_performance_dag(
                settings, lifecycle=lifecycle, **shared("retrain_on_performance", "performance", "retrain")
            ),
        ):
            dags[built.dag_id] = built
    return dags


def fleet_dags(
    catalogue: Catalogue, *, feast_repo_path: str | None = None, training_pool: str | None = TRAINING_POOL
) -> dict[str, DAG]:
    """Every good model's DAGs, by DAG id, and the fleet's report DAG. Bad entries are left out:
    ``catalogue_errors_dag`` reports them."""
    dags: dict[str, DAG] = {}
    for entry in catalogue.models.values():
        dags.update(
            model_dags(
                entry, catalogue_path=catalogue.path, feast_repo_path=feast_repo_path, training_pool=training_pool
            )
        )
    if dags:
        report = fleet_report_dag(catalogue)
        dags[report.dag_id] = report
    return dags


def fleet_report_dag(catalogue: Catalogue) -> DAG:
    """Daily: ``FleetReportOperator`` over the catalogue, read where ``mlops_fleet.py`` reads it. A model without a
    new version for two of its schedule periods is stale, and each stale model's own ``alerts`` hear of it
    (``model_stale``) while it stays stale."""
    from mlops_provider import reference
    from mlops_provider.operators.fleet import FleetReportOperator

    doc = (
        f"Daily: the fleet report over every model of the catalogue `{catalogue.path}` "
        "(champion, newest version, gate decision, drift and live verdicts, flags), behind the task's "
        "**Fleet report** link; the alert `model_stale` goes to every stale model's own `alerts`."
    )
    with DAG(
        dag_id=REPORT_DAG_ID,
        schedule="@daily",
        start_date=reference.START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["mlops", "fleet", "report"],
        doc_md=doc,
    ) as dag:
        FleetReportOperator(task_id="fleet_report")
    return dag


class CatalogueErrorsDAG(DAG):
    """A DAG that is never kept: its ``validate()`` raises the catalogue's ``CatalogueError``, which Airflow records
    as the import error of the file that defines it (``DagBag.process_file`` validates each DAG before bagging)."""

    catalogue_error: CatalogueError | None = None

    def validate(self) -> None:
        if self.catalogue_error is not None:
            raise self.catalogue_error
        super().validate()


def catalogue_errors_dag(catalogue: Catalogue) -> DAG | None:
    """The placeholder that turns the catalogue's problems into one import error; None when there are none."""
    error = catalogue.error()
    if error is None:
        return None
    dag = CatalogueErrorsDAG(
        dag_id=ERRORS_DAG_ID, schedule=None, tags=["mlops", "fleet"], doc_md=str(error), auto_register=False
    )
    dag.catalogue_error = error
    return dag
