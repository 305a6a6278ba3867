"""EvaluateLivePerformanceOperator: what the models achieved once the labels came in, and whether that changed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from mlops_provider import arguments
from mlops_provider.assets import performance_alias, performance_asset
from mlops_provider.core import alerts, tags
from mlops_provider.core.durations import as_duration
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.reports import browser_url, report_uri, write_report
from mlops_provider.links.model_card import ModelCardLink
from mlops_provider.links.performance import PerformanceReportLink
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
    import pandas as pd
    from airflow.sdk import Context

    from mlops_provider.core.performance.live import Baseline, LivePerformanceResult

ON_DEGRADATION = ("emit", "fail", "continue")
ON_INSUFFICIENT = ("skip", "succeed", "fail")

LIVE_WINDOW_FIELDS: Sequence[str] = (
    "model_name",
    "prediction_log_uri",
    "labels_uri",
    "label_column",
    "id_columns",
    "label_timestamp_column",
    "window_start",
    "window_end",
    *MLFLOW_FIELDS,
    *DATASET_FIELDS,
)


def as_delay(value: Any) -> timedelta:
    """``label_delay``: a timedelta, or a number of days."""
    return as_duration(value, "label_delay", unit="days", example="timedelta(days=30)")


class LiveWindow(MlflowHookMixin, DatasetHookMixin):
    """The labelled predictions of one window, shared by EvaluateLivePerformanceOperator and PerformanceSensor.

    :param model_name: the registered model whose predictions are judged.
    :param labels_uri: labels (templated; parquet/CSV, local or ``s3://``): the ``id_columns``, the
        ``label_column`` and optionally ``label_timestamp_column`` (when the label became known).
    :param id_columns: the key that labels and logged predictions share (templated).
    :param prediction_log_uri: the prediction log's root (default ``$MLOPS_HOME/prediction_log``), as
        ``BatchPredictOperator(prediction_log_uri=...)`` writes it.
    :param window_start / window_end: the window of *prediction* times, ``[start, end)`` (templated).
        Default: the run's data interval moved back by ``label_delay``.
    :param label_delay: how long labels take to arrive (a timedelta or days): with the defaults, a daily run
        judges the predictions made ``label_delay`` before its interval.
    :param min_rows: labelled rows of the champion a verdict needs.
    """

    template_fields: Sequence[str] = LIVE_WINDOW_FIELDS

    def __init__(
        self,
        *,
        model_name: str,
        labels_uri: str,
        label_column: str,
        id_columns: list[str] | str,
        prediction_log_uri: str | None = None,
        label_timestamp_column: str | None = None,
        window_start: Any = None,
        window_end: Any = None,
        label_delay: timedelta | float = timedelta(0),
        min_rows: int = 200,
        champion_alias: str = "champion",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if arguments.is_literal(model_name):
            arguments.model_name(model_name)
        self.model_name = model_name
        self.labels_uri = labels_uri
        self.label_column = label_column
        self.id_columns = id_columns
        self.prediction_log_uri = prediction_log_uri
        self.label_timestamp_column = label_timestamp_column
        self.window_start = window_start
        self.window_end = window_end
        self.label_delay = as_delay(label_delay)
        self.min_rows = arguments.optional_int(min_rows, "min_rows")
        if self.min_rows is None or self.min_rows < 1:
            raise ConfigurationError(f"min_rows={min_rows!r} must be a positive number of labelled rows, e.g. 200.")
        self.champion_alias = champion_alias

    def live_window(self, context: Context) -> tuple[datetime, datetime]:
        from mlops_provider.core.windows import resolve_window

        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        window = resolve_window(
            self.window_start,
            self.window_end,
            default_start=start - self.label_delay if start is not None else None,
            default_end=end - self.label_delay if end is not None else None,
            allow_naive=False,
        )
        if window.empty:
            raise ConfigurationError(
                f"The window [{window.start.isoformat()}, {window.end.isoformat()}) is empty: give window_end after "
                "window_start."
            )
        return window.start, window.end

    def labelled_predictions(
        self, context: Context, *, missing_is_empty: bool = False
    ) -> tuple[pd.DataFrame, datetime, datetime, str | None, list[str]]:
        """The window's predictions joined with their labels (``labels.join_labels``); an empty frame and the
        reason when there is nothing to judge yet (no prediction in the window, no label for them). With
        ``missing_is_empty`` (a sensor), no log or no labels at all is "nothing yet" too, not an error."""
        import pandas as pd

        from mlops_provider.core.errors import DatasetNotFoundError, NoMatchingLabelsError
        from mlops_provider.core.performance.labels import join_labels
        from mlops_provider.core.performance.log import read_prediction_log

        self.model_name = arguments.model_name(self.model_name)
        id_columns = arguments.optional_list(self.id_columns, "id_columns") or []
        if not id_columns:
            raise ConfigurationError("id_columns is empty: name the key that labels and predictions share.")
        label_column = arguments.required_text(self.label_column, "label_column")
        labels_uri = arguments.required_text(self.labels_uri, "labels_uri")
        start, end = self.live_window(context)
        self.mlflow_hook.get_registered_model(self.model_name)  # a misspelt model fails before any read
        storage = self.dataset_hook
        root = arguments.optional_text(self.prediction_log_uri, "prediction_log_uri")
        try:
            log = read_prediction_log(
                root, self.model_name, start, end,
                s3_client=storage.s3_client if (root or "").startswith("s3://") else None,
            )  # fmt: skip
            if log.empty:
                return pd.DataFrame(), start, end, "no prediction was logged in the window", id_columns
            labels = storage.read(labels_uri, allow_empty=True)
        except DatasetNotFoundError as error:
            if not missing_is_empty:
                raise
            return pd.DataFrame(), start, end, str(error).rstrip("."), id_columns
        if labels.empty:
            return pd.DataFrame(), start, end, f"no label has arrived yet at {labels_uri}", id_columns
        try:
            joined = join_labels(
                log,
                labels,
                id_columns=id_columns,
                label_column=label_column,
                label_timestamp_column=arguments.optional_text(self.label_timestamp_column, "label_timestamp_column"),
            )
        except NoMatchingLabelsError as error:  # labels of other windows only, or not yet: a wait, said in full
            return pd.DataFrame(), start, end, str(error).rstrip("."), id_columns
        return joined, start, end, None, id_columns


class EvaluateLivePerformanceOperator(AlertingMixin, LiveWindow):
    """Judge the models on the labels that arrived for a window of logged predictions.

    Joins ``labels_uri`` with the prediction log (see ``LiveWindow`` for the data arguments), computes per model
    version the live metrics with ``confidence`` intervals, and compares the champion's ``primary_metric``
    (default: accuracy, or RMSE for regressors) with its training holdout: degradation is called only when the
    drop exceeds ``min_drop`` with a one-sided p-value below ``significance``; ``thresholds``
    (``{"accuracy": {"min": 0.7}}``) are breached only when the whole interval is beyond the bound. With
    ``input_drift`` (templated: a bool, or the result of DetectDriftOperator) the verdict says which kind of
    change it sees: a drop with input drift, a drop without it (concept drift), drift without a drop, or stable.

    Shadow versions in the log are compared with the champion on the ids both scored; the evidence is kept
    on the shadow version (tags ``mlops.live_evidence.<window>``), where the gate's ``live_evidence`` adds it
    up over windows. Every window's metrics go to one MLflow run per model (``<model>-monitoring`` /
    ``live-performance``) as a time series per version, and an HTML report (live metric over time against the
    holdout, per version) sits behind the "Live performance report" link.

    On degradation, ``on_degradation="emit"`` (default) raises the Asset event ``mlops://performance/<model>``
    with the numbers in its extra, ``"fail"`` fails the task, ``"continue"`` only returns the verdict. Too few
    labelled rows is the outcome ``insufficient_evidence``, never a pass: ``on_insufficient="skip"`` (default)
    skips the task, ``"succeed"`` returns the outcome, ``"fail"`` fails. Returns the result as a dict
    (``outcome``, ``kind``, ``statement``, per-version metrics, ``report_uri``).

    On degradation, ``notifiers`` receive the alert ``performance_degraded`` (the live metric and its interval,
    the holdout value, the p-value, the statement, links to the report, the MLflow model and the task); see
    ``operators.alerting`` (``alert_on=[]`` turns it off).

    With ``log_to_mlflow``, the model cards of the versions judged in the window are regenerated with their live
    metrics (and ``label_delay`` among the known limits); the "Model card" link opens the champion's.
    """

    alert_events = (alerts.PERFORMANCE_DEGRADED,)

    template_fields: Sequence[str] = (*LIVE_WINDOW_FIELDS, "primary_metric", "thresholds", "input_drift", "reports_uri")
    template_fields_renderers = {"thresholds": "json"}
    operator_extra_links = (PerformanceReportLink(), ModelCardLink())
    ui_color = "#d8e8f5"

    def __init__(
        self,
        *,
        primary_metric: str | None = None,
        thresholds: dict[str, dict[str, Any]] | None = None,
        significance: float = 0.01,
        min_drop: float = 0.0,
        confidence: float = 0.95,
        input_drift: Any = None,
        on_degradation: str = "emit",
        on_insufficient: str = "skip",
        reports_uri: str | None = None,
        log_to_mlflow: bool = True,
        **kwargs: Any,
    ) -> None:
        if on_degradation not in ON_DEGRADATION:
            raise ConfigurationError(f"on_degradation={on_degradation!r} is not one of {ON_DEGRADATION}.")
        if on_insufficient not in ON_INSUFFICIENT:
            raise ConfigurationError(f"on_insufficient={on_insufficient!r} is not one of {ON_INSUFFICIENT}.")
        for name, value, low, high, example in (
            ("significance", significance, 0, 0.5, 0.01),
            ("confidence", confidence, 0.5, 1, 0.95),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value < high:
                raise ConfigurationError(f"{name}={value!r} must be a number between {low} and {high}, e.g. {example}.")
        if isinstance(min_drop, bool) or not isinstance(min_drop, (int, float)) or min_drop < 0:
            raise ConfigurationError(f"min_drop={min_drop!r} must be a number >= 0 (the smallest drop that matters).")
        if on_degradation == "emit":
            outlets = list(kwargs.get("outlets") or [])
            if not any(getattr(o, "name", None) == performance_alias().name for o in outlets):
                outlets.append(performance_alias())
            kwargs["outlets"] = outlets
        super().__init__(**kwargs)
        self.primary_metric = primary_metric
        self.thresholds = thresholds
        self.significance = float(significance)
        self.min_drop = float(min_drop)
        self.confidence = float(confidence)
        self.input_drift = input_drift
        self.on_degradation = on_degradation
        self.on_insufficient = on_insufficient
        self.reports_uri = reports_uri
        self.log_to_mlflow = log_to_mlflow
        if arguments.is_literal(thresholds):
            self._thresholds()

    def _thresholds(self) -> dict[str, dict[str, Any]]:
        from mlops_provider.core.registry.gate import validate_thresholds

        given = arguments.optional_dict(self.thresholds, "thresholds")
        if not given:
            return {}
        validate_thresholds(given)
        for metric, rules in given.items():
            relative = sorted(set(rules) - {"min", "max"})
            if relative:
                raise ConfigurationError(
                    f"thresholds[{metric!r}] uses {relative}, which compare two models (the gate's); live "
                    "performance is judged against fixed bounds: use 'min' and 'max'."
                )
        return given

    def _input_drift(self) -> bool | None:
        value = self.input_drift
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, dict) and isinstance(value.get("drift_detected"), bool):
            return value["drift_detected"]
        raise ConfigurationError(
            f"input_drift={value!r} is neither a bool nor a drift result with 'drift_detected'; pass "
            "\"{{ ti.xcom_pull(task_ids='detect_drift') }}\" (with render_template_as_native_obj=True) or True/False."
        )

    def _task_type_and_baselines(self, versions: list[str]) -> tuple[str, dict[str, Baseline], list[str]]:
        """The model's task type and each version's holdout metrics, from the registry; notes for versions
        that no longer exist there."""
        from mlflow.exceptions import MlflowException

        from mlops_provider.core.performance.live import Baseline

        client = self.mlflow_hook.get_conn()
        baselines: dict[str, Baseline] = {}
        task_types: list[str] = []
        notes = []
        for version in versions:
            try:
                model_version = client.get_model_version(self.model_name, version)
            except MlflowException as error:
                if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                notes.append(
                    f"version {version} is in the prediction log but no longer in the registry: its live metrics "
                    "are shown without a holdout to compare with"
                )
                continue
            if model_version.tags.get(tags.TASK_TYPE):
                task_types.append(model_version.tags[tags.TASK_TYPE])
            if not model_version.run_id:
                continue
            run = client.get_run(model_version.run_id)
            rows = run.data.params.get("split.test_rows")
            baselines[version] = Baseline(
                metrics={k: float(v) for k, v in run.data.metrics.items() if k != "fit_seconds"},
                rows=int(rows) if rows and rows.isdigit() else None,
            )
        if not task_types:
            why = "; ".join(notes) if notes else f"none carries the {tags.TASK_TYPE} tag"
            raise ConfigurationError(
                f"The versions {versions} of {self.model_name!r} in the prediction log cannot be judged: {why}. "
                "Whether the model classifies or regresses comes from the registered versions (trained by "
                "TrainModelOperator); evaluate windows whose versions are still registered."
            )
        return task_types[0], baselines, notes

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.performance.live import INSUFFICIENT, evaluate_window

        thresholds = self._thresholds()
        input_drift = self._input_drift()
        joined, start, end, empty_reason, id_columns = self.labelled_predictions(context)
        champion = self.mlflow_hook.get_version_by_alias(self.model_name, self.champion_alias)
        champion_version = str(champion.version) if champion is not None else None
        if joined.empty:
            return self._insufficient(context, start, end, empty_reason or "no labelled prediction")
        versions = sorted({str(v) for v in joined["model_version"]}, key=int)
        task_type, baselines, notes = self._task_type_and_baselines(versions)
        result = evaluate_window(
            joined,
            model_name=self.model_name,
            window_start=start,
            window_end=end,
            task_type=task_type,
            id_columns=id_columns,
            champion_version=champion_version,
            baselines=baselines,
            primary_metric=arguments.optional_text(self.primary_metric, "primary_metric"),
            thresholds=thresholds,
            significance=self.significance,
            min_drop=self.min_drop,
            min_rows=int(self.min_rows or 1),
            confidence=self.confidence,
            input_drift=input_drift,
        )
        if notes:
            result.statement += " Note: " + "; ".join(notes) + "."
        self.log.info("Live performance:\n%s", result.statement)
        summary = result.to_dict()
        if result.outcome == INSUFFICIENT:  # metrics of too few rows stay out of the time series and the report
            return self._react_insufficient(summary)
        if self.log_to_mlflow:
            summary["monitoring_run_id"] = self._record(result)
        summary["report_uri"] = self._report(context, result, summary)
        if self.log_to_mlflow:
            self._record_verdict(summary)
            self._refresh_model_cards(context, result)
        self._react_to_degradation(context, result, summary)
        return summary

    # -- recording ---------------------------------------------------------------------------------------------
    def _monitoring_run(self) -> str:
        from mlops_provider.core.monitoring import monitoring_experiment_name, monitoring_run_id

        experiment_id = self.mlflow_hook.get_or_create_experiment(monitoring_experiment_name(self.model_name))
        return monitoring_run_id(self.mlflow_hook.get_conn(), experiment_id, self.model_name)

    def _record_verdict(self, summary: dict[str, Any]) -> None:
        """The window's verdict as the monitor's newest on the monitoring run (the fleet report reads it)."""
        from mlops_provider.core import monitoring
        from mlops_provider.core.performance.live import INSUFFICIENT

        client = self.mlflow_hook.get_conn()
        run_id = summary.get("monitoring_run_id") or self._monitoring_run()
        previous = monitoring.read_verdicts(client.get_run(run_id)).get(monitoring.LIVE)
        labelled = summary["outcome"] != INSUFFICIENT
        champion = (summary.get("versions") or {}).get(str(summary.get("champion_version")), {})
        metric = summary.get("primary_metric")
        estimate = (champion.get("metrics") or {}).get(metric) or {}
        verdict = {
            "outcome": summary["outcome"],
            "degraded": bool(summary.get("degraded")),
            "kind": summary.get("kind"),
            "metric": metric,
            "champion_version": summary.get("champion_version"),
            "value": estimate.get("value"),
            "baseline": (champion.get("baseline") or {}).get(metric),
            "labelled_rows": summary.get("labelled_rows", 0),
            "window_start": summary["window_start"],
            "window_end": summary["window_end"],
            "windows_without_labels": monitoring.windows_without_labels(previous, summary["window_end"], labelled),
            "report_uri": browser_url(summary["report_uri"]) if summary.get("report_uri") else None,
        }
        monitoring.record_verdict(client, run_id, monitoring.LIVE, verdict)

    def _record(self, result: LivePerformanceResult) -> str:
        """The window's metrics as points of the monitoring run's time series (step: the window's end, in
        seconds, so a rerun writes the same points), and the shadow evidence on each shadow version."""
        from mlflow.entities import Metric

        client = self.mlflow_hook.get_conn()
        run_id = self._monitoring_run()
        when = int(result.window_end.timestamp() * 1000)
        step = int(result.window_end.timestamp())
        points = []
        for version, perf in result.versions.items():
            points.append(Metric(f"live.v{version}.rows", perf.rows, when, step))
            for name, estimate in perf.metrics.items():
                points += [
                    Metric(f"live.v{version}.{name}", estimate.value, when, step),
                    Metric(f"live.v{version}.{name}.low", estimate.low, when, step),
                    Metric(f"live.v{version}.{name}.high", estimate.high, when, step),
                ]
                if perf.baseline and name in perf.baseline.metrics:
                    points.append(Metric(f"holdout.v{version}.{name}", perf.baseline.metrics[name], when, step))
        for first in range(0, len(points), 1000):
            client.log_batch(run_id, metrics=points[first : first + 1000])
        client.set_terminated(run_id, "FINISHED")  # a long-lived run that gains points per window, never "running"
        window_key = f"{result.window_start:%Y%m%dT%H%M%S}-{result.window_end:%Y%m%dT%H%M%S}"
        for version, evidence in result.paired.items():
            value = {
                "champion_version": result.champion_version,
                "window": [result.window_start.isoformat(), result.window_end.isoformat()],
                "evidence": {metric: e.to_dict() for metric, e in evidence.items()},
            }
            client.set_model_version_tag(
                self.model_name, version, f"{tags.LIVE_EVIDENCE_PREFIX}{window_key}", json.dumps(value)
            )
        return run_id

    def _history(self, run_id: str | None, result: LivePerformanceResult) -> dict[str, list[Any]]:
        """Per version, the primary metric's points of every window so far (this one included)."""
        from mlops_provider.core.performance.report import Point

        metric = result.primary_metric
        history: dict[str, list[Point]] = {}
        if run_id is None:
            for version, perf in result.versions.items():
                if metric in perf.metrics:
                    e = perf.metrics[metric]
                    history[version] = [Point(result.window_end, e.value, e.low, e.high, perf.rows)]
            return history
        client = self.mlflow_hook.get_conn()
        run = client.get_run(run_id)
        prefix = "live.v"
        versions = {key[len(prefix) :].split(".", 1)[0] for key in run.data.metrics if key.startswith(prefix)}
        for version in versions:
            series = {}
            for suffix in ("", ".low", ".high"):
                series[suffix] = {
                    m.step: m.value for m in client.get_metric_history(run_id, f"{prefix}{version}.{metric}{suffix}")
                }
            rows = {m.step: m.value for m in client.get_metric_history(run_id, f"{prefix}{version}.rows")}
            history[version] = [
                Point(datetime.fromtimestamp(step, timezone.utc), value, series[".low"].get(step, value),
                      series[".high"].get(step, value), int(rows.get(step, 0)))
                for step, value in sorted(series[""].items())
            ]  # fmt: skip
        return history

    def _report(self, context: Context, result: LivePerformanceResult, summary: dict[str, Any]) -> str:
        from mlops_provider.core.performance.report import render_report

        history = self._history(summary.get("monitoring_run_id"), result)
        baselines = {
            version: (perf.baseline.metrics.get(result.primary_metric) if perf.baseline else None)
            for version, perf in result.versions.items()
        }
        html = render_report(summary, history, baselines)
        uri = report_uri("performance", "performance_report.html", **report_location(context), root=self.reports_uri)
        write_report(uri, html, s3_client=self.dataset_hook.s3_client if uri.startswith("s3://") else None)
        PerformanceReportLink.persist(context, browser_url(uri))
        self.log.info("Live performance report: %s", uri)
        return uri

    def _refresh_model_cards(self, context: Context, result: LivePerformanceResult) -> None:
        """The cards of the versions judged in the window show their newest live metrics (and the champion's the
        verdict); before a degradation fails the task, so the card says what failed it."""
        from mlops_provider.operators.model_card import refresh_model_cards

        delay = self.label_delay
        text = f"{delay.days} days" if delay and delay == timedelta(days=delay.days) else str(delay)
        refresh_model_cards(
            self, context, self.mlflow_hook, self.model_name, list(result.versions), trigger="live evaluation",
            link_version=result.champion_version,
            version_tags={v: {tags.LABEL_DELAY: text} for v in result.versions} if delay else None,
        )  # fmt: skip

    # -- reactions ---------------------------------------------------------------------------------------------
    def _insufficient(self, context: Context, start: datetime, end: datetime, reason: str) -> dict[str, Any]:
        from mlops_provider.core.performance.live import INSUFFICIENT, KIND_INSUFFICIENT

        summary = {
            "model_name": self.model_name,
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "outcome": INSUFFICIENT,
            "degraded": False,
            "kind": KIND_INSUFFICIENT,
            "labelled_rows": 0,
            "statement": (
                f"{self.model_name}: insufficient evidence for predictions made in [{start.isoformat()}, "
                f"{end.isoformat()}): {reason}. No verdict: wait for labels (PerformanceSensor) or check the window."
            ),
            "versions": {},
        }
        self.log.info("Live performance:\n%s", summary["statement"])
        return self._react_insufficient(summary)

    def _react_insufficient(self, summary: dict[str, Any]) -> dict[str, Any]:
        if self.on_insufficient == "fail":  # a failed task leaves nothing behind
            from mlops_provider.core.performance.statistics import InsufficientEvidenceError

            raise InsufficientEvidenceError(summary["statement"] + " (on_insufficient='fail')")
        if self.log_to_mlflow:  # "no labels for N windows" is counted from these
            self._record_verdict(summary)
        if self.on_insufficient == "skip":
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(summary["statement"] + " Skipping (on_insufficient='skip').")
        return summary

    def _react_to_degradation(self, context: Context, result: LivePerformanceResult, summary: dict) -> None:
        if not result.degraded:
            return
        champion = result.versions[str(result.champion_version)]
        live = champion.metrics[result.primary_metric]
        extra = {
            "model_name": self.model_name,
            "version": result.champion_version,
            "kind": result.kind,
            "metric": result.primary_metric,
            "live": live.value,
            "interval": [live.low, live.high],
            "holdout": champion.degradation.baseline if champion.degradation else None,
            "p_value": champion.degradation.p_value if champion.degradation else None,
            "labelled_rows": champion.rows,
            "breaches": champion.breaches,
            "window_start": summary["window_start"],
            "window_end": summary["window_end"],
            "report_uri": summary["report_uri"],
            "dag_id": context["ti"].dag_id,
            "run_id": context["ti"].run_id,
        }
        alert = alerts.degradation_alert(extra, result.statement)
        self.send_alert(context, alert.with_links(*self.alert_links(context, self.model_name, summary["report_uri"])))
        if self.on_degradation == "emit":
            context["outlet_events"][performance_alias()].add(performance_asset(self.model_name), extra=extra)
            self.log.info("Raised the Asset event %s with %s", performance_asset(self.model_name).uri, extra)
        elif self.on_degradation == "fail":
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(result.statement)


