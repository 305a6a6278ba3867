"""A model's monitoring run: where the drift and live-performance monitors record what they found.

One long-lived MLflow run per model, in the experiment ``<model>-monitoring``, tagged ``mlops.monitoring_of=<model>``.
It holds the live monitor's metric time series and, per monitor, its newest verdict as one small JSON tag
(``mlops.verdict.drift``, ``mlops.verdict.live``), so one read tells the fleet report what each monitor last said.

Plain Python over an ``MlflowClient``: no Airflow import.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from mlops_provider.core import tags
from mlops_provider.core.performance import MONITORING_EXPERIMENT_SUFFIX, MONITORING_RUN_NAME

DRIFT = "drift"
LIVE = "live"
VERDICT_KINDS = (DRIFT, LIVE)


def monitoring_experiment_name(model_name: str) -> str:
    return f"{model_name}{MONITORING_EXPERIMENT_SUFFIX}"


def find_monitoring_run(client: Any, model_name: str, experiment_id: str | None = None) -> Any | None:
    """The model's monitoring run, or None when no monitor has recorded anything yet."""
    if experiment_id is None:
        experiment = client.get_experiment_by_name(monitoring_experiment_name(model_name))
        if experiment is None:
            return None
        experiment_id = experiment.experiment_id
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{tags.MONITORING_OF}` = '{model_name}'", max_results=1
    )
    return runs[0] if runs else None


def monitoring_run_id(client: Any, experiment_id: str, model_name: str) -> str:
    """The id of the model's monitoring run in ``experiment_id``, created on first use."""
    run = find_monitoring_run(client, model_name, experiment_id)
    if run is not None:
        return str(run.info.run_id)
    created = client.create_run(experiment_id, tags={tags.MONITORING_OF: model_name}, run_name=MONITORING_RUN_NAME)
    client.set_terminated(created.info.run_id, "FINISHED")  # a long-lived run that gains points, never "running"
    return str(created.info.run_id)


def record_verdict(client: Any, run_id: str, kind: str, verdict: dict[str, Any]) -> None:
    """Store ``verdict`` (small, JSON-ready) as the newest verdict of the monitor ``kind`` on the run."""
    if kind not in VERDICT_KINDS:
        raise ValueError(f"kind={kind!r}: one of {VERDICT_KINDS}")
    client.set_tag(run_id, f"{tags.VERDICT_PREFIX}{kind}", json.dumps(verdict, default=_json_default))


def read_verdicts(run: Any | None) -> dict[str, dict[str, Any]]:
    """The newest verdict of each monitor recorded on ``run`` (a run fetched from MLflow), by kind."""
    if run is None:
        return {}
    verdicts = {}
    for kind in VERDICT_KINDS:
        raw = run.data.tags.get(f"{tags.VERDICT_PREFIX}{kind}")
        if not raw:
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            continue  # a tag edited by hand: no verdict rather than a broken report
        if isinstance(value, dict):
            verdicts[kind] = value
    return verdicts


def windows_without_labels(previous: dict[str, Any] | None, window_end: str, labelled: bool) -> int:
    """How many windows in a row, up to the one ending at ``window_end``, had no verdict for want of labels.

    A rerun of the window the previous verdict was about keeps that verdict's count, so reruns do not count twice.
    """
    if labelled:
        return 0
    before = int((previous or {}).get("windows_without_labels") or 0)
    if previous and previous.get("window_end") == window_end and before:
        return before  # a rerun of the window the previous verdict already counted
    return before + 1


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
