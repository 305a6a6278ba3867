"""DetectDriftOperator: compare this interval's data with the champion's reference and raise the alarm."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_provider import arguments
from mlops_provider.assets import drift_alias, drift_asset
from mlops_provider.core import alerts, tags
from mlops_provider.core import drift as drift_core
from mlops_provider.core.errors import ConfigurationError, DriftInputError, EmptyDatasetError, MlopsError
from mlops_provider.core.reports import browser_url, path_segment, report_uri, write_report
from mlops_provider.links.drift import DriftReportLink
from mlops_provider.operators.alerting import AlertingMixin
from mlops_provider.operators.context import report_location
from mlops_provider.operators.events import AssetEventOperator
from mlops_provider.operators.mixins import (
    DATASET_FIELDS,
    MLFLOW_FIELDS,
    DatasetHookMixin,
    MlflowHookMixin,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

ON_DRIFT = ("emit", "fail", "continue")
ON_EMPTY = ("skip", "fail")
REFERENCE_SAMPLE_TAG = tags.REFERENCE_SAMPLE
DEFAULT_PREDICTION_MIN_ROWS = 100  # = core.prediction_drift.DEFAULT_MIN_ROWS (not imported at parse time)

DRIFT_TEMPLATE_FIELDS: Sequence[str] = (
    "current_uri",
    "reference_uri",
    "model_name",
    "columns",
    "exclude_columns",
    "per_column_method",
    "per_column_threshold",
    "reports_uri",
    "prediction_log_uri",
    "prediction_window_start",
    "prediction_window_end",
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
    :param prediction_log_uri: also test the model's predictions (templated; off by default): ``True`` (or ``""``)
        reads the prediction log at its default root ``$MLOPS_HOME/prediction_log``, a folder or ``s3://`` URI
        reads the log there, ``None`` / ``False`` leaves it off. The ``champion_alias`` version's served
        predictions logged in the window are compared with its predictions on its training holdout
        (``prediction`` and each ``probability_<class>``, with the methods and levels above); see
        ``mlops_provider.core.prediction_drift``. Needs ``model_name``. Reported beside the input verdict under
        ``prediction_drift`` (and in the report, the Asset event and the log); it never changes ``drift_detected``.
    :param prediction_window_start / prediction_window_end: the window of prediction times, ``[start, end)``
        (templated, with a time zone; default: the run's data interval).
    :param prediction_min_rows: fewer served predictions (or holdout rows) than this is "insufficient evidence":
        the prediction check is skipped and says so (default 100).
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
        prediction_log_uri: str | bool | None = None,
        prediction_window_start: Any = None,
        prediction_window_end: Any = None,
        prediction_min_rows: int = DEFAULT_PREDICTION_MIN_ROWS,
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
        min_rows = arguments.optional_int(prediction_min_rows, "prediction_min_rows", minimum=1)
        if min_rows is None:
            raise ConfigurationError("prediction_min_rows is empty; give a number of rows such as 100.")
        check_prediction_arguments(prediction_log_uri, model_name, prediction_window_start, prediction_window_end)
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
        self.prediction_log_uri = prediction_log_uri
        self.prediction_window_start = prediction_window_start
        self.prediction_window_end = prediction_window_end
        self.prediction_min_rows = min_rows
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

    def _resolve_reference(self, read: Callable[[str], Any] | None = None) -> tuple[Any, dict[str, Any], Any]:
        """The reference (a frame, or what ``read`` makes of its URI), where it came from, and the champion version
        (if used)."""
        champion = None
        reference_uri = arguments.optional_text(self.reference_uri, "reference_uri")
        if self.model_name and reference_uri:
            self.mlflow_hook.get_registered_model(self.model_name)  # a misspelt name would raise events nobody hears
        if self.model_name and (not reference_uri or self.log_to_mlflow):
            champion = self.mlflow_hook.get_version_by_alias(self.model_name, self.champion_alias)
        if reference_uri:
            return (read or self.dataset_hook.read)(reference_uri), {"uri": reference_uri}, champion
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
        reference = read(sample_uri) if read else self.mlflow_hook.read_dataset(sample_uri, self.dataset_hook)
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
        window = self._prediction_window(context)  # bad prediction drift arguments fail before any data is read
        from mlops_provider.operators.drift_split import check_sources

        checked = check_sources(self, current_uri, settings, window)  # a block of columns at a time
        if checked is None:
            return None
        result, html, reference_info = checked.result, checked.html, checked.reference_info
        champion, predictions = checked.champion, checked.predictions
        uri = report_uri("drift", "drift_report.html", **report_location(context), root=self.reports_uri)
        write_report(uri, html, s3_client=storage.s3_client if uri.startswith("s3://") else None)
        DriftReportLink.persist(context, browser_url(uri))
        self.log.info("Drift report: %s", uri)
        verdict = result.to_dict()
        if predictions is not None:
            verdict["prediction_drift"] = predictions.to_dict()
        if champion is not None and self.log_to_mlflow:
            self._log_report_to_mlflow(context, champion, html, verdict)
        if self.model_name and self.log_to_mlflow:
            self._record_verdict(context, result, uri)
        return {
            "drift_detected": result.drift_detected,
            "drift_share": result.drift_share,
            "drifted_columns": result.drifted_columns,
            "columns": result.column_verdicts(),
            "prediction_drift": predictions.to_dict() if predictions is not None else None,
            "report_uri": uri,
            "reference": {**reference_info, "rows": result.reference_rows},
            "current": {"uri": current_uri, "rows": result.current_rows},
            "tested_rows": result.tested_rows,
            "model_name": self.model_name,
        }

    def _prediction_window(self, context: Context) -> tuple[str | None, datetime, datetime] | None:
        """None when prediction drift is off; else the log root (None: the default one) and the window."""
        from mlops_provider.core.prediction_drift import prediction_window

        on, root = prediction_log_setting(self.prediction_log_uri)
        if not on:
            return None
        if not self.model_name:
            raise ConfigurationError(MODEL_NAME_FOR_PREDICTIONS)
        if root is not None:
            from mlops_provider.core.performance.log import log_root

            root = log_root(root)  # a file name or an unknown scheme fails here, before any data is read
        start, end = prediction_window(
            self.prediction_window_start,
            self.prediction_window_end,
            default_start=context.get("data_interval_start"),
            default_end=context.get("data_interval_end"),
        )
        return root, start, end

    def _check_prediction_drift(
        self, window: tuple[str | None, datetime, datetime], champion: Any, settings: drift_core.DriftSettings
    ) -> Any:
        """The champion's served predictions in the window against its predictions on its holdout."""
        from mlops_provider.core.prediction_drift import check_prediction_drift
        from mlops_provider.operators.registry import read_holdout

        root, start, end = window
        model_name = str(self.model_name)
        if champion is None:
            champion = self.mlflow_hook.get_version_by_alias(model_name, self.champion_alias)
        version = str(champion.version) if champion is not None else None
        return check_prediction_drift(
            model_name=model_name,
            version=version,
            alias=self.champion_alias,
            window_start=start,
            window_end=end,
            settings=settings,
            task_type=champion.tags.get(tags.TASK_TYPE) if champion is not None else None,
            load_model=lambda: self.mlflow_hook.load_sklearn_model(f"models:/{model_name}/{version}"),
            load_holdout=lambda: read_holdout(self.mlflow_hook, self.dataset_hook, champion, fix=NO_HOLDOUT_FIX),
            log_root=root,
            s3_client=self.dataset_hook.s3_client if (root or "").startswith("s3://") else None,
            min_rows=self.prediction_min_rows,
        )

    def _log_report_to_mlflow(self, context: Context, champion: Any, html: str, verdict: dict[str, Any]) -> None:
        """Store the report and verdict with the champion's training run, one folder per DAG run."""
        client = self.mlflow_hook.get_conn()
        folder = f"drift/{path_segment(context['ti'].run_id)}"
        with tempfile.TemporaryDirectory(prefix="mlops-drift-") as directory:
            (Path(directory) / "drift_report.html").write_text(html, encoding="utf-8")
            (Path(directory) / "drift_result.json").write_text(json.dumps(verdict, indent=2, default=str))
            client.log_artifacts(champion.run_id, directory, artifact_path=folder)
        self.log.info("Logged the drift report to MLflow run %s under %s", champion.run_id, folder)

    def _record_verdict(self, context: Context, result: drift_core.DriftResult, uri: str) -> None:
        """The check's verdict as the drift monitor's newest on the model's monitoring run (the fleet reads it)."""
        from datetime import timezone

        from mlops_provider.core import monitoring

        model_name = str(self.model_name)
        checked = datetime.now(timezone.utc)
        data_end = context.get("data_interval_end") or checked
        experiment_id = self.mlflow_hook.get_or_create_experiment(monitoring.monitoring_experiment_name(model_name))
        client = self.mlflow_hook.get_conn()
        run_id = monitoring.monitoring_run_id(client, experiment_id, model_name)
        client.log_metric(run_id, "drift.share", float(result.drift_share), step=int(data_end.timestamp()))
        verdict = {
            "detected": bool(result.drift_detected),
            "share": round(float(result.drift_share), 4),
            "drifted_columns": len(result.drifted_columns),
            "tested_columns": len(result.column_verdicts()),
            "data_interval_end": data_end.isoformat(),
            "checked_at": checked.isoformat(timespec="milliseconds"),  # versions are registered to the millisecond
            "report_uri": browser_url(uri),
            "dag_id": context["ti"].dag_id,
            "run_id": context["ti"].run_id,
        }
        monitoring.record_verdict(client, run_id, monitoring.DRIFT, verdict)

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
            if result.get("prediction_drift") is not None:
                extra["prediction_drift"] = prediction_drift_extra(result["prediction_drift"])
            context["outlet_events"][drift_alias()].add(drift_asset(self.model_name), extra=extra)
            self.log.info("Raised the Asset event %s with %s", drift_asset(self.model_name).uri, extra)
        elif self.on_drift == "fail":
            from airflow.sdk.exceptions import AirflowFailException

            predictions = result.get("prediction_drift") or {}
            also = (
                f"; the predictions drifted too ({predictions['drifted_columns']})"
                if predictions.get("drift_detected")
                else ""
            )
            raise AirflowFailException(
                f"Drift detected in {result['drifted_columns']} (share {result['drift_share']:.2f}){also}; "
                f"see {result['report_uri']}"
            )


