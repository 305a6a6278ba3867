"""Drift of wide data: the column-block check behind ``DetectDriftOperator``, and the same check split over
mapped tasks so several workers share it.

``drift_task_group(columns_per_task=100, ...)`` takes ``DetectDriftOperator``'s arguments and builds::

    plan (lists the columns from the parquet schemas, no data) -> check (mapped: one task per chunk of
    ``columns_per_task`` columns, each reads only its columns) -> merge (one verdict, one report, one
    verdict on the monitoring run, one Asset event, the same XCom as DetectDriftOperator)

Each mapped check writes its column verdicts (and a sketch of each drifted column) as a small JSON file under
the reports root, at ``drift-parts/<dag>/<run>/<group>.check.<map index>/columns.json``: a retry overwrites its
own part. The XComs carry the chunk lists, the part URIs and counts, never the per-column tables.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from mlops_provider import arguments
from mlops_provider.core import alerts
from mlops_provider.core.errors import ConfigurationError, DriftInputError
from mlops_provider.core.reports import browser_url, report_uri, write_report
from mlops_provider.links.drift import DriftReportLink
from mlops_provider.operators.context import report_location
from mlops_provider.operators.drift import DRIFT_TEMPLATE_FIELDS, DetectDriftOperator, DriftCheck

if TYPE_CHECKING:
    from airflow.sdk import Context, TaskGroup

    from mlops_provider.core import drift as drift_core
    from mlops_provider.core import drift_wide

PARTS_KIND = "drift-parts"
PART_FILE = "columns.json"
PLAN_KEY = "plan"
REFERENCE_KEY = "reference_uri"
COLUMNS_PER_TASK_FIX = "give a whole number of columns per mapped task, at least 1, such as 100"


@dataclass
class SourcesCheck:
    """What ``DriftCheck.run_drift_check`` reports and stores, computed a block of columns at a time."""

    result: drift_core.DriftResult
    html: str
    reference_info: dict[str, Any]
    champion: Any
    predictions: Any


def open_dataset(check: DriftCheck, uri: str, stack: ExitStack) -> drift_wide.Source:
    """``uri`` as a column source; an MLflow artifact (the champion's reference sample) is downloaded first."""
    import tempfile

    from mlops_provider.core.drift_wide import open_source
    from mlops_provider.hooks.mlflow import ARTIFACT_URI_PREFIXES

    if uri.startswith(ARTIFACT_URI_PREFIXES):
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="mlops-artifact-"))
        return open_source(check.mlflow_hook.download_artifact(uri, folder), stack=stack)
    return open_source(uri, s3_client=check.dataset_hook._client_for(uri), stack=stack)


def check_sources(
    check: DriftCheck, current_uri: str, settings: drift_core.DriftSettings, window: Any
) -> SourcesCheck | None:
    """The drift check of ``current_uri`` against ``check``'s reference; None when the current data has no rows.

    Up to ``WIDE_COLUMNS`` tested columns the report is Evidently's, built from ``report_rows`` sampled rows kept
    while the blocks are read, by a process (or thread) started before the data is opened that imports Evidently
    while the columns are tested (``drift_page.EvidentlyReport``); above, the compact page of
    ``core.drift_report_wide`` (no Evidently at all).
    """
    from mlops_provider.core.drift_page import EvidentlyReport
    from mlops_provider.core.drift_report_wide import render_wide_report
    from mlops_provider.core.drift_wide import WIDE_COLUMNS, check_columns, merge_parts, plan_columns

    with ExitStack() as stack:
        evidently = EvidentlyReport(settings, render=window is None)
        stack.callback(evidently.cancel)  # the thread stops waiting if the check fails
        current = open_dataset(check, current_uri, stack)
        if current.rows == 0:
            return None
        reference, reference_info, champion = check._resolve_reference(read=lambda uri: open_dataset(check, uri, stack))
        types = plan_columns(reference, current, settings)
        report = evidently if len(types) <= WIDE_COLUMNS else None
        if report is not None:
            report.plan(types)
        else:
            evidently.cancel()
        evidently.ready()

        def progress(done: int, total: int) -> None:
            if total > WIDE_COLUMNS:
                check.log.info("Drift: tested %d of %d columns", done, total)

        part = check_columns(
            reference, current, types, settings, progress=progress, report_sample=report.submit if report else None
        )
        wide = merge_parts([part], settings)
        result = wide.result
        check.log.info("Drift check of %s against %s:\n%s", current_uri, reference_info["uri"], result.summary())
        predictions = None
        if window is not None:
            predictions = check._check_prediction_drift(window, champion, settings)
            check.log.info("%s", predictions.summary())
        if report is None:
            html = render_wide_report(result, wide.sketches)
            if predictions is not None:
                html = html.replace(
                    "</body>", f"<h2>Prediction drift</h2><pre>{_escape(predictions.summary())}</pre></body>"
                )
        else:
            html = report.html(predictions.report_section() if predictions is not None else None)
    return SourcesCheck(result, html, reference_info, champion, predictions)


