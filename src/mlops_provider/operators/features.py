"""Feast feature store tasks: apply definitions, materialise windows backfill-safely, build training sets.

Every operator opens the feature repository through ``FeastHook`` (``feast_conn_id`` or ``repo_path``); the
logic lives in ``mlops_provider.core.features``. Feast is imported only when a task runs.

Large backfills: cut the window into slices and map one ``MaterializeFeaturesOperator`` per slice::

    MaterializeFeaturesOperator.partial(task_id="backfill", repo_path=REPO, max_active_tis_per_dagrun=2)
        .expand_kwargs(materialization_slices("2025-01-01", "2026-01-01", slice_length=timedelta(days=30)))

or, to slice each run's own data interval at run time::

    MaterializeFeaturesOperator.partial(task_id="materialize", repo_path=REPO)
        .expand_kwargs(slice_data_interval(slices=4))

Windows are half-open, ``[start, end)``, like Airflow's data intervals: a row stamped exactly at the end
belongs to the next window, so slices and consecutive runs tile time with no gap and no overlap. Slices may
run in any order and in parallel: the online store keeps the newest value per entity.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from mlops_provider import arguments
from mlops_provider.core.errors import MaterializationWindowError
from mlops_provider.core.windows import resolve_window, split_window
from mlops_provider.operators.mixins import DATASET_FIELDS, FEAST_FIELDS, DatasetHookMixin, FeastHookMixin

if TYPE_CHECKING:
    from airflow.sdk import Context


def materialization_slices(
    window_start: Any,
    window_end: Any,
    *,
    slices: int | None = None,
    slice_length: timedelta | None = None,
) -> list[dict[str, str]]:
    """Keyword arguments for ``MaterializeFeaturesOperator.partial(...).expand_kwargs(...)``: one
    ``{"window_start", "window_end"}`` dict (ISO 8601 strings) per slice of ``[window_start, window_end)``,
    cut into ``slices`` equal parts or parts of ``slice_length``; each slice ends where the next begins, so a
    row stamped on a boundary is written by the later slice only. For a window known when the DAG is written;
    use ``slice_data_interval`` to slice each run's data interval."""
    window = resolve_window(window_start, window_end)
    return [part.to_dict() for part in split_window(window, slices=slices, slice_length=slice_length)]


