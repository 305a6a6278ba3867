"""One report over the fleet: per model of the catalogue, what the MLflow registry says about it now.

For every model of the catalogue: its champion version and how long it has been champion (since the newest history
entry that moved ``champion`` to it, else since the version was registered), the newest version and when it was
registered (the last training), that version's gate decision, the champion's newest live-performance point (when
the model has a monitoring run, ``<model>-monitoring`` / ``live-performance``), and flags:

* ``stale``: no version registered within ``stale_after_periods`` schedule periods (``@hourly``: 1 hour,
  ``@daily``: 1 day, ``@weekly``: 7 days, ``@monthly``: 31 days, ``@quarterly``: 92 days, ``@yearly``: 366 days;
  a cron expression, ``@once`` or no schedule: not judged);
* ``no_champion``: versions exist but none is ``champion``;
* ``not_trained``: the model is not in the registry (or has no version); reported, never an error.

``fleet_report`` returns a small JSON-ready dict (a few hundred bytes per model); ``render_html`` turns it into one
static page. Plain Python over an ``MlflowClient``: no Airflow, and mlflow is imported only inside functions.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from mlops_provider.core import tags
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.performance import DEFAULT_LIVE_METRIC, MONITORING_EXPERIMENT_SUFFIX
from mlops_provider.core.registry.history import alias_version, read_history
from mlops_provider.fleet.entries import DAG_ID_PREFIX, Catalogue, ModelEntry

STALE = "stale"
NO_CHAMPION = "no_champion"
NOT_TRAINED = "not_trained"
FLAGS = (NOT_TRAINED, NO_CHAMPION, STALE)
DEFAULT_STALE_AFTER_PERIODS = 2.0
CHAMPION_ALIAS = "champion"
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


def schedule_period(schedule: str | None) -> timedelta | None:
    """How often the model is meant to retrain, or None when its schedule says nothing about that."""
    return SCHEDULE_PERIODS.get((schedule or "").strip().lower())


def fleet_report(
    client: Any,
    catalogue: Catalogue,
    *,
    now: datetime | None = None,
    stale_after_periods: float = DEFAULT_STALE_AFTER_PERIODS,
    ui_url: str | None = None,
) -> dict[str, Any]:
    """The status of every model of ``catalogue`` in the registry ``client`` talks to, as of ``now``.

    A catalogue that cannot be read at all raises its ``CatalogueError``; bad entries are left out and counted
    (``counts.catalogue_errors``), as the fleet's DAGs leave them out.
    """
    if isinstance(stale_after_periods, bool) or not isinstance(stale_after_periods, (int, float)):
        raise ConfigurationError(f"stale_after_periods={stale_after_periods!r} must be a number of periods, e.g. 2.")
    if stale_after_periods <= 0:
        raise ConfigurationError(f"stale_after_periods={stale_after_periods!r} must be above 0, e.g. 2.")
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
    models = [
        model_status(client, entry, now=moment, stale_after_periods=float(stale_after_periods), ui_url=ui_url)
        for entry in catalogue.models.values()
    ]
    counts = {"models": len(models), "with_champion": sum(m["champion_version"] is not None for m in models)}
    counts.update({flag: sum(flag in m["flags"] for m in models) for flag in FLAGS})
    counts["catalogue_errors"] = len(catalogue.errors)
    return {
        "generated_at": moment.isoformat(timespec="seconds"),
        "catalogue": catalogue.path,
        "stale_after_periods": float(stale_after_periods),
        "models": models,
        "counts": counts,
    }


def model_status(
    client: Any,
    entry: ModelEntry,
    *,
    now: datetime,
    stale_after_periods: float = DEFAULT_STALE_AFTER_PERIODS,
    ui_url: str | None = None,
) -> dict[str, Any]:
    """One model's row of the report (see the module's docstring)."""
    status: dict[str, Any] = {
        "name": entry.name,
        "owners": list(entry.owners),
        "tags": list(entry.tags),
        "schedule": entry.schedule,
        "champion_version": None,
        "champion_age_hours": None,
        "newest_version": None,
        "last_training": None,
        "last_gate_decision": None,
        "live": None,
        "flags": [],
        "links": {"mlflow_model": None, "dag": f"{DAG_ID_PREFIX}{entry.name}"},
    }
    from mlflow.exceptions import MlflowException

    try:
        history = read_history(client, entry.name)
    except MlflowException as error:
        if error.error_code not in _MISSING_CODES:
            raise
        status["flags"] = [NOT_TRAINED]
        return status
    if ui_url:
        status["links"]["mlflow_model"] = f"{ui_url.rstrip('/')}/#/models/{quote(entry.name, safe='')}"
    newest = _newest_version(client, entry.name)
    if newest is None:
        status["flags"] = [NOT_TRAINED]
        return status
    registered = _from_millis(newest.creation_timestamp)
    status["newest_version"] = str(newest.version)
    status["last_training"] = registered.isoformat(timespec="seconds")
    status["last_gate_decision"] = (newest.tags or {}).get(tags.GATE_DECISION)

    champion = alias_version(client, entry.name, CHAMPION_ALIAS)
    flags = []
    if champion is None:
        flags.append(NO_CHAMPION)
    else:
        status["champion_version"] = champion
        since = _champion_since(history, champion)
        if since is None:
            version = newest if str(newest.version) == champion else client.get_model_version(entry.name, champion)
            since = _from_millis(version.creation_timestamp)
        status["champion_age_hours"] = round((now - since).total_seconds() / 3600, 2)
        status["live"] = live_point(client, entry, champion)
    period = schedule_period(entry.schedule)
    if period is not None and now - registered > period * stale_after_periods:
        flags.append(STALE)
    status["flags"] = flags
    return status


def live_point(client: Any, entry: ModelEntry, version: str) -> dict[str, Any] | None:
    """The newest point of ``live.v<version>.<metric>`` in the model's monitoring run, or None when there is none.

    The metric is the entry's ``primary_metric`` when the monitor recorded it, else the monitor's default for the
    task type (accuracy, RMSE for regressors).
    """
    experiment = client.get_experiment_by_name(f"{entry.name}{MONITORING_EXPERIMENT_SUFFIX}")
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{tags.MONITORING_OF}` = '{entry.name}'", max_results=1
    )
    if not runs:
        return None
    run = runs[0]
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
            try:
                return _utc(datetime.fromisoformat(str(entry["time"])))
            except ValueError:
                return None
    return None


def _from_millis(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, timezone.utc)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


# ---------------------------------------------------------------------------------------------------- the page

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr.flagged { background: #fff4e5; }
.flag { display: inline-block; padding: 0 0.4em; margin: 0 0.2em 0.2em 0; border-radius: 3px; color: #fff; }
.flag.stale { background: #c77700; } .flag.no_champion { background: #b00020; } .flag.not_trained { background: #666; }
.ok { color: #2e7d32; }
"""

