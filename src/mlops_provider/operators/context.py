"""What every operator records about the Airflow run it belongs to (tags, report paths)."""

from __future__ import annotations

from typing import Any

from mlops_provider import __version__


def airflow_run_tags(context: Any) -> dict[str, str]:
    """Tags that tie an MLflow run, model version or report to the Airflow task try that made it."""
    ti = context["ti"]
    return {
        "airflow.dag_id": ti.dag_id,
        "airflow.run_id": ti.run_id,
        "airflow.task_id": ti.task_id,
        "airflow.try_number": str(ti.try_number),
        "airflow.map_index": str(getattr(ti, "map_index", -1)),
        "mlops.provider_version": __version__,
    }


def report_location(context: Any) -> dict[str, str]:
    """Keyword arguments for ``core.reports.report_uri``: one folder per DAG run and task."""
    ti = context["ti"]
    task_id = ti.task_id if getattr(ti, "map_index", -1) in (-1, None) else f"{ti.task_id}.{ti.map_index}"
    return {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": task_id}