def _slice_data_interval(slices: int | None = None, slice_length: timedelta | None = None) -> list[dict[str, str]]:
    """A task that cuts this run's data interval into slices (see ``materialization_slices``); feed its
    result to ``MaterializeFeaturesOperator.partial(...).expand_kwargs(...)``."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    window = resolve_window(
        default_start=context.get("data_interval_start"), default_end=context.get("data_interval_end")
    )
    return [part.to_dict() for part in split_window(window, slices=slices, slice_length=slice_length)]


def __getattr__(name: str) -> Any:
    # ``slice_data_interval`` is a @task made on first use: @task loads the standard provider's Python operators,
    # which a DAG file that does not slice its data interval would otherwise load at every parse (bench_dag_parse).
    if name != "slice_data_interval":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from airflow.sdk import task

    decorated = task(task_id="slice_data_interval")(_slice_data_interval)
    globals()[name] = decorated
    return decorated


class FeastApplyOperator(FeastHookMixin):
    """Register the definitions of a Feast feature repository (``feast apply``) and create its online tables.

    The task first computes the difference between the definitions and the registry; when there is none it
    writes nothing, so running it twice changes nothing. Returns ``{project, created, updated, deleted,
    unchanged, infra_changes, changed}`` (objects as ``type:name``).

    Connection arguments: see ``FeastHookMixin``.
    """

    template_fields: Sequence[str] = FEAST_FIELDS
    ui_color = "#c9e4f5"

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.features import apply_repository

        result = apply_repository(self.feast_hook.get_conn(), self.feast_hook.repo_path)
        self.log.info("%s", result.summary())
        return result.to_dict()


class MaterializeFeaturesOperator(FeastHookMixin):
    """Load one window of feature values from the offline store into the online store, backfill-safely.

    The window is the task's data interval unless ``window_start``/``window_end`` (templated, datetimes or
    ISO 8601 strings) say otherwise. It is half-open, ``[window_start, window_end)``, like Airflow's data
    intervals: a row stamped exactly at ``window_end`` is left to the next window (Feast alone would include
    it). A stored online value is only ever replaced by one with an equal or newer event timestamp, so
    windows may run in any order (backfills, catch-up, cleared tasks, parallel slices) and the online store
    still ends with the newest value per entity; rerunning a window leaves it identical.
    The log says how this was ensured for the configured online store and how many values were kept out.
    The window is recorded once in the registry's materialisation intervals (what FeatureFreshnessSensor reads).
    Returns ``{window_start, window_end, online_store, guard, atomic, feature_views, values_written,
    values_kept_out, seconds, project}``.

    :param feature_views: names of the feature views to materialise (default: every online feature view).
    :param window_start: start of the window (default: ``data_interval_start``); included.
    :param window_end: end of the window (default: ``data_interval_end``); excluded: a row stamped exactly
        then is written by the window that starts there.
    :param slice_length: for long windows: materialise in consecutive time slices of this length (a
        timedelta, seconds, or text such as ``"1d"``), newest first, so memory follows one slice rather than
        the window. Each finished slice is recorded in the registry; a retry (a killed worker) resumes at
        the first slice not finished. Default: the window in one piece, through Feast's own materialisation.
    :param resume: with ``slice_length``, skip slices already recorded for every view (default True); False
        writes every slice again (e.g. after correcting offline rows in place).

    Connection arguments: see ``FeastHookMixin``.
    """

    template_fields: Sequence[str] = ("feature_views", "window_start", "window_end", "slice_length", *FEAST_FIELDS)
    ui_color = "#a6d1ef"

    def __init__(
        self,
        *,
        feature_views: Sequence[str] | None = None,
        window_start: Any = None,
        window_end: Any = None,
        slice_length: timedelta | float | str | None = None,
        resume: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.feature_views = feature_views
        self.window_start = window_start
        self.window_end = window_end
        self.slice_length = slice_length
        self.resume = resume

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.features import materialize_window
        from mlops_provider.core.features.sliced import check_slice_length, materialize_in_slices

        window = resolve_window(
            self.window_start,
            self.window_end,
            default_start=context.get("data_interval_start"),
            default_end=context.get("data_interval_end"),
            allow_naive=False,
        )
        if window.empty and not arguments.is_unset(self.window_start):
            raise MaterializationWindowError(
                f"window_start and window_end are both {window.start.isoformat()}: the window [start, end) is "
                "empty and would write nothing; give a window_end after window_start."
            )
        if window.end > datetime.now(timezone.utc):
            raise MaterializationWindowError(
                f"window_end={window.end.isoformat()} is in the future: the views would be recorded as fresh up "
                "to then. End the window at or before now (by default it is the run's data interval end)."
            )
        views = arguments.optional_list(self.feature_views, "feature_views")
        sliced = self.slice_length not in (None, "")
        length = check_slice_length(self.slice_length) if sliced else None
        store = self.feast_hook.get_conn()
        if length is None:
            result = materialize_window(store, window, views)
        else:
            result = materialize_in_slices(
                store, window, views, slice_length=length, resume=bool(self.resume), on_slice=self._log_slice
            )
        self.log.info("%s", result.summary())
        return {**result.to_dict(), "project": store.project}

    def _log_slice(self, index: int, part: Any, views: list[Any]) -> None:
        written = sum(view.values_written for view in views)
        self.log.info("Slice %d %s done: %d values written, recorded in the registry.", index + 1, part, written)


class GetHistoricalFeaturesOperator(FeastHookMixin, DatasetHookMixin):
    """Build a point-in-time-correct training set and write it to ``output_uri``.

    ``entity_uri`` holds one row per training example: the entity keys, a timestamp (``timestamp_column``:
    when the label was observed) and any labels. Each row gets the feature values as they were at its
    timestamp: the newest feature row not after it and within the feature view's ttl, never a later one. Rows
    keep their order and extra columns; the result is ready for TrainModelOperator. Rerunning overwrites the
    same output. Returns ``{output_uri, rows, columns, features, feature_service, entity_uri,
    project}``.

    :param entity_uri: the entity frame (local path, ``file://`` or ``s3://``; parquet or csv).
    :param features: Feast feature references (``["customer_profile:plan", ...]``, a JSON list or
        comma-separated text) or a feature service name.
    :param output_uri: where the training set goes (a ``.parquet``/``.csv`` file or a folder).
    :param timestamp_column: the entity frame's timestamp column.
    :param full_feature_names: name feature columns ``view__feature`` instead of ``feature``.
    :param pass_through_without_features: when ``features`` renders empty (e.g. an unset DAG param), return
        ``entity_uri`` as ``output_uri`` instead of failing, so the next task reads the data as it is.

    Connection arguments: see ``FeastHookMixin`` and ``DatasetHookMixin``.
    """

    template_fields: Sequence[str] = (
        "entity_uri",
        "features",
        "output_uri",
        "timestamp_column",
        *FEAST_FIELDS,
        *DATASET_FIELDS,
    )
    ui_color = "#b8dcc6"

    def __init__(
        self,
        *,
        entity_uri: str,
        features: str | Sequence[str],
        output_uri: str,
        timestamp_column: str | None = "event_timestamp",
        full_feature_names: bool = False,
        pass_through_without_features: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pass_through_without_features = pass_through_without_features
        self.entity_uri = entity_uri
        self.features = features
        self.output_uri = output_uri
        self.timestamp_column = timestamp_column
        self.full_feature_names = full_feature_names

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.features import build_training_set

        features = arguments.optional_list(self.features, "features")
        if self.pass_through_without_features and not features:
            self.log.info("No feature references given: %s is used as it is.", self.entity_uri)
            return {"output_uri": self.entity_uri, "rows": None, "columns": None, "features": [],
                    "feature_service": None, "entity_uri": self.entity_uri}  # fmt: skip
        entities = self.dataset_hook.read(self.entity_uri)
        store = self.feast_hook.get_conn()
        training = build_training_set(
            store,
            entities,
            _service_or_refs(features or []),
            timestamp_column=arguments.optional_text(self.timestamp_column, "timestamp_column") or "event_timestamp",
            full_feature_names=self.full_feature_names,
        )
        info = self.dataset_hook.write(training.frame, self.output_uri)
        described = training.to_dict()
        self.log.info(
            "Training set of %d rows x %d columns written to %s: %d feature(s)%s joined point-in-time onto %s.",
            info.rows,
            len(info.columns),
            self.output_uri,
            len(training.features),
            f" (feature service {training.feature_service})" if training.feature_service else "",
            self.entity_uri,
        )
        return {
            "output_uri": self.output_uri,
            "rows": info.rows,
            "columns": info.columns,
            "features": described["features"],
            "feature_service": described["feature_service"],
            "entity_uri": self.entity_uri,
            "project": store.project,
        }


def _service_or_refs(features: list[str]) -> str | list[str]:
    """A lone name without ``view:`` is a feature service; anything else is a list of feature references."""
    return features[0] if len(features) == 1 and ":" not in features[0] else features