def _escape(text: str) -> str:
    from html import escape

    return escape(text)


def columns_per_task_value(value: Any) -> int:
    """``columns_per_task`` as a whole number of at least 1, or a ConfigurationError that names the fix."""
    try:
        number = arguments.optional_int(value, "columns_per_task", minimum=1)
    except ConfigurationError as error:
        raise ConfigurationError(f"{error} {COLUMNS_PER_TASK_FIX[0].upper()}{COLUMNS_PER_TASK_FIX[1:]}.") from None
    if number is None:
        raise ConfigurationError(f"columns_per_task={value!r} is empty; {COLUMNS_PER_TASK_FIX}.")
    return number


class PlanDriftColumnsOperator(DriftCheck):
    """The columns a drift check tests (from the two schemas; no data is read), in chunks of ``columns_per_task``.

    Returns the chunks (lists of column names: Airflow maps over a return value only); pushes the resolved
    reference URI (XCom ``reference_uri``), so every chunk compares with the same reference even when the champion
    moves during the run, and ``{reference, current, columns, tasks}`` (XCom ``plan``) for the merge.
    """

    template_fields: Sequence[str] = (*DRIFT_TEMPLATE_FIELDS, "columns_per_task")
    columns_per_task: Any = None  # read by DriftCheck.__init__ (all template fields) before it is set
    operator_extra_links = ()  # type: ignore[assignment]  # the report link belongs to the merge

    def __init__(self, *, columns_per_task: Any, **kwargs: Any) -> None:
        if arguments.is_literal(columns_per_task):
            columns_per_task_value(columns_per_task)
        # Its return value is the list the check maps over, not a dict of results (ResultOperator's default).
        super().__init__(**{**kwargs, "on_drift": "continue", "multiple_outputs": False})
        self.columns_per_task = columns_per_task

    def execute(self, context: Context) -> list[list[str]]:
        from mlops_provider.core.drift_wide import chunk_columns, plan_columns

        per_task = columns_per_task_value(self.columns_per_task)
        settings = self.drift_settings()
        if prediction_on(self.prediction_log_uri):
            raise ConfigurationError(PREDICTIONS_NOT_SPLIT)
        with ExitStack() as stack:
            current = open_dataset(self, self.current_uri, stack)
            if current.rows == 0:
                from airflow.sdk.exceptions import AirflowSkipException

                raise AirflowSkipException(f"The current window {self.current_uri} has no rows: nothing to compare.")
            reference, reference_info, _ = self._resolve_reference(read=lambda uri: open_dataset(self, uri, stack))
            types = plan_columns(reference, current, settings)
        chunks = chunk_columns(list(types), per_task)
        self.log.info("Drift of %d columns in %d mapped checks of up to %d columns.", len(types), len(chunks), per_task)
        context["ti"].xcom_push(key=REFERENCE_KEY, value=reference_info["uri"])
        plan = {"reference": reference_info, "current": {"uri": self.current_uri}, "columns": len(types)}
        context["ti"].xcom_push(key=PLAN_KEY, value={**plan, "tasks": len(chunks)})
        return chunks


