"""One report over the fleet: per model of the catalogue, what MLflow (and, on the fleet page, Airflow) says now.

For every model of the catalogue:

* its champion version and how long it has been champion (since the newest history entry that moved ``champion``
  to it, else since the version was registered); the newest version, when it was registered (the last training)
  and its gate decision;
* the newest verdicts of its monitors, from its monitoring run (``core.monitoring``): the drift check's and the
  live-performance monitor's, with the champion's newest live point;
* given ``airflow_state`` (the fleet page reads it from Airflow's metadata database, see ``plugins.fleet``): the
  last run of each of its DAGs, its newest successful training run and the approvals waiting for a human;
* flags:
  - ``not_trained``: not in the registry (or no version); reported, never an error;
  - ``no_champion``: versions exist but none is ``champion``;
  - ``stale``: no successful training run (without ``airflow_state``: no new version) within
    ``stale_after_periods`` periods of its schedule (``@hourly``: 1 hour, ``@daily``: 1 day, ``@weekly``: 7 days,
    ``@monthly``: 31 days, ``@quarterly``: 92 days, ``@yearly``: 366 days; a cron expression, ``@once`` or no
    schedule: not judged);
  - ``drift_unanswered``: the newest drift check found drift and no version was registered since;
  - ``no_labels``: the live monitor found no labels to judge on for ``no_labels_windows`` windows in a row;
  - ``approval_pending``: a promotion waits for a human (needs ``airflow_state``).

``fleet_report`` returns a small JSON-ready dict (well under a kilobyte per model); ``fleet.page`` renders it.
Plain Python over an ``MlflowClient``: no Airflow, and mlflow is imported only inside functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from mlops_provider.core import tags
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.monitoring import DRIFT, LIVE, find_monitoring_run, read_verdicts
from mlops_provider.core.performance import DEFAULT_LIVE_METRIC
from mlops_provider.core.registry.history import alias_version, read_history
from mlops_provider.fleet.entries import Catalogue, ModelEntry

NOT_TRAINED = "not_trained"
NO_CHAMPION = "no_champion"
STALE = "stale"
DRIFT_UNANSWERED = "drift_unanswered"
NO_LABELS = "no_labels"
APPROVAL_PENDING = "approval_pending"
FLAGS = (NOT_TRAINED, NO_CHAMPION, STALE, DRIFT_UNANSWERED, NO_LABELS, APPROVAL_PENDING)
DEFAULT_STALE_AFTER_PERIODS = 2.0
DEFAULT_NO_LABELS_WINDOWS = 3
CHAMPION_ALIAS = "champion"
# The DAGs of a model whose successful runs count as training (the monitors' runs do not).
TRAINING_DAG_KINDS = ("lifecycle", "data_arrival", "retrain_on_drift", "retrain_on_performance")
# The period of a schedule preset; anything else (a cron expression, @once, none) is not judged for staleness.
SCHEDULE_PERIODS = {
    "@hourly": timedelta(hours=1),
    "@daily": timedelta(days=1),
    "@weekly": timedelta(days=7),
    "@monthly": timedelta(days=31),
    "@quarterly": timedelta(days=92),
    "@yearly": timedelta(days=366),
}
_MISSING_CODES = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")
# Models read at once: each costs a handful of registry round trips, which overlap well.
_READERS = 8


def schedule_period(schedule: str | None) -> timedelta | None:
    """How often the model is meant to retrain, or None when its schedule says nothing about that."""
    return SCHEDULE_PERIODS.get((schedule or "").strip().lower())


def _positive(value: Any, name: str, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(f"{name}={value!r} must be a number above 0, e.g. {example}.")
    return float(value)


def fleet_report(
    client: Any,
    catalogue: Catalogue,
    *,
    now: datetime | None = None,
    stale_after_periods: float = DEFAULT_STALE_AFTER_PERIODS,
    no_labels_windows: int = DEFAULT_NO_LABELS_WINDOWS,
    ui_url: str | None = None,
    airflow_state: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The status of every model of ``catalogue`` in the registry ``client`` talks to, as of ``now``.

    ``airflow_state`` maps a model name to what Airflow knows of it (``runs``: the last run per DAG id,
    ``last_success``: the newest successful training run's end, ``pending_approvals``: a list); see
    ``plugins.fleet.airflow_state``. A catalogue that cannot be read at all raises its ``CatalogueError``; bad
    entries are left out and counted (``counts.catalogue_errors``), as the fleet's DAGs leave them out.
    """
    periods = _positive(stale_after_periods, "stale_after_periods", "2")
    windows = int(_positive(no_labels_windows, "no_labels_windows", "3"))
    if catalogue.path is None:
        raise ConfigurationError(
            "No model catalogue to report on: give catalogue_path, or set the environment variable "
            "MLOPS_MODEL_CATALOG (or the Airflow Variable mlops_model_catalog) to the catalogue file."
        )
    if not catalogue.readable:
        error = catalogue.error()
        assert error is not None  # an unreadable catalogue has errors
        raise error
    moment = _utc(now) if now is not None else datetime.now(timezone.utc)

    def status(entry: ModelEntry) -> dict[str, Any]:
        state = airflow_state.get(entry.name, {}) if airflow_state is not None else None
        return model_status(client, entry, now=moment, stale_after_periods=periods, no_labels_windows=windows,
                            ui_url=ui_url, airflow_state=state)  # fmt: skip

    entries = list(catalogue.models.values())
    with ThreadPoolExecutor(max_workers=max(1, min(_READERS, len(entries)))) as readers:
        models = list(readers.map(status, entries))
    counts = {"models": len(models), "with_champion": sum(m["champion_version"] is not None for m in models)}
    counts.update({flag: sum(flag in m["flags"] for m in models) for flag in FLAGS})
    counts["catalogue_errors"] = len(catalogue.errors)
    return {
        "generated_at": moment.isoformat(timespec="seconds"),
        "catalogue": catalogue.path,
        "stale_after_periods": periods,
        "no_labels_windows": windows,
        "airflow_state": airflow_state is not None,
        "models": models,
        "counts": counts,
        "catalogue_errors": [str(error) for error in catalogue.errors],
    }


