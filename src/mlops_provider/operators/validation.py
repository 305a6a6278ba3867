"""ValidateDataOperator: a data validation gate on Great Expectations 1.x."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider import arguments
from mlops_provider.core import tags, validation
from mlops_provider.core.datasets import FILE_COLUMNS_ATTR, parse_uri
from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.reports import browser_url, path_segment, report_uri
from mlops_provider.links.validation import ValidationReportLink
from mlops_provider.operators.context import report_location
from mlops_provider.operators.mixins import DATASET_FIELDS, MLFLOW_FIELDS, DatasetHookMixin, MlflowHookMixin

if TYPE_CHECKING:
    from airflow.sdk import Context

ON_FAILURE = ("fail", "skip", "warn")
SUITE_FILE_NAME = "expectation_suite.json"
DOCS_FOLDER_NAME = "data_docs"
RESULT_XCOM_KEY = "validation_result"


class ValidateDataOperator(DatasetHookMixin, MlflowHookMixin):
    """Validate the dataset at ``dataset_uri`` against an expectation suite and gate the run on the result.

    Give exactly one suite source (a templated source that renders to an empty value counts as not given):

    :param expectation_suite: a GX 1.x suite JSON file (local path, ``file://`` or ``s3://``). A relative path
        is looked up in the working directory, the DAG's folder, its ``template_searchpath`` and the folder
        above the DAG folder (so ``include/expectations/x.json`` works from a standard project layout).
    :param expectations: a list of expectation dicts, ``{"type": ..., "kwargs": {...}}`` or the flat form
        ``{"type": ..., "column": ..., ...}`` (templated; JSON text is accepted too).
    :param infer_from: URI of reference data to infer a baseline suite from (rules and defaults in
        ``mlops_provider.core.validation``); the inferred suite is saved next to the report for review.

    A fallback when none of the three renders to a value:

    :param baseline_model: a registered model whose ``champion_alias`` version carries the reference sample
        of its training data (``TrainModelOperator`` stores it): the suite is inferred from that sample, so
        new data is held to what the production model was trained on. Row counts are only checked against
        ``rows_per_partition`` in this mode (the sample is capped; otherwise at least one row). At cold start
        (no champion yet) the suite is inferred from the dataset itself and saved as the baseline next to the
        report, and the run says so in ``suite_source``.

    :param dataset_uri: the data to validate (templated), e.g. ``s3://bucket/events/{{ ds }}/``.
    :param on_failure: ``fail`` (default: the task fails, without retries, with a readable summary),
        ``skip`` (the task and, by the default trigger rule, everything downstream is skipped; the run does
        not go red) or ``warn`` (log the summary and continue).
    :param suite_name: name of an inline or inferred suite (default ``inline_suite`` / ``inferred_<task_id>``).
    :param range_tolerance, max_categories, min_category_rows, row_count_factor: suite inference settings
        (defaults 0.2, 20, 5, 10.0), see ``core.validation.InferenceSettings``. ``row_count_factor`` widens the
        reference's smallest and largest partition into per-partition row bounds (a reference without
        partition folders only gets "at least one row").
    :param rows_per_partition: ``(min, max)`` rows of one partition of your data (``max`` may be ``None``),
        e.g. ``(800, 1200)`` for a day; replaces the bounds taken from the reference. Per-partition bounds are
        multiplied by the number of partitions in ``dataset_uri`` (7 ``dt=`` folders: 7 times), also for a
        committed inferred suite, and the suite saved next to the report holds the bounds used.
    :param examples: example unexpected values kept per failed expectation (default 5).
    :param dataset_format: ``parquet`` or ``csv`` when file names do not say.
    :param reports_uri: root for reports (default ``$MLOPS_REPORTS_URI`` or ``$MLOPS_HOME/reports``); the
        Data Docs go to ``<root>/validation/<dag_id>/<run_id>/<task_id>/data_docs/`` and the suite used to
        ``.../expectation_suite.json``, replaced by a retry.
    :param aws_conn_id: Airflow ``aws`` connection for any ``s3://`` URI above.
    :param mlflow_conn_id: the ``mlflow`` connection of ``baseline_model``.

    Returns (XCom) ``{success, evaluated, successful, failed: [{expectation, column, arguments,
    observed_value, unexpected_count, unexpected_percent, element_count, examples, error}], report_uri,
    suite_uri, suite_name, suite_source, dataset_uri, rows}``; the same dict is pushed under the key
    ``validation_result`` also when the task fails or skips, and the report is reachable from the
    "Validation report" link in every case.
    """

    template_fields: Sequence[str] = (
        "dataset_uri",
        "expectation_suite",
        "expectations",
        "infer_from",
        "baseline_model",
        "suite_name",
        "reports_uri",
        *DATASET_FIELDS,
        *MLFLOW_FIELDS,
    )
    template_fields_renderers = {"expectations": "json"}
    operator_extra_links = (ValidationReportLink(),)
    ui_color = "#d7ecd9"

    def __init__(
        self,
        *,
        dataset_uri: str,
        expectation_suite: str | None = None,
        expectations: list[dict[str, Any]] | str | None = None,
        infer_from: str | None = None,
        baseline_model: str | None = None,
        champion_alias: str = "champion",
        suite_name: str | None = None,
        on_failure: str = "fail",
        range_tolerance: float = validation.DEFAULT_RANGE_TOLERANCE,
        max_categories: int = validation.DEFAULT_MAX_CATEGORIES,
        min_category_rows: int = validation.DEFAULT_MIN_CATEGORY_ROWS,
        row_count_factor: float | None = validation.DEFAULT_ROW_COUNT_FACTOR,
        rows_per_partition: tuple[int, int | None] | None = None,
        examples: int = validation.DEFAULT_EXAMPLES,
        dataset_format: str | None = None,
        reports_uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_failure not in ON_FAILURE:
            raise ConfigurationError(f"on_failure={on_failure!r} in task {self.task_id!r} is not one of {ON_FAILURE}.")
        if expectation_suite is None and expectations is None and infer_from is None and baseline_model is None:
            raise ConfigurationError(
                f"Task {self.task_id!r} has no expectation suite: give expectation_suite=<GX suite JSON path>, "
                "expectations=[...], infer_from=<reference data URI> or baseline_model=<registered model>."
            )
        literal = [
            name
            for name, value in (("expectation_suite", expectation_suite), ("expectations", expectations),
                                ("infer_from", infer_from))
            if not arguments.is_unset(value) and "{{" not in json.dumps(value, default=str)
        ]  # fmt: skip
        if len(literal) > 1:
            raise ConfigurationError(
                f"Task {self.task_id!r} got {' and '.join(literal)}; give exactly one suite source."
            )
        if not isinstance(examples, int) or examples < 1:
            raise ConfigurationError(f"examples={examples!r} in task {self.task_id!r} must be an integer >= 1.")
        self.dataset_uri = dataset_uri
        self.expectation_suite = expectation_suite
        self.expectations = expectations
        self.infer_from = infer_from
        self.baseline_model = baseline_model
        self.champion_alias = champion_alias
        self.suite_name = suite_name
        self.on_failure = on_failure
        # Built now so that a bad setting fails when the DAG is parsed, not when it runs.
        self.inference_settings = validation.InferenceSettings(
            range_tolerance=range_tolerance,
            max_categories=max_categories,
            min_category_rows=min_category_rows,
            row_count_factor=row_count_factor,
            rows_per_partition=rows_per_partition,
        )
        self.examples = examples
        self.dataset_format = dataset_format
        self.reports_uri = reports_uri

    def execute(self, context: Context) -> dict[str, Any]:
        storage = self.dataset_hook
        # Every input is read and checked before anything is written.
        suite = self._given_suite(storage)
        cold_start = None
        if suite is None:
            # The suite is inferred, and the reference dropped, before the data is read: never both in memory.
            reference, reference_uri, settings = self._reference(storage)
            if reference is None:
                cold_start = reference_uri, settings
            else:
                suite = self._infer(reference, reference_uri, settings)
            del reference
        # Only the columns the suite checks are read (all of them when it is yet to be inferred from the data).
        columns = suite.columns_read() if suite is not None else None
        frame = storage.read(self.dataset_uri, format=self.dataset_format, allow_empty=True, columns=columns)
        if columns is not None:
            self.log.info("Read %d of the dataset's %d columns: the suite checks no others.", len(frame.columns),
                          len(frame.attrs.get(FILE_COLUMNS_ATTR, frame.columns)))  # fmt: skip
        if cold_start is not None:
            suite = self._infer_cold_start(frame, *cold_start)
        assert suite is not None
        suite, row_notes = validation.fit_row_count(suite, frame)
        for note in row_notes:
            self.log.info("Row-count bounds per partition: %s", note)
        validation.check_validation_input(frame, suite, self.dataset_uri)

        run = validation.run_validation(
            frame,
            suite,
            dataset_uri=self.dataset_uri,
            run_name=path_segment(context["ti"].run_id),
            examples=self.examples,
        )
        del frame

        location = report_location(context)
        suite_uri = report_uri("validation", SUITE_FILE_NAME, **location, root=self.reports_uri)
        docs_uri = report_uri("validation", DOCS_FOLDER_NAME, **location, root=self.reports_uri)
        s3_client = storage.s3_client if parse_uri(suite_uri).scheme == "s3" else None
        validation.write_suite(suite, suite_uri, s3_client=s3_client)
        page_uri = validation.publish_data_docs(run, docs_uri, s3_client=s3_client)
        ValidationReportLink.persist(context, browser_url(page_uri))

        result = {**run.outcome.to_dict(), "report_uri": page_uri, "suite_uri": suite_uri}
        context["ti"].xcom_push(key=RESULT_XCOM_KEY, value=result)
        # For OpenLineage, also when the policy below fails or skips the task: the verdict and every assertion.
        self.lineage_result, self.validation_assertions = result, run.assertions()
        if run.outcome.success:
            self.log.info("%s\nReport: %s\nSuite used: %s", run.outcome.summary(), page_uri, suite_uri)
        self.apply_policy(run.outcome, page_uri)  # a failed verdict is logged (or raised) once, there
        return result

    def _given_suite(self, storage: Any) -> validation.ExpectationSuiteSpec | None:
        """The suite from the file or the inline list; None when it is to be inferred."""
        given = {
            "expectation_suite": arguments.has_value(self.expectation_suite),
            "expectations": arguments.has_value(self.expectations),
            "infer_from": arguments.has_value(self.infer_from),
        }
        chosen = [name for name, value in given.items() if value]
        if not chosen and arguments.has_value(self.baseline_model):
            return None
        if len(chosen) != 1:
            raise ConfigurationError(
                f"Task {self.task_id!r} must get exactly one suite source after templating, got "
                f"{chosen or 'none'} (values: {json.dumps({k: getattr(self, k) for k in given}, default=str)[:300]}). "
                "Set one of expectation_suite, expectations or infer_from, or baseline_model as the fallback "
                "(a template rendering to '' counts as not set)."
            )
        if chosen == ["expectation_suite"]:
            suite_uri = str(self.expectation_suite)
            client = storage.s3_client if parse_uri(suite_uri).scheme == "s3" else None
            return validation.load_suite(suite_uri, s3_client=client, search_paths=self._search_paths())
        if chosen == ["expectations"]:
            return validation.suite_from_expectations(self.expectations, name=self.suite_name or "inline_suite")
        return None

    def _infer(
        self, reference: Any, reference_uri: str, settings: validation.InferenceSettings
    ) -> validation.ExpectationSuiteSpec:
        return validation.infer_suite(
            reference, settings, name=self.suite_name or f"inferred_{self.task_id}", reference_uri=reference_uri
        )

    def _reference(self, storage: Any) -> tuple[Any, str, validation.InferenceSettings]:
        """The data a suite is inferred from, where it came from, and the inference settings for it; the data
        is None at a cold start (no champion yet), where the validated data itself is the reference."""
        if arguments.has_value(self.infer_from):
            uri = str(self.infer_from)
            return storage.read(uri, format=self.dataset_format), uri, self.inference_settings
        from dataclasses import replace

        model = arguments.required_text(self.baseline_model, "baseline_model")
        hook = self.mlflow_hook
        champion = hook.get_version_by_alias(model, self.champion_alias)
        if champion is None:
            return None, model, self.inference_settings
        sample_uri = champion.tags.get(tags.REFERENCE_SAMPLE)
        if not sample_uri:
            raise ConfigurationError(
                f"{model} v{champion.version} (@{self.champion_alias}) has no {tags.REFERENCE_SAMPLE} tag, so "
                "its training data is unknown; retrain it with TrainModelOperator or give expectation_suite."
            )
        self.log.info("Inferring the suite from the training sample of %s v%s: %s", model, champion.version,
                      sample_uri)  # fmt: skip
        reference = hook.read_dataset(sample_uri, storage)
        shown = f"{sample_uri} ({model} v{champion.version} @{self.champion_alias})"
        return reference, shown, replace(self.inference_settings, row_count_factor=None)

    def _infer_cold_start(
        self, frame: Any, model: str, settings: validation.InferenceSettings
    ) -> validation.ExpectationSuiteSpec:
        if frame.empty:
            raise ConfigurationError(
                f"{model!r} has no {self.champion_alias!r} version yet and {self.dataset_uri!r} has no rows, "
                "so there is nothing to infer a cold-start baseline suite from; give data or a suite."
            )
        self.log.warning(
            "Cold start: %s has no %r version, so the baseline suite is inferred from %s itself and saved "
            "with this report; later runs are held to the champion's training data.",
            model, self.champion_alias, self.dataset_uri,
        )  # fmt: skip
        return self._infer(frame, f"{self.dataset_uri} (cold-start baseline for {model})", settings)

    def _search_paths(self) -> list[str]:
        dag = self.dag if self.has_dag() else None
        fileloc = getattr(dag, "fileloc", None)
        if not fileloc:
            return []
        folder = os.path.dirname(fileloc)
        searchpath = getattr(dag, "template_searchpath", None) or []
        if isinstance(searchpath, str):
            searchpath = [searchpath]
        return [folder, *searchpath, os.path.dirname(folder)]

    def apply_policy(self, outcome: validation.ValidationOutcome, report: str) -> None:
        """Fail, skip or warn on a failed validation, as ``on_failure`` says."""
        if outcome.success:
            return
        message = f"{outcome.summary()}\nReport: {report}"
        if self.on_failure == "fail":
            from airflow.sdk.exceptions import AirflowFailException

            # No retry: the same data gives the same verdict. Clear the task once the data is fixed.
            raise AirflowFailException(message)
        if self.on_failure == "skip":
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(f"{message}\nSkipping this task and its downstream tasks (on_failure='skip').")
        self.log.warning("Continuing although validation failed (on_failure='warn'):\n%s", message)