MODEL_NAME_FOR_PREDICTIONS = (
    "prediction_log_uri turns prediction drift on, which compares the served predictions of model_name's "
    "champion version with its predictions on its holdout, but model_name is not given: give model_name, or "
    "leave prediction_log_uri unset (None) to test the input data only."
)
NO_HOLDOUT_FIX = (
    "its predictions on its holdout are the reference of prediction drift: retrain it with TrainModelOperator "
    "(which stores the holdout), or leave prediction_log_uri unset to test the input data only"
)


def prediction_log_setting(value: Any) -> tuple[bool, str | None]:
    """``prediction_log_uri`` -> (prediction drift on, log root or None for the default root).

    ``None``/``False`` (or the text ``false``, ``no``, ``off``, ``0``): off. ``True`` (or ``true``, ``yes``,
    ``on``, ``1``) or ``""``: the default root ``$MLOPS_HOME/prediction_log``. Any other text: that root (a local
    folder or ``s3://bucket/prefix``). The same words as BatchPredictOperator's ``prediction_log_uri``.
    """
    if value is None or value is False:
        return False, None
    if value is True:
        return True, None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in arguments.FALSE_TEXT:
            return False, None
        return True, (None if not text or text.lower() in arguments.TRUE_TEXT else text)
    raise ConfigurationError(
        f"prediction_log_uri={value!r} is a {type(value).__name__}; give True (the default log root "
        "$MLOPS_HOME/prediction_log), the log's root folder or s3:// URI, or None to leave prediction drift off."
    )