class DriftColumnsOperator(DriftCheck):
    """One mapped part of a split drift check: tests ``columns`` only and stores their verdicts as a part file.

    Returns ``{part_uri, columns, drifted}``.
    """

    operator_extra_links = ()  # type: ignore[assignment]  # the report link belongs to the merge

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.drift_wide import check_columns, plan_columns, settings_for

        columns = arguments.optional_list(self.columns, "columns") or []
        if not columns:
            raise ConfigurationError("A mapped drift check got no columns; map it over the plan's chunks.")
        settings = settings_for(self.drift_settings(), columns)
        with ExitStack() as stack:
            current = open_dataset(self, self.current_uri, stack)
            reference, _, _ = self._resolve_reference(read=lambda uri: open_dataset(self, uri, stack))
            types = plan_columns(reference, current, settings)
            part = check_columns(reference, current, types, settings)
        uri = report_uri(PARTS_KIND, PART_FILE, **report_location(context), root=self.reports_uri)
        write_report(uri, json.dumps(part.to_dict()), s3_client=self.dataset_hook._client_for(uri))
        drifted = sum(column.drifted for column in part.columns.values())
        self.log.info("%d of %d columns drifted; part stored at %s", drifted, len(part.columns), uri)
        return {"part_uri": uri, "columns": len(part.columns), "drifted": drifted}


