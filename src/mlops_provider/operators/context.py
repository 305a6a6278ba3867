"""What every operator records about the Airflow run it belongs to: its task identity, tags, report folder."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_provider.core.identity import TaskIdentity

if TYPE_CHECKING:
    from airflow.sdk import Context


def task_identity(context: Context) -> TaskIdentity:
    """The task try running now, from its context."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return TaskIdentity(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        map_index=-1 if map_index is None else int(map_index),
        try_number=int(ti.try_number or 1),
    )


def airflow_run_tags(context: Context) -> dict[str, str]:
    """Tags that tie an MLflow run, model version or report to the Airflow task try that made it."""
    return task_identity(context).run_tags()


def triggering_user(context: Context) -> str | None:
    """The user who triggered the DAG run, when Airflow knows one."""
    dag_run = context.get("dag_run")
    user = getattr(dag_run, "triggering_user_name", None) if dag_run is not None else None
    return str(user) if user else None


def report_location(context: Context) -> dict[str, str]:
    """Keyword arguments for ``core.reports.report_uri``: one folder per DAG run and task (and map index)."""
    identity = task_identity(context)
    mapped = f".{identity.map_index}" if identity.map_index >= 0 else ""
    return {"dag_id": identity.dag_id, "run_id": identity.run_id, "task_id": f"{identity.task_id}{mapped}"}