def model_status(
    client: Any,
    entry: ModelEntry,
    *,
    now: datetime,
    stale_after_periods: float = DEFAULT_STALE_AFTER_PERIODS,
    no_labels_windows: int = DEFAULT_NO_LABELS_WINDOWS,
    ui_url: str | None = None,
    airflow_state: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One model's row of the report (see the module's docstring)."""
    state = airflow_state or {}
    approvals = list(state.get("pending_approvals") or [])
    status: dict[str, Any] = {
        "name": entry.name,
        "description": entry.description,
        "owners": list(entry.owners),
        "tags": list(entry.tags),
        "schedule": entry.schedule,
        "champion_version": None,
        "champion_age_hours": None,
        "newest_version": None,
        "last_training": None,
        "last_gate_decision": None,
        "drift": None,
        "live": None,
        "runs": dict(state.get("runs") or {}),
        "last_successful_training_run": state.get("last_success"),
        "pending_approvals": approvals if airflow_state is not None else None,
        "flags": [],
        "links": {"mlflow_model": None, "dags": dict(entry.dag_ids), "drift_report": None, "live_report": None},
    }
    flags = [APPROVAL_PENDING] if approvals else []
    from mlflow.exceptions import MlflowException

    try:
        history = read_history(client, entry.name)
    except MlflowException as error:
        if error.error_code not in _MISSING_CODES:
            raise
        status["flags"] = [NOT_TRAINED, *flags]
        return status
    if ui_url:
        status["links"]["mlflow_model"] = f"{ui_url.rstrip('/')}/#/models/{quote(entry.name, safe='')}"
    newest = _newest_version(client, entry.name)
    if newest is None:
        status["flags"] = [NOT_TRAINED, *flags]
        return status
    registered = _from_millis(newest.creation_timestamp)
    status["newest_version"] = str(newest.version)
    status["last_training"] = registered.isoformat(timespec="seconds")
    status["last_gate_decision"] = (newest.tags or {}).get(tags.GATE_DECISION)

    monitoring_run = find_monitoring_run(client, entry.name)
    verdicts = read_verdicts(monitoring_run)
    drift = verdicts.get(DRIFT)
    live = verdicts.get(LIVE)
    status["drift"] = drift
    status["links"]["drift_report"] = (drift or {}).get("report_uri")
    status["links"]["live_report"] = (live or {}).get("report_uri")

    champion = alias_version(client, entry.name, CHAMPION_ALIAS)
    if champion is None:
        flags.insert(0, NO_CHAMPION)
    else:
        status["champion_version"] = champion
        since = _champion_since(history, champion)
        if since is None:
            version = newest if str(newest.version) == champion else client.get_model_version(entry.name, champion)
            since = _from_millis(version.creation_timestamp)
        status["champion_age_hours"] = round((now - since).total_seconds() / 3600, 2)
    point = live_point(client, entry, champion, monitoring_run) if champion and monitoring_run else None
    if point or live:
        status["live"] = {**(point or {}), "verdict": live}

    period = schedule_period(entry.schedule)
    trained = _parse_time(state.get("last_success")) or registered
    if period is not None and now - trained > period * stale_after_periods:
        flags.append(STALE)
    checked = _parse_time((drift or {}).get("checked_at"))
    if drift and drift.get("detected") and checked is not None and checked > registered:
        flags.append(DRIFT_UNANSWERED)
    if live and int(live.get("windows_without_labels") or 0) >= no_labels_windows:
        flags.append(NO_LABELS)
    status["flags"] = sorted(set(flags), key=FLAGS.index)
    return status


def live_point(client: Any, entry: ModelEntry, version: str, run: Any) -> dict[str, Any] | None:
    """The newest point of ``live.v<version>.<metric>`` in the monitoring run ``run``, or None when there is none.

    The metric is the entry's ``primary_metric`` when the monitor recorded it, else the monitor's default for the
    task type (accuracy, RMSE for regressors).
    """
    recorded = run.data.metrics
    prefix = f"live.v{version}."
    candidates = [entry.primary_metric, *DEFAULT_LIVE_METRIC.values()]
    metric = next((m for m in candidates if m and f"{prefix}{m}" in recorded), None)
    if metric is None:
        return None
    points = client.get_metric_history(run.info.run_id, f"{prefix}{metric}")
    if not points:
        return None
    newest = max(points, key=lambda point: (point.step, point.timestamp))
    holdout = recorded.get(f"holdout.v{version}.{metric}")
    return {
        "metric": metric,
        "value": round(float(newest.value), 6),
        "holdout": round(float(holdout), 6) if holdout is not None else None,
        "at": _from_millis(newest.timestamp).isoformat(timespec="seconds"),
    }


def _newest_version(client: Any, model_name: str) -> Any | None:
    versions = client.search_model_versions(f"name = '{model_name}'", max_results=1, order_by=["version_number DESC"])
    return versions[0] if versions else None


def _champion_since(history: list[dict[str, Any]], champion: str) -> datetime | None:
    """When ``champion`` last became champion, by the newest history entry that moved the alias to it."""
    for entry in reversed(history):
        if entry.get("alias") == CHAMPION_ALIAS and str(entry.get("to_version")) == champion and entry.get("time"):
            return _parse_time(entry["time"])
    return None


def _from_millis(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, timezone.utc)


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return _utc(datetime.fromisoformat(str(value)))
    except ValueError:
        return None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
