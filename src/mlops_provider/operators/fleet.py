"""FleetReportOperator: one report over every model of the catalogue, from what the MLflow registry says now."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider import arguments
from mlops_provider.core import alerts
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.reports import browser_url, report_uri, write_report
from mlops_provider.links.fleet import FleetReportLink
from mlops_provider.operators.alerting import AlertingMixin, airflow_task_url, send_alert
from mlops_provider.operators.context import report_location
from mlops_provider.operators.mixins import DATASET_FIELDS, MLFLOW_FIELDS, DatasetHookMixin, MlflowHookMixin

if TYPE_CHECKING:
    from airflow.sdk import Context

# = fleet.report's defaults, repeated to keep the operator light to import at parse time
DEFAULT_STALE_AFTER_PERIODS = 2.0
DEFAULT_NO_LABELS_WINDOWS = 3


class FleetReportOperator(AlertingMixin, MlflowHookMixin, DatasetHookMixin):
    """Report on every model of the model catalogue: champion, training, gate, drift and live verdicts, flags.

    Per model (see ``mlops_provider.fleet.report``): the ``champion`` version and its age, the newest version, when
    it was registered (``last_training``) and its gate decision, the drift check's and the live-performance
    monitor's newest verdicts (from the monitoring run ``<model>-monitoring``) with the champion's newest live
    point, and the flags ``not_trained`` (reported, not an error), ``no_champion``, ``stale`` (no version within
    ``stale_after_periods`` periods of the model's schedule preset), ``drift_unanswered`` (drift found, no version
    trained since) and ``no_labels`` (``no_labels_windows`` live windows in a row without labels). The HTML page
    (a row per model) sits behind the "Fleet report" link. The fleet page in the Airflow UI (``plugins.fleet``)
    shows the same with what only Airflow knows: the last runs, the newest successful training run (which then
    decides ``stale``) and the approvals waiting (``approval_pending``); here ``pending_approvals`` is None.

    :param catalogue_path: the catalogue file (templated); default: ``MLOPS_MODEL_CATALOG``, else the Airflow
        Variable ``mlops_model_catalog``, as ``dags/mlops_fleet.py`` reads it.
    :param stale_after_periods: how many schedule periods without a new version make a model ``stale`` (default 2).
    :param no_labels_windows: how many live windows in a row without labels flag ``no_labels`` (default 3).
    :param reports_uri: where reports go (default ``$MLOPS_HOME/reports`` or ``$MLOPS_REPORTS_URI``).
    :param notifiers: Airflow notifiers told of every model flagged ``stale`` (the alert ``model_stale``, one per
        model, with links to the fleet report, the MLflow model and the model's lifecycle DAG); a model whose
        catalogue entry has ``alerts`` (with ``model_stale`` in its ``on``) is also told to its own addresses and
        webhook. See ``operators.alerting``. A model stays stale until it retrains, so each report run alerts again.
    :param alert_on: ``["model_stale"]`` (default) or ``[]`` (the entries' own ``alerts`` still notify).

    Returns ``{generated_at, catalogue, stale_after_periods, no_labels_windows, models: [...], counts: {...},
    catalogue_errors, report_uri}``: well under a kilobyte per model.
    """

    template_fields: Sequence[str] = (
        "catalogue_path",
        "stale_after_periods",
        "no_labels_windows",
        "reports_uri",
        *MLFLOW_FIELDS,
        *DATASET_FIELDS,
    )
    operator_extra_links = (FleetReportLink(),)
    ui_color = "#e3e8d0"
    alert_events = (alerts.MODEL_STALE,)

    def __init__(
        self,
        *,
        catalogue_path: str | None = None,
        stale_after_periods: float = DEFAULT_STALE_AFTER_PERIODS,
        no_labels_windows: int = DEFAULT_NO_LABELS_WINDOWS,
        reports_uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.catalogue_path = catalogue_path
        self.stale_after_periods = stale_after_periods
        self.no_labels_windows = no_labels_windows
        self.reports_uri = reports_uri
        if arguments.is_literal(stale_after_periods):
            self._stale_after_periods()
        if arguments.is_literal(no_labels_windows):
            self._no_labels_windows()

    def _stale_after_periods(self) -> float:
        value = arguments.optional_float(self.stale_after_periods, "stale_after_periods")
        if value is None or value <= 0:
            raise ConfigurationError(
                f"stale_after_periods={self.stale_after_periods!r} must be a number of schedule periods above 0, "
                "e.g. 2."
            )
        return value

    def _no_labels_windows(self) -> int:
        value = arguments.optional_int(self.no_labels_windows, "no_labels_windows")
        if value is None or value < 1:
            raise ConfigurationError(
                f"no_labels_windows={self.no_labels_windows!r} must be a whole number of windows, at least 1, e.g. 3."
            )
        return value

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.configuration import conf

        from mlops_provider.fleet.catalogue import load_catalogue
        from mlops_provider.fleet.page import render_html
        from mlops_provider.fleet.report import fleet_report

        periods = self._stale_after_periods()
        windows = self._no_labels_windows()
        catalogue = load_catalogue(arguments.optional_text(self.catalogue_path, "catalogue_path"))
        if catalogue.errors and catalogue.readable:
            self.log.warning("The catalogue has bad entries, left out of the report:\n%s", catalogue.error())
        hook = self.mlflow_hook
        report = fleet_report(hook.get_conn(), catalogue, stale_after_periods=periods, no_labels_windows=windows,
                              ui_url=hook.settings.base_ui_url)  # fmt: skip
        uri = report_uri("fleet", "fleet_report.html", **report_location(context), root=self.reports_uri)
        write_report(
            uri,
            render_html(report, airflow_url=(conf.get("api", "base_url", fallback="") or "").rstrip("/") or None),
            s3_client=self.dataset_hook.s3_client if uri.startswith("s3://") else None,
        )
        FleetReportLink.persist(context, browser_url(uri))
        self.log.info("Fleet report of %s: %s; %s", catalogue.path, report["counts"], uri)
        for model in report["models"]:
            if model["flags"]:
                self.log.info("  %s: %s", model["name"], ", ".join(model["flags"]))
        self._alert_stale(context, catalogue, report, uri)
        return {**report, "report_uri": uri}

    def _alert_stale(self, context: Context, catalogue: Any, report: dict[str, Any], uri: str) -> None:
        """One alert ``model_stale`` per stale model, to this task's notifiers and the entry's own ``alerts``."""
        from airflow.configuration import conf

        from mlops_provider.core.reports import browser_url
        from mlops_provider.fleet.dags import alert_notifiers
        from mlops_provider.fleet.report import STALE
        from mlops_provider.operators.alerting import ALERTS_XCOM_KEY

        base_url = (conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")
        sent = []
        for model in report["models"]:
            if STALE not in model["flags"]:
                continue
            entry = catalogue.models.get(model["name"])
            own = entry.alerts if entry is not None else None
            notifiers = [*(self.notifiers if alerts.MODEL_STALE in self.alert_on else [])]
            if own is not None and alerts.MODEL_STALE in own.on:
                notifiers += alert_notifiers(own)
            if not notifiers:
                continue
            lifecycle = (model.get("links", {}).get("dags") or {}).get("lifecycle")
            alert = alerts.stale_alert(model, stale_after_periods=float(report["stale_after_periods"])).with_links(
                alerts.AlertLink("Fleet report", browser_url(uri)),
                alerts.AlertLink("MLflow model", model.get("links", {}).get("mlflow_model") or ""),
                alerts.AlertLink("Lifecycle DAG", f"{base_url}/dags/{lifecycle}" if lifecycle else ""),
                alerts.AlertLink("Airflow task", airflow_task_url(context) or ""),
            )
            outcome = send_alert(self, context, alert, notifiers=notifiers, alert_on=self.alert_events,
                                 ledger=self.alert_ledger())  # fmt: skip
            if outcome is not None:
                sent.append(outcome)
        if sent:
            context["ti"].xcom_push(key=ALERTS_XCOM_KEY, value=sent)
