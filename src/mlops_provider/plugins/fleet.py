"""The fleet view in the Airflow UI: an Airflow 3 plugin serving the fleet report as a page and as JSON.

Registered as the entry point ``airflow.plugins: mlops_fleet``: with the provider installed, the API server
mounts the app at ``/mlops-fleet`` and the UI lists "Model fleet" under Browse (an external view it embeds).

* ``GET /mlops-fleet/``: the page (``fleet.page``): per catalogued model its champion and age, last training and
  gate decision, last drift and live-performance verdicts, last runs, approvals waiting, flags, and links to its
  DAGs, its MLflow model page and its newest reports;
* ``GET /mlops-fleet/report.json``: the same as JSON (``FleetReportOperator``'s shape, with Airflow's facts);
* ``GET /mlops-fleet/metrics``: the same as Prometheus metrics (``fleet.metrics``).

Each needs a signed-in user (the UI's token cookie, or a bearer token) and shows the models whose lifecycle DAG
the user may read; ``/metrics`` also takes the bearer token in ``MLOPS_FLEET_METRICS_TOKEN`` (when set), for a
scraper, and then shows every model. The catalogue is found as ``dags/mlops_fleet.py`` finds it, the registry
through the connection ``mlflow_default``, runs and approvals in Airflow's metadata database. Reports are kept
``CACHE_SECONDS`` (a fleet of fifty models is a few hundred registry calls); ``?refresh=1`` reads afresh.
"""

from __future__ import annotations

import hmac
import os
import threading
import time
from typing import TYPE_CHECKING, Annotated, Any

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

if TYPE_CHECKING:
    from mlops_provider.fleet.entries import Catalogue

URL_PREFIX = "/mlops-fleet"
CACHE_SECONDS = 15.0
METRICS_TOKEN_ENV = "MLOPS_FLEET_METRICS_TOKEN"
# A human is asked while the approval task waits in one of these states.
_WAITING_STATES = ("deferred", "awaiting_input", "running")

_cache_lock = threading.Lock()
_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def airflow_state(catalogue: Catalogue, session: Any) -> dict[str, dict[str, Any]]:
    """Per model: the last run of each of its DAGs, its newest successful training run, the approvals waiting."""
    from airflow.models.dagrun import DagRun
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import func, select

    from mlops_provider.fleet.report import TRAINING_DAG_KINDS

    owner: dict[str, str] = {}
    training: set[str] = set()
    for entry in catalogue.models.values():
        for kind, dag_id in entry.dag_ids.items():
            owner[dag_id] = entry.name
            if kind in TRAINING_DAG_KINDS:
                training.add(dag_id)
    state: dict[str, dict[str, Any]] = {
        name: {"runs": {}, "last_success": None, "pending_approvals": []} for name in catalogue.models
    }
    if not owner:
        return state
    newest = select(func.max(DagRun.id)).where(DagRun.dag_id.in_(owner)).group_by(DagRun.dag_id)
    for run in session.scalars(select(DagRun).where(DagRun.id.in_(newest)).order_by(DagRun.dag_id)):
        state[owner[run.dag_id]]["runs"][run.dag_id] = {
            "run_id": run.run_id,
            "state": str(run.state),
            "start": _iso(run.start_date),
            "end": _iso(run.end_date),
        }
    successes = (
        select(DagRun.dag_id, func.max(DagRun.end_date))
        .where(DagRun.dag_id.in_(training), DagRun.state == "success")
        .group_by(DagRun.dag_id)
    )
    for dag_id, ended in session.execute(successes):
        model = state[owner[dag_id]]
        if ended is not None and (model["last_success"] is None or _iso(ended) > model["last_success"]):
            model["last_success"] = _iso(ended)
    waiting = (
        select(
            HITLDetail.subject, HITLDetail.created_at, TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.task_id
        )
        .join(TaskInstance, HITLDetail.ti_id == TaskInstance.id)
        .where(
            TaskInstance.dag_id.in_(owner),
            HITLDetail.responded_at.is_(None),
            TaskInstance.state.in_(_WAITING_STATES),
        )
        .order_by(HITLDetail.created_at)
    )
    for subject, created, dag_id, run_id, task_id in session.execute(waiting):
        state[owner[dag_id]]["pending_approvals"].append(
            {"subject": subject, "since": _iso(created), "dag_id": dag_id, "run_id": run_id, "task_id": task_id}
        )
    return state


