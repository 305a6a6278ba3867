"""Extra links to MLflow pages, built from the connection's UI base URL (``MlflowHook(...).settings.base_ui_url``).

Without a UI URL (the embedded SQLite store has none unless the connection's ``extra.ui_url`` gives one)
no link is stored and the button stays empty.
"""

from __future__ import annotations

from urllib.parse import quote

from mlops_provider.links.base import PersistedUrlLink


class MlflowRunLink(PersistedUrlLink):
    """Opens the MLflow run that trained the task's model (or, when training was skipped, the champion's run)."""

    name = "MLflow run"
    key = "mlops_mlflow_run"


def mlflow_run_url(base_ui_url: str | None, experiment_id: str | None, run_id: str | None) -> str | None:
    """``<ui>/#/experiments/<experiment_id>/runs/<run_id>``, or None when any part is unknown."""
    if not (base_ui_url and experiment_id and run_id):
        return None
    return f"{base_ui_url.rstrip('/')}/#/experiments/{quote(str(experiment_id))}/runs/{quote(str(run_id))}"