class PerformanceEventOperator(AssetEventOperator):
    """Which degradation a retraining run answers: the ``mlops://performance/<model_name>`` event's extra (metric,
    live value and interval, holdout, window), with ``event_id``, ``triggered_by_event`` and ``until``: the last
    day of the degraded window of prediction times. The predictions made on that day scored the data of the
    days before it, so ``until`` is the end of a half-open window of partitions that ends with the degraded data
    (the predictions of data day D, stamped at its end, sit in the window [D+1, D+2): ``until`` is D+1).

    Put it first in a DAG scheduled on ``performance_asset(model)`` (see ``AssetEventOperator``).
    """

    ui_color = "#d8e8f5"
    producer = "EvaluateLivePerformanceOperator"
    asset = staticmethod(performance_asset)

    def execute(self, context: Context) -> dict[str, Any]:
        details = self.event(context)
        end = details.get("window_end")
        # A prediction made on a day scored the data of the days before it: the data behind the window's
        # predictions ends before the window's last day (half-open: the end itself is not in the window).
        last_day = (datetime.fromisoformat(end) - timedelta(microseconds=1)).date() if end else None
        details["until"] = last_day.isoformat() if last_day else None
        self.log.info("Answering performance event %s of %s: %s %s (holdout %s) in [%s, %s).",
                      details["event_id"], self.model_name, details.get("metric"), details.get("live"),
                      details.get("holdout"), details.get("window_start"), end)  # fmt: skip
        return details