class MergeDriftOperator(DetectDriftOperator):
    """The split check's one verdict: merges the parts (``parts``: the mapped checks' XComs), writes one report,
    records the verdict once and raises at most one Asset event; returns what ``DetectDriftOperator`` returns."""

    template_fields: Sequence[str] = (*DRIFT_TEMPLATE_FIELDS, "parts", "plan")
    parts: Any = None  # read by DriftCheck.__init__ (all template fields) before they are set
    plan: Any = None

    def __init__(self, *, parts: Any, plan: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.parts = parts
        self.plan = plan

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.datasets import parse_uri
        from mlops_provider.core.drift_report_wide import render_wide_report
        from mlops_provider.core.drift_wide import DriftPart, merge_parts
        from mlops_provider.core.storage import get_bytes

        settings = self.drift_settings()
        parts = []
        for summary in list(self.parts or []):
            location = parse_uri(summary["part_uri"])
            raw = get_bytes(location, location.path, self.dataset_hook._client_for(summary["part_uri"]))
            parts.append(DriftPart.from_dict(json.loads(raw)))
        planned = int((self.plan or {}).get("columns") or 0)
        merged = merge_parts(parts, settings)
        result = merged.result
        if planned and len(result.columns) != planned:
            raise DriftInputError(
                f"The plan listed {planned} columns but the parts hold {len(result.columns)}; clear the whole "
                "drift task group so plan, checks and merge run again together."
            )
        model_name = arguments.optional_text(self.model_name, "model_name")
        self.model_name = arguments.model_name(model_name) if model_name else None
        self.log.info("Drift check of %s (%d parts):\n%s", self.current_uri, len(parts), result.summary())
        html = render_wide_report(result, merged.sketches)
        uri = report_uri("drift", "drift_report.html", **report_location(context), root=self.reports_uri)
        write_report(uri, html, s3_client=self.dataset_hook._client_for(uri))
        DriftReportLink.persist(context, browser_url(uri))
        reference_info = dict((self.plan or {}).get("reference") or {"uri": self.reference_uri})
        champion = None
        if self.model_name and self.log_to_mlflow:
            champion = self.mlflow_hook.get_version_by_alias(self.model_name, self.champion_alias)
            if champion is not None:
                self._log_report_to_mlflow(context, champion, html, result.to_dict())
            self._record_verdict(context, result, uri)
        output = {
            "drift_detected": result.drift_detected,
            "drift_share": result.drift_share,
            "drifted_columns": result.drifted_columns,
            "columns": result.column_verdicts(),
            "prediction_drift": None,
            "report_uri": uri,
            "reference": {**reference_info, "rows": result.reference_rows},
            "current": {"uri": self.current_uri, "rows": result.current_rows},
            "tested_rows": result.tested_rows,
            "model_name": self.model_name,
            "tasks": len(parts),
        }
        if result.drift_detected:
            alert = alerts.drift_alert(output, threshold=float(self.drift_share))
            self.send_alert(context, alert.with_links(*self.alert_links(context, self.model_name, uri)))
        self.react_to_drift(context, output)
        return output


PREDICTIONS_NOT_SPLIT = (
    "prediction_log_uri is not supported by drift_task_group (the predictions are a few columns: test them "
    "with a DetectDriftOperator of their own), so leave it unset here."
)


def prediction_on(value: Any) -> bool:
    from mlops_provider.operators.drift import prediction_log_setting

    return prediction_log_setting(value)[0] if arguments.is_literal(value) else bool(value)


def drift_task_group(*, group_id: str = "detect_drift", columns_per_task: Any = 100, **kwargs: Any) -> TaskGroup:
    """``DetectDriftOperator``'s check split by columns over mapped tasks, as one TaskGroup in the current DAG.

    :param columns_per_task: columns each mapped task tests (templated; a whole number >= 1). 1,000 columns at
        100 per task are 10 mapped tasks that any free worker (Celery, Kubernetes) takes; limit how many run at
        once with ``max_active_tis_per_dagrun`` (passed on to the mapped task) or a pool.
    :param kwargs: ``DetectDriftOperator``'s arguments (``current_uri``, ``model_name``, ``on_drift``,
        ``notifiers``, ...); ``prediction_log_uri`` is not supported here. Connection, pool and retry arguments go
        to every task; ``on_drift``, ``on_empty`` and the alerting arguments to the merge, which alone emits.

    Downstream tasks read the merge's XCom (``group.merge``'s ``drift_detected``, ``drifted_columns``, ...),
    the same dictionary ``DetectDriftOperator`` returns, plus ``tasks`` (how many parts were merged).
    """
    from airflow.sdk import TaskGroup

    if arguments.is_literal(columns_per_task):
        columns_per_task_value(columns_per_task)
    if prediction_on(kwargs.get("prediction_log_uri")):
        raise ConfigurationError(PREDICTIONS_NOT_SPLIT)
    merge_only = {"on_drift", "on_empty", "notifiers", "alert_on", "outlets"}
    mapped_only = {"max_active_tis_per_dagrun"}
    common = {k: v for k, v in kwargs.items() if k not in merge_only | mapped_only}
    with TaskGroup(group_id=group_id) as group:
        plan = PlanDriftColumnsOperator(task_id="plan", columns_per_task=columns_per_task, **common)
        # The parts only write their columns' verdicts: logging to MLflow is the merge's (log_to_mlflow).
        mapped = {
            k: v for k, v in common.items() if k not in ("columns", "reference_uri", "model_name", "log_to_mlflow")
        }
        check = DriftColumnsOperator.partial(
            task_id="check",
            reference_uri=cast(Any, plan.output)[REFERENCE_KEY],
            on_drift="continue",
            log_to_mlflow=False,
            **{k: kwargs[k] for k in mapped_only if k in kwargs},
            **mapped,
        ).expand(columns=plan.output)
        merge = MergeDriftOperator(
            task_id="merge",
            parts=check.output,
            plan=cast(Any, plan.output)[PLAN_KEY],
            **{k: v for k, v in kwargs.items() if k not in mapped_only},
        )
        plan >> check >> merge
    return group