def check_prediction_arguments(log_uri: Any, model_name: Any, window_start: Any, window_end: Any) -> None:
    """What can be checked while the DAG is parsed: the switch, model_name with it, and literal window bounds."""
    if not arguments.is_literal(log_uri):
        return
    on, _ = prediction_log_setting(log_uri)
    if not on:
        return
    if arguments.is_literal(model_name) and arguments.is_unset(model_name):
        raise ConfigurationError(MODEL_NAME_FOR_PREDICTIONS)
    from mlops_provider.core.windows import to_utc

    for name, value in (("prediction_window_start", window_start), ("prediction_window_end", window_end)):
        if arguments.is_literal(value) and not arguments.is_unset(value):
            try:
                to_utc(value, name=name, allow_naive=False)
            except MlopsError as error:
                raise ConfigurationError(str(error)) from None


def prediction_drift_extra(prediction_drift: dict[str, Any]) -> dict[str, Any]:
    """The prediction drift verdict for an Asset event's ``extra``: without the per-column numbers."""
    return {k: v for k, v in prediction_drift.items() if k not in ("columns", "reference_uri")}


def with_drift_outlet(on_drift: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    if on_drift == "emit":
        outlets = list(kwargs.get("outlets") or [])
        if not any(getattr(o, "name", None) == drift_alias().name for o in outlets):
            outlets.append(drift_alias())
        kwargs["outlets"] = outlets
    return kwargs


class DetectDriftOperator(AlertingMixin, DriftCheck):
    """Compare ``current_uri`` with a reference and decide whether the data drifted.

    The reference is ``reference_uri``, or by default the training reference sample stored with the
    ``champion_alias`` version of ``model_name``. Each column is tested once with a pinned method (see
    ``mlops_provider.core.drift`` for defaults and why); the dataset drifts when the share of drifted
    columns reaches ``drift_share``. On drift: ``on_drift="emit"`` (default) raises the Asset event
    ``mlops://drift/<model_name>``, ``"fail"`` fails the task, ``"continue"`` only returns the verdict (for
    branching on ``drift_detected``). An empty current window is skipped (``on_empty="skip"``, default) or
    fails (``"fail"``). With ``prediction_log_uri`` the champion's logged predictions are tested too and
    reported beside the input verdict (``prediction_drift``), without changing it. Returns ``{drift_detected,
    drift_share, drifted_columns, columns, prediction_drift, report_uri, reference, current, ...}``.

    On drift, ``notifiers`` (e.g. ``[SmtpNotifier(to=...), WebhookNotifier(webhook_conn_id=...)]``) receive the
    alert ``drift_detected``: the model, the drifted share and columns with their scores, and links to the report,
    the MLflow model and the task (see ``operators.alerting``; ``alert_on`` can turn it off). A stable check sends
    nothing. All other arguments: see ``DriftCheck``.
    """

    alert_events = (alerts.DRIFT_DETECTED,)

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
        if result["drift_detected"]:
            alert = alerts.drift_alert(result, threshold=float(self.drift_share))
            self.send_alert(
                context, alert.with_links(*self.alert_links(context, self.model_name, result["report_uri"]))
            )
        self.react_to_drift(context, result)
        return result


def drift_event_details(details: dict[str, Any]) -> dict[str, Any]:
    """A drift event (``AssetEventOperator.event``) with ``day`` (the drifted partition's date when
    ``current_uri`` ends in ``<key>=YYYY-MM-DD``) and ``until`` (the day after it: the end of a half-open window
    that includes the drifted day, or None)."""
    current = str(details.get("current_uri", "")).rstrip("/")
    tail = current.rsplit("/", 1)[-1]
    day = tail.split("=", 1)[1][:10] if "=" in tail else None
    return {
        **details,
        "day": day,
        "until": (date.fromisoformat(day) + timedelta(days=1)).isoformat() if day else None,
    }


class DriftEventOperator(AssetEventOperator):
    """Which drift a retraining run answers: the ``mlops://drift/<model_name>`` event's extra (drifted columns,
    ``current_uri``, report) with ``event_id``, ``timestamp``, ``triggered_by_event``, ``day`` and ``until``
    (see ``drift_event_details``). Put it first in a DAG scheduled on ``drift_asset(model)``.
    """

    ui_color = "#f3e1c7"
    producer = "the drift monitor"
    asset = staticmethod(drift_asset)

    def execute(self, context: Context) -> dict[str, Any]:
        details = drift_event_details(self.event(context))
        self.log.info("Answering drift event %s of %s: columns %s in %s (report %s).", details["event_id"],
                      self.model_name, details.get("drifted_columns"), details.get("current_uri"),
                      details.get("report_uri"))  # fmt: skip
        return details


def _threshold(value: Any, name: str) -> float:
    number = arguments.optional_float(value, name)
    if number is None:
        raise ConfigurationError(f"{name} is empty; give a number such as 0.01.")
    return number
