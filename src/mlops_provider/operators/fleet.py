"""FleetReportOperator: one report over every model of the catalogue, from what the MLflow registry says now."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider import arguments
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.reports import browser_url, report_uri, write_report
from mlops_provider.links.fleet import FleetReportLink
from mlops_provider.operators.context import report_location
from mlops_provider.operators.mixins import DATASET_FIELDS, MLFLOW_FIELDS, DatasetHookMixin, MlflowHookMixin

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_STALE_AFTER_PERIODS = 2.0  # = fleet.report.DEFAULT_STALE_AFTER_PERIODS


class FleetReportOperator(MlflowHookMixin, DatasetHookMixin):
    """Report on every model of the model catalogue: champion, last training, gate decision, live performance, flags.

    Per model (see ``mlops_provider.fleet.report``): the ``champion`` version and its age in hours (since the
    newest history entry that moved the alias to it, else since the version was registered), the newest version
    and when it was registered (``last_training``), that version's gate decision, the champion's newest
    live-performance point (from the monitoring run ``<model>-monitoring``), and the flags ``stale`` (no version
    within ``stale_after_periods`` periods of the model's schedule preset), ``no_champion`` and ``not_trained``
    (not in the registry: reported, not an error). The HTML page (one table, a row per model) sits behind the
    "Fleet report" link.

    :param catalogue_path: the catalogue file (templated); default: ``MLOPS_MODEL_CATALOG``, else the Airflow
        Variable ``mlops_model_catalog``, as ``dags/mlops_fleet.py`` reads it.
    :param stale_after_periods: how many schedule periods without a new version make a model ``stale`` (default 2).
    :param reports_uri: where reports go (default ``$MLOPS_HOME/reports`` or ``$MLOPS_REPORTS_URI``).

    Returns ``{generated_at, catalogue, stale_after_periods, models: [...], counts: {...}, report_uri}``: a few
    hundred bytes per model.
    """

    template_fields: Sequence[str] = (
        "catalogue_path",
        "stale_after_periods",
        "reports_uri",
        *MLFLOW_FIELDS,
        *DATASET_FIELDS,
    )
    operator_extra_links = (FleetReportLink(),)
    ui_color = "#e3e8d0"

    def __init__(
        self,
        *,
        catalogue_path: str | None = None,
        stale_after_periods: float = DEFAULT_STALE_AFTER_PERIODS,
        reports_uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.catalogue_path = catalogue_path
        self.stale_after_periods = stale_after_periods
        self.reports_uri = reports_uri
        if arguments.is_literal(stale_after_periods):
            self._stale_after_periods()

    def _stale_after_periods(self) -> float:
        value = arguments.optional_float(self.stale_after_periods, "stale_after_periods")
        if value is None or value <= 0:
            raise ConfigurationError(
                f"stale_after_periods={self.stale_after_periods!r} must be a number of schedule periods above 0, "
                "e.g. 2."
            )
        return value

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.fleet.catalogue import load_catalogue
        from mlops_provider.fleet.report import fleet_report, render_html

        periods = self._stale_after_periods()
        catalogue = load_catalogue(arguments.optional_text(self.catalogue_path, "catalogue_path"))
        if catalogue.errors and catalogue.readable:
            self.log.warning("The catalogue has bad entries, left out of the report:\n%s", catalogue.error())
        hook = self.mlflow_hook
        report = fleet_report(hook.get_conn(), catalogue, stale_after_periods=periods, ui_url=hook.settings.base_ui_url)
        uri = report_uri("fleet", "fleet_report.html", **report_location(context), root=self.reports_uri)
        write_report(
            uri, render_html(report), s3_client=self.dataset_hook.s3_client if uri.startswith("s3://") else None
        )
        FleetReportLink.persist(context, browser_url(uri))
        self.log.info("Fleet report of %s: %s; %s", catalogue.path, report["counts"], uri)
        for model in report["models"]:
            if model["flags"]:
                self.log.info("  %s: %s", model["name"], ", ".join(model["flags"]))
        return {**report, "report_uri": uri}