_COLUMNS = (
    "Model",
    "Owners",
    "Champion",
    "Champion for",
    "Newest version",
    "Last training",
    "Gate decision",
    "Live performance",
    "Flags",
    "Links",
)


def render_html(report: dict[str, Any]) -> str:
    """A static page: one table with a row per model (``<tr id="model-<name>">``), flags highlighted."""
    counts = report.get("counts", {})
    summary = ", ".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in counts.items())
    rows = "\n".join(_row(model) for model in report.get("models", []))
    header = "".join(f"<th>{name}</th>" for name in _COLUMNS)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Fleet report</title><style>{_STYLE}</style></head>
<body>
<h1>Fleet report</h1>
<p>Generated at {_text(report.get("generated_at"))} from the catalogue {_text(report.get("catalogue"))};
stale after {_text(report.get("stale_after_periods"))} schedule periods without a new version.</p>
<p>{summary}</p>
<table>
<thead><tr>{header}</tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body></html>
"""


def _row(model: dict[str, Any]) -> str:
    flags = model.get("flags") or []
    links = model.get("links") or {}
    live = model.get("live")
    if live:
        baseline = f" (holdout {live['holdout']:.4g})" if live.get("holdout") is not None else ""
        live_cell = f"{_text(live['metric'])} {live['value']:.4g}{baseline} at {_text(live['at'])}"
    else:
        live_cell = "-"
    age = model.get("champion_age_hours")
    mlflow_link = links.get("mlflow_model")
    link_cells = [f"DAG {_text(links.get('dag'))}"]
    if mlflow_link:
        link_cells.insert(0, f'<a href="{html.escape(mlflow_link, quote=True)}">MLflow</a>')
    cells = [
        f"<strong>{_text(model['name'])}</strong>" + (f"<br><small>{_join(model.get('tags'))}</small>"),
        _join(model.get("owners")),
        _text(model.get("champion_version")),
        f"{age:.1f} h" if age is not None else "-",
        _text(model.get("newest_version")),
        _text(model.get("last_training")),
        _text(model.get("last_gate_decision")),
        live_cell,
        "".join(f'<span class="flag {html.escape(f)}">{html.escape(f)}</span>' for f in flags)
        or '<span class="ok">ok</span>',
        "<br>".join(link_cells),
    ]
    css = ' class="flagged"' if flags else ""
    body = "".join(f"<td>{cell}</td>" for cell in cells)
    return f'<tr id="model-{html.escape(str(model["name"]), quote=True)}"{css}>{body}</tr>'


def _text(value: Any) -> str:
    return "-" if value is None or value == "" else html.escape(str(value))


def _join(values: Iterable[Any] | None) -> str:
    return html.escape(", ".join(str(v) for v in values or ())) or "-"