def build_report(refresh: bool = False) -> dict[str, Any]:
    """The whole fleet's report (every catalogued model), from the cache when it is recent enough."""
    from airflow.utils.session import create_session

    from mlops_provider.fleet import load_catalogue
    from mlops_provider.fleet.report import fleet_report
    from mlops_provider.hooks.mlflow import MlflowHook

    catalogue = load_catalogue()
    key = f"{catalogue.path}:{_mtime(catalogue.path)}"
    with _cache_lock:
        cached = _cache.get(key)
        if cached and not refresh and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
    with create_session() as session:
        facts = airflow_state(catalogue, session)
    hook = MlflowHook()
    report = fleet_report(hook.get_conn(), catalogue, ui_url=hook.settings.base_ui_url, airflow_state=facts)
    with _cache_lock:
        _cache.clear()
        _cache[key] = (time.monotonic(), report)
    return report


def visible_to(report: dict[str, Any], user: Any) -> dict[str, Any]:
    """The report cut to the models whose lifecycle DAG ``user`` may read."""
    from airflow.api_fastapi.app import get_auth_manager

    lifecycles = {model["links"]["dags"]["lifecycle"] for model in report["models"]}
    readable = get_auth_manager().filter_authorized_dag_ids(dag_ids=lifecycles, user=user, method="GET")
    models = [model for model in report["models"] if model["links"]["dags"]["lifecycle"] in readable]
    if len(models) == len(report["models"]):
        return report
    return {**report, "models": models, "hidden_models": len(report["models"]) - len(models)}


async def signed_in_user(request: Request) -> Any:
    """The user of the bearer token, else of the UI's token cookie (as the REST API decides); 401 without either.

    Airflow's security module is imported here, at request time: every Airflow process loads the plugins.
    """
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.core_api.security import resolve_user_from_token

    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    token = credentials if scheme.lower() == "bearer" else request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    return await resolve_user_from_token(token)


async def metrics_reader(request: Request) -> Any:
    """A scraper presenting the bearer token of ``MLOPS_FLEET_METRICS_TOKEN`` (None: it sees every model), else a
    signed-in user."""
    expected = os.environ.get(METRICS_TOKEN_ENV)
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if expected and scheme.lower() == "bearer" and hmac.compare_digest(credentials.encode(), expected.encode()):
        return None
    return await signed_in_user(request)


SignedInUser = Annotated[Any, Depends(signed_in_user)]
MetricsReader = Annotated[Any, Depends(metrics_reader)]
Refresh = Annotated[bool, Query(description="read afresh instead of from the cache")]


def _airflow_path() -> str:
    from urllib.parse import urlparse

    from airflow.configuration import conf

    return urlparse(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


def _error_response(error: Exception, as_json: bool) -> Any:
    from mlops_provider.core.errors import ConfigurationError, ServiceUnreachableError

    if not isinstance(error, (ConfigurationError, ServiceUnreachableError)):
        raise error
    status = 503 if isinstance(error, ServiceUnreachableError) else 500
    if as_json:
        return JSONResponse({"error": str(error)}, status_code=status)
    from html import escape

    return HTMLResponse(
        f"<!DOCTYPE html><html><body><h1>Model fleet</h1><pre id='error'>{escape(str(error))}</pre></body></html>",
        status_code=status,
    )


def create_app() -> FastAPI:
    app = FastAPI(title="MLOps model fleet", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    def page(user: SignedInUser, refresh: Refresh = False) -> Any:
        from mlops_provider.fleet.page import render_html

        try:
            report = visible_to(build_report(refresh), user)
        except Exception as error:
            return _error_response(error, as_json=False)
        return HTMLResponse(render_html(report, airflow_url=_airflow_path()))

    @app.get("/report.json")
    def report_json(user: SignedInUser, refresh: Refresh = False) -> Any:
        try:
            return JSONResponse(visible_to(build_report(refresh), user))
        except Exception as error:
            return _error_response(error, as_json=True)

    @app.get("/metrics")
    def metrics(reader: MetricsReader, refresh: Refresh = False) -> Any:
        from mlops_provider.fleet.metrics import CONTENT_TYPE, render_metrics

        try:
            report = build_report(refresh)
        except Exception as error:
            return _error_response(error, as_json=True)
        if reader is not None:
            report = visible_to(report, reader)
        return Response(render_metrics(report), media_type=CONTENT_TYPE)

    return app


def _iso(moment: Any) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None


def _mtime(path: str | None) -> float | None:
    import os

    try:
        return os.stat(path).st_mtime if path else None
    except OSError:
        return None


class MlopsFleetPlugin(AirflowPlugin):
    """The model fleet page in the Airflow UI (Browse > Model fleet) and its JSON."""

    name = "mlops_fleet"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "MLOps model fleet"}]
    external_views = [
        {
            "name": "Model fleet",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "mlops-fleet",
        }
    ]
