"""DetectDriftOperator: compare this interval's data with the champion's reference and raise the alarm."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_provider import arguments
from mlops_provider.assets import drift_alias, drift_asset
from mlops_provider.core import drift as drift_core
from mlops_provider.core import tags
from mlops_provider.core.errors import ConfigurationError, DriftInputError, EmptyDatasetError
from mlops_provider.core.reports import browser_url, path_segment, report_uri, write_report
from mlops_provider.links.drift import DriftReportLink
from mlops_provider.operators.context import report_location
from mlops_provider.operators.mixins import (
    DATASET_FIELDS,
    MLFLOW_FIELDS,
    DatasetHookMixin,
    MlflowHookMixin,
    ResultOperator,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

ON_DRIFT = ("emit", "fail", "continue")
ON_EMPTY = ("skip", "fail")
REFERENCE_SAMPLE_TAG = tags.REFERENCE_SAMPLE

DRIFT_TEMPLATE_FIELDS: Sequence[str] = (
    "current_uri",
    "reference_uri",
    "model_name",
    "columns",
    "exclude_columns",
    "per_column_method",
    "per_column_threshold",
    "reports_uri",
    *MLFLOW_FIELDS,
    *DATASET_FIELDS,
)


class DriftCheck(MlflowHookMixin, DatasetHookMixin):
    """The arguments and the run of one drift check, shared by DetectDriftOperator and DriftSensor.

    :param current_uri: the data to judge (templated), e.g. this interval's partition.
    :param reference_uri: the reference data; default: the training reference sample stored with the
        ``champion_alias`` version of ``model_name``.
    :param model_name: registered model whose champion gives the reference and names the drift Asset.
    :param columns: columns to test (default: every column both sides share, minus ``exclude_columns``
        and timestamp columns).
    :param numerical_columns / categorical_columns: the column types (default: numeric dtypes are numerical,
        everything else categorical; integer columns with few values stay numerical unless listed here).
    :param num_method / cat_method / num_threshold / cat_threshold: the pinned Evidently stattests and their
        thresholds (defaults: ``ks`` and ``chi2_homogeneity``, p < 0.01); ``per_column_method`` and
        ``per_column_threshold`` override them per column.
    :param drift_share: the dataset drifts when at least this share of the tested columns drifted.
    :param max_rows: rows per side the statistics run on (a seeded sample above it).
    :param report_rows: rows per side of the sample the HTML report is built from.
    :param on_drift: ``emit`` (the Asset event ``mlops://drift/<model_name>``), ``fail`` or ``continue``.
    :param reports_uri: where reports go (default ``$MLOPS_HOME/reports`` or ``$MLOPS_REPORTS_URI``).
    :param log_to_mlflow: also store the report with the champion's training run in MLflow.
    """

    template_fields: Sequence[str] = DRIFT_TEMPLATE_FIELDS
    template_fields_renderers = {"per_column_method": "json", "per_column_threshold": "json"}
    operator_extra_links = (DriftReportLink(),)
    ui_color = "#f4d6a4"

    def __init__(
        self,
        *,
        current_uri: str,
        reference_uri: str | None = None,
        model_name: str | None = None,
        champion_alias: str = "champion",
        columns: list[str] | None = None,
        exclude_columns: list[str] | None = None,
        numerical_columns: list[str] | None = None,
        categorical_columns: list[str] | None = None,
        num_method: str = drift_core.DEFAULT_METHODS[drift_core.NUMERICAL],
        cat_method: str = drift_core.DEFAULT_METHODS[drift_core.CATEGORICAL],
        num_threshold: float = drift_core.DEFAULT_THRESHOLD,
        cat_threshold: float = drift_core.DEFAULT_THRESHOLD,
        per_column_method: dict[str, str] | None = None,
        per_column_threshold: dict[str, float] | None = None,
        drift_share: float = 0.5,
        max_rows: int = drift_core.DEFAULT_MAX_ROWS,
        report_rows: int = drift_core.DEFAULT_REPORT_ROWS,
        on_drift: str = "emit",
        reports_uri: str | None = None,
        log_to_mlflow: bool = True,
        **kwargs: Any,
    ) -> None:
        if on_drift not in ON_DRIFT:
            raise ConfigurationError(f"on_drift={on_drift!r} is not one of {ON_DRIFT}.")
        if not reference_uri and not model_name:
            raise ConfigurationError(
                "Give reference_uri, or model_name so the reference sample stored with its champion is used."
            )
        if on_drift == "emit" and not model_name:
            raise ConfigurationError(
                "on_drift='emit' raises the Asset mlops://drift/<model_name>: give model_name (or use 'continue')."
            )
        super().__init__(**with_drift_outlet(on_drift, kwargs))
        self.current_uri = current_uri
        self.reference_uri = reference_uri
        self.model_name = model_name
        self.champion_alias = champion_alias
        self.columns = columns
        self.exclude_columns = exclude_columns or []
        self.numerical_columns = numerical_columns or []
        self.categorical_columns = categorical_columns or []
        self.num_method = num_method
        self.cat_method = cat_method
        self.num_threshold = num_threshold
        self.cat_threshold = cat_threshold
        self.per_column_method = per_column_method or {}
        self.per_column_threshold = per_column_threshold or {}
        self.drift_share = drift_share
        self.max_rows = max_rows
        self.report_rows = report_rows
        self.on_drift = on_drift
        self.reports_uri = reports_uri
        self.log_to_mlflow = log_to_mlflow
        if all(arguments.is_literal(getattr(self, name)) for name in self.template_fields):
            self.drift_settings()  # literal settings are checked when the DAG is parsed

    def drift_settings(self) -> drift_core.DriftSettings:
        per_column_threshold = arguments.optional_dict(self.per_column_threshold, "per_column_threshold") or {}
        return drift_core.DriftSettings(
            columns=arguments.optional_list(self.columns, "columns") or None,
            exclude_columns=arguments.optional_list(self.exclude_columns, "exclude_columns") or [],
            numerical_columns=arguments.optional_list(self.numerical_columns, "numerical_columns") or [],
            categorical_columns=arguments.optional_list(self.categorical_columns, "categorical_columns") or [],
            num_method=self.num_method,
            cat_method=self.cat_method,
            num_threshold=float(self.num_threshold),
            cat_threshold=float(self.cat_threshold),
            per_column_method=arguments.optional_dict(self.per_column_method, "per_column_method") or {},
            per_column_threshold={
                column: _threshold(value, f"per_column_threshold[{column!r}]")
                for column, value in per_column_threshold.items()
            },
            drift_share=float(self.drift_share),
            max_rows=int(self.max_rows),
            report_rows=int(self.report_rows),
        )

    def _resolve_reference(self) -> tuple[Any, dict[str, Any], Any]:
        """The reference frame, a description of where it came from, and the champion version (if used)."""
        champion = None
        reference_uri = arguments.optional_text(self.reference_uri, "reference_uri")
        if self.model_name and reference_uri:
            self.mlflow_hook.get_registered_model(self.model_name)  # a misspelt name would raise events nobody hears
        if self.model_name and (not reference_uri or self.log_to_mlflow):
            champion = self.mlflow_hook.get_version_by_alias(self.model_name, self.champion_alias)
        if reference_uri:
            return self.dataset_hook.read(reference_uri), {"uri": reference_uri}, champion
        if champion is None:
            registered = self._is_registered()
            raise DriftInputError(
                f"No reference: model {self.model_name!r} has no {self.champion_alias!r} alias and no "
                "reference_uri was given"
                + ("" if registered else f" ({self.model_name!r} is not a registered model at all: check model_name)")
                + ". Promote a model first, or pass reference_uri."
            )
        sample_uri = champion.tags.get(REFERENCE_SAMPLE_TAG)
        if not sample_uri:
            raise DriftInputError(
                f"{self.model_name} version {champion.version} (@{self.champion_alias}) has no "
                f"{REFERENCE_SAMPLE_TAG} tag, so its training reference sample is unknown; retrain it with "
                "TrainModelOperator or pass reference_uri."
            )
        description = {
            "uri": sample_uri,
            "model_name": self.model_name,
            "alias": self.champion_alias,
            "version": str(champion.version),
        }
        reference = self.mlflow_hook.read_dataset(sample_uri, self.dataset_hook)
        return reference, description, champion

    def _is_registered(self) -> bool:
        try:
            self.mlflow_hook.get_registered_model(str(self.model_name))
        except ConfigurationError:
            return False
        return True

    def run_drift_check(self, context: Context, current_uri: str) -> dict[str, Any] | None:
        """Run the check on ``current_uri``; None when that window is empty (nothing to judge)."""
        storage = self.dataset_hook
        settings = self.drift_settings()  # bad settings fail before any data is read
        model_name = arguments.optional_text(self.model_name, "model_name")
        self.model_name = arguments.model_name(model_name) if model_name else None
        current = storage.read(current_uri, allow_empty=True)
        if current.empty:
            return None
        reference, reference_info, champion = self._resolve_reference()
        result = drift_core.detect_drift(reference, current, settings)
        self.log.info("Drift check of %s against %s:\n%s", current_uri, reference_info["uri"], result.summary())

        html = drift_core.render_html_report(reference, current, result, settings)
        uri = report_uri("drift", "drift_report.html", **report_location(context), root=self.reports_uri)
        write_report(uri, html, s3_client=storage.s3_client if uri.startswith("s3://") else None)
        DriftReportLink.persist(context, browser_url(uri))
        self.log.info("Drift report: %s", uri)
        if champion is not None and self.log_to_mlflow:
            self._log_report_to_mlflow(context, champion, html, result)
        return {
            "drift_detected": result.drift_detected,
            "drift_share": result.drift_share,
            "drifted_columns": result.drifted_columns,
            "columns": {
                name: {"method": c.method, "score": c.score, "threshold": c.threshold, "drifted": c.drifted}
                for name, c in result.columns.items()
            },
            "report_uri": uri,
            "reference": {**reference_info, "rows": result.reference_rows},
            "current": {"uri": current_uri, "rows": result.current_rows},
            "tested_rows": result.tested_rows,
            "model_name": self.model_name,
        }

    def _log_report_to_mlflow(self, context: Context, champion: Any, html: str, result: Any) -> None:
        """Store the report and verdict with the champion's training run, one folder per DAG run."""
        client = self.mlflow_hook.get_conn()
        folder = f"drift/{path_segment(context['ti'].run_id)}"
        with tempfile.TemporaryDirectory(prefix="mlops-drift-") as directory:
            (Path(directory) / "drift_report.html").write_text(html, encoding="utf-8")
            (Path(directory) / "drift_result.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
            client.log_artifacts(champion.run_id, directory, artifact_path=folder)
        self.log.info("Logged the drift report to MLflow run %s under %s", champion.run_id, folder)

    def react_to_drift(self, context: Context, result: dict[str, Any]) -> None:
        if not result["drift_detected"]:
            return
        if self.on_drift == "emit":
            if self.model_name is None:  # checked in __init__, but a template may render to None
                raise ConfigurationError(
                    "on_drift='emit' raises the Asset mlops://drift/<model_name>, but model_name rendered to "
                    "None: give model_name a value (or use 'continue')."
                )
            extra = {
                "model_name": self.model_name,
                "drifted_columns": result["drifted_columns"],
                "drift_share": result["drift_share"],
                "current_uri": result["current"]["uri"],
                "report_uri": result["report_uri"],
                "dag_id": context["ti"].dag_id,
                "run_id": context["ti"].run_id,
            }
            context["outlet_events"][drift_alias()].add(drift_asset(self.model_name), extra=extra)
            self.log.info("Raised the Asset event %s with %s", drift_asset(self.model_name).uri, extra)
        elif self.on_drift == "fail":
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(
                f"Drift detected in {result['drifted_columns']} (share {result['drift_share']:.2f}); "
                f"see {result['report_uri']}"
            )


def with_drift_outlet(on_drift: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    if on_drift == "emit":
        outlets = list(kwargs.get("outlets") or [])
        if not any(getattr(o, "name", None) == drift_alias().name for o in outlets):
            outlets.append(drift_alias())
        kwargs["outlets"] = outlets
    return kwargs


class DetectDriftOperator(DriftCheck):
    """Compare ``current_uri`` with a reference and decide whether the data drifted.

    The reference is ``reference_uri``, or by default the training reference sample stored with the
    ``champion_alias`` version of ``model_name``. Each column is tested once with a pinned method (see
    ``mlops_provider.core.drift`` for defaults and why); the dataset drifts when the share of drifted
    columns reaches ``drift_share``. On drift: ``on_drift="emit"`` (default) raises the Asset event
    ``mlops://drift/<model_name>``, ``"fail"`` fails the task, ``"continue"`` only returns the verdict (for
    branching on ``drift_detected``). An empty current window is skipped (``on_empty="skip"``, default) or
    fails (``"fail"``). Returns ``{drift_detected, drift_share, drifted_columns, columns, report_uri,
    reference, current, ...}``. All other arguments: see ``DriftCheck``.
    """

    def __init__(self, *, on_empty: str = "skip", **kwargs: Any) -> None:
        if on_empty not in ON_EMPTY:
            raise ConfigurationError(f"on_empty={on_empty!r} is not one of {ON_EMPTY}.")
        super().__init__(**kwargs)
        self.on_empty = on_empty

    def execute(self, context: Context) -> dict[str, Any]:
        result = self.run_drift_check(context, self.current_uri)
        if result is None:
            message = f"The current window {self.current_uri} has no rows: there is nothing to compare."
            if self.on_empty == "fail":
                raise EmptyDatasetError(message + " (on_empty='fail')")
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(message + " Skipping (on_empty='skip').")
        self.react_to_drift(context, result)
        return result


def drift_event_details(context: Context, model_name: str) -> dict[str, Any]:
    """The drift event a retraining run answers: its own triggering event, else the newest one recorded.

    A run the scheduler created from ``mlops://drift/<model>`` reads its ``triggering_asset_events``; a run
    started by hand (or by ``dag.test``) falls back to the newest event of that asset, which the calling
    task must declare in ``inlets``. Returns the event's ``extra`` (drifted columns, ``current_uri``, report)
    with ``event_id``, ``timestamp``, ``triggered_by_event``, ``day`` (the drifted partition's date when
    ``current_uri`` ends in ``<key>=YYYY-MM-DD``) and ``until`` (the day after it: the end of a half-open
    window that includes the drifted day, or None).
    """
    asset = drift_asset(model_name)
    triggering = context.get("triggering_asset_events") or {}
    events = list(triggering[asset]) if asset in triggering else []
    triggered = bool(events)
    if not events:
        try:
            events = list(context["inlet_events"][asset])
        except KeyError as error:
            raise ConfigurationError(
                f"This run was not triggered by {asset.uri} and the task does not declare it in inlets; add "
                f"inlets=[drift_asset({model_name!r})] to read the newest drift event."
            ) from error
    if not events:
        raise DriftInputError(
            f"No drift event of {asset.uri} is recorded yet: run the drift monitor first, or trigger this DAG "
            "from a drift event."
        )
    event = max(events, key=lambda e: e.timestamp)
    extra = dict(event.extra or {})
    current = str(extra.get("current_uri", "")).rstrip("/")
    tail = current.rsplit("/", 1)[-1]
    day = tail.split("=", 1)[1][:10] if "=" in tail else None
    return {
        **extra,
        "event_id": getattr(event, "id", None),
        "timestamp": event.timestamp.isoformat(),
        "triggered_by_event": triggered,
        "day": day,
        "until": (date.fromisoformat(day) + timedelta(days=1)).isoformat() if day else None,
    }


class DriftEventOperator(ResultOperator):
    """Which drift a retraining run answers: returns ``drift_event_details`` for ``model_name``.

    Declares ``mlops://drift/<model_name>`` as its inlet, so a run started by hand reads the newest event; a run
    the asset started reads its triggering event. Put it first in a DAG scheduled on ``drift_asset(model)``.
    """

    template_fields: Sequence[str] = ("model_name",)
    ui_color = "#f3e1c7"

    def __init__(self, *, model_name: str, **kwargs: Any) -> None:
        model_name = arguments.model_name(model_name)  # it names the inlet Asset, so it is known at parse time
        kwargs.setdefault("inlets", [drift_asset(model_name)])
        super().__init__(**kwargs)
        self.model_name = model_name

    def execute(self, context: Context) -> dict[str, Any]:
        details = drift_event_details(context, self.model_name)
        self.log.info("Answering drift event %s of %s: columns %s in %s (report %s).", details["event_id"],
                      self.model_name, details.get("drifted_columns"), details.get("current_uri"),
                      details.get("report_uri"))  # fmt: skip
        return details


def _threshold(value: Any, name: str) -> float:
    number = arguments.optional_float(value, name)
    if number is None:
        raise ConfigurationError(f"{name} is empty; give a number such as 0.01.")
    return number
