"""Prediction drift: did the model's answers in production move away from its answers on its training holdout?

Input drift asks whether the data changed; prediction drift asks whether what the model *does* with it changed.
The two are reported side by side: inputs can drift in columns the model barely uses (no prediction drift),
and the predictions can shift while every input column on its own passes its test.

* reference: the version (the ``champion`` alias holder) scored on its stored holdout, rows it never trained on
  (``core.prediction.predict_frame``: ``prediction`` and, for classifiers, ``probability_<class>``);
* current: the same version's ``served`` predictions in the prediction log (``core.performance.log``) with
  ``start <= prediction_time < end``. Shadow rows and other versions' rows are left out: they are other models.

Each column is tested once with the input check's pinned methods and levels (``core.drift.detect_drift``):
``prediction`` as categorical for classifiers and numerical for regressors, every ``probability_<class>`` as
numerical. The verdict follows the input check's rule: drift when the share of drifted columns reaches
``drift_share`` (for a binary classifier ``probability_0`` and ``probability_1`` are one test twice, so a moved
probability is 2 of 3 columns). Per-column method and threshold overrides name input columns and are not used here.

Nothing to compare is said, never a failure: no log, no served prediction of the version in the window, or fewer
than ``min_rows`` rows on a side ("insufficient evidence", never "no drift").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlops_provider.core.drift import DriftResult, DriftSettings, ReportSection, detect_drift
from mlops_provider.core.errors import ConfigurationError, MlopsError
from mlops_provider.core.prediction import PREDICTION_COLUMN, PROBABILITY_PREFIX

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_MIN_ROWS = 100
CLASSIFICATION = "classification"  # the values of the version's mlops.task_type tag
REGRESSION = "regression"


@dataclass
class PredictionDrift:
    """The prediction drift of one version in one window: ``drift`` (the verdict), or ``skipped`` (why not)."""

    model_name: str
    version: str | None
    alias: str
    window_start: datetime
    window_end: datetime
    current_rows: int = 0
    reference_rows: int = 0
    reference_uri: str | None = None
    drift: DriftResult | None = None
    skipped: str | None = None
    untested_columns: list[str] = field(default_factory=list)
    reference: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    current: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    settings: DriftSettings | None = field(default=None, repr=False, compare=False)

    @property
    def window(self) -> str:
        return f"[{self.window_start.isoformat()}, {self.window_end.isoformat()})"

    def to_dict(self) -> dict[str, Any]:
        """What the operator returns under ``prediction_drift`` (small, JSON)."""
        common = {
            "version": self.version,
            "alias": self.alias,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "current_rows": self.current_rows,
        }
        if self.drift is None:
            return {"skipped": self.skipped, **common}
        return {
            "drift_detected": self.drift.drift_detected,
            "drift_share": self.drift.drift_share,
            "drifted_columns": self.drift.drifted_columns,
            "columns": self.drift.column_verdicts(),
            **common,
            "reference_rows": self.reference_rows,
            "reference_uri": self.reference_uri,
        }

    def headline(self) -> str:
        who = (
            f"{self.model_name} v{self.version} (@{self.alias})" if self.version else f"{self.model_name}@{self.alias}"
        )
        if self.drift is None:
            return f"Prediction drift of {who} in {self.window}: not tested: {self.skipped}."
        verdict = "DRIFT DETECTED" if self.drift.drift_detected else "no prediction drift"
        untested = f" The log has no {self.untested_columns} (not tested)." if self.untested_columns else ""
        return (
            f"Prediction drift of {who} in {self.window}: {verdict}. Reference: its predictions on its training "
            f"holdout ({self.reference_rows} rows); current: its served predictions logged in the window "
            f"({self.current_rows} rows). Reported beside the input drift; it does not change the input verdict."
            + untested
        )

    def summary(self) -> str:
        """One readable paragraph: the verdict, the numbers behind it, or why nothing was tested."""
        if self.drift is None:
            return self.headline()
        return self.headline() + "\n" + self.drift.summary()

    def report_section(self) -> ReportSection:
        """The "Prediction drift" section of the drift report."""
        return ReportSection(
            title="Prediction drift",
            note=self.headline(),
            reference=self.reference,
            current=self.current,
            result=self.drift,
            settings=self.settings,
        )


def prediction_window(
    window_start: Any, window_end: Any, *, default_start: Any = None, default_end: Any = None
) -> tuple[datetime, datetime]:
    """The window of prediction times, ``[start, end)``: the given bounds (which must carry a time zone), else the
    defaults (the run's data interval). Errors name ``prediction_window_start`` / ``prediction_window_end``."""
    from mlops_provider.core.windows import to_utc

    given_start = not _unset(window_start)
    given_end = not _unset(window_end)
    bounds = {
        "prediction_window_start": window_start if given_start else default_start,
        "prediction_window_end": window_end if given_end else default_end,
    }
    missing = [name for name, value in bounds.items() if value is None]
    if missing:
        raise ConfigurationError(
            f"No {' and '.join(missing)}: the run has no data interval (e.g. a manual run of an unscheduled DAG). "
            "Pass prediction_window_start and prediction_window_end (aware timestamps, e.g. "
            "'{{ data_interval_start }}'), or schedule the DAG so that each run has a data interval."
        )
    try:
        start = to_utc(bounds["prediction_window_start"], name="prediction_window_start", allow_naive=not given_start)
        end = to_utc(bounds["prediction_window_end"], name="prediction_window_end", allow_naive=not given_end)
    except MlopsError as error:
        raise ConfigurationError(str(error)) from None
    if end < start:
        raise ConfigurationError(
            f"The prediction window ends before it starts: prediction_window_end {end.isoformat()} < "
            f"prediction_window_start {start.isoformat()}. Swap them, or check the templates that produce them."
        )
    if end == start:
        source = "given bounds" if given_start or given_end else "run's data interval"
        raise ConfigurationError(
            f"The prediction window [{start.isoformat()}, {end.isoformat()}) from the {source} is empty. Pass "
            "prediction_window_start and prediction_window_end with the end after the start, or schedule the DAG "
            "with a timetable that has data intervals (e.g. CronDataIntervalTimetable)."
        )
    return start, end


def check_prediction_drift(
    *,
    model_name: str,
    version: str | None,
    alias: str,
    window_start: datetime,
    window_end: datetime,
    settings: DriftSettings,
    load_model: Callable[[], Any],
    load_holdout: Callable[[], tuple[pd.DataFrame, str]],
    task_type: str | None = None,
    log_root: str | None = None,
    s3_client: Any = None,
    min_rows: int = DEFAULT_MIN_ROWS,
) -> PredictionDrift:
    """Compare ``version``'s served predictions logged in ``[window_start, window_end)`` under ``log_root`` (None:
    the default root) with its predictions on its holdout, tested with ``settings``' methods and levels.

    The log is read first; the model and its holdout (``load_model``, ``load_holdout`` -> (frame, uri)) are loaded
    only when the window holds enough served predictions of the version. ``version`` None: the model has no
    ``alias`` version (nothing is served, nothing is compared).
    """
    from mlops_provider.core.errors import DatasetNotFoundError
    from mlops_provider.core.performance.log import read_prediction_log
    from mlops_provider.core.prediction import predict_frame

    outcome = PredictionDrift(model_name, version, alias, window_start, window_end)
    if version is None:
        outcome.skipped = f"{model_name!r} has no @{alias} version, so no prediction of it is served or logged"
        return outcome
    try:
        log = read_prediction_log(log_root, model_name, window_start, window_end, s3_client=s3_client)
    except DatasetNotFoundError as error:
        outcome.skipped = str(error).rstrip(".")
        return outcome
    current = served_predictions(log, version)
    outcome.current_rows = len(current)
    if current.empty:
        outcome.skipped = _nothing_served(log, version, alias)
        return outcome
    if len(current) < min_rows:
        outcome.skipped = (
            f"insufficient evidence: {len(current)} served predictions of version {version} were logged in the "
            f"window, fewer than prediction_min_rows={min_rows}; a longer window (or a lower prediction_min_rows) "
            "gives a verdict"
        )
        return outcome

    holdout, holdout_uri = load_holdout()
    model = load_model()
    reference = predict_frame(model, holdout, keep_columns=[], source=f"the holdout of {model_name} v{version}")
    outcome.reference_rows, outcome.reference_uri = len(reference), holdout_uri
    if len(reference) < min_rows:
        outcome.skipped = (
            f"insufficient evidence: the holdout of version {version} ({holdout_uri}) has {len(reference)} rows, "
            f"fewer than prediction_min_rows={min_rows}"
        )
        return outcome

    probabilities = [c for c in reference.columns if c.startswith(PROBABILITY_PREFIX)]
    logged = [c for c in probabilities if c in current.columns and current[c].notna().any()]
    outcome.untested_columns = [c for c in probabilities if c not in logged]
    columns = [PREDICTION_COLUMN, *logged]
    kind = task_type or _task_type(model, probabilities)
    reference_frame = _comparable(reference[columns], kind)
    current_frame = _comparable(current[columns].reset_index(drop=True), kind)
    tested = prediction_settings(settings, columns, kind)
    outcome.drift = detect_drift(reference_frame, current_frame, tested)
    outcome.reference, outcome.current, outcome.settings = reference_frame, current_frame, tested
    return outcome


def served_predictions(log: pd.DataFrame, version: str) -> pd.DataFrame:
    """The log rows ``version`` served (its answers went to the task's output): no shadow rows, no other version."""
    from mlops_provider.core.performance.log import SERVED

    if log.empty:
        return log
    keep = (log["model_version"].astype(str) == str(version)) & (log["role"].astype(str) == SERVED)
    return log[keep].reset_index(drop=True)


def prediction_settings(settings: DriftSettings, columns: list[str], task_type: str) -> DriftSettings:
    """The input check's methods, levels, dataset rule and sampling, for the prediction columns: ``prediction``
    categorical for a classifier and numerical for a regressor, the probabilities numerical."""
    classifier = task_type == CLASSIFICATION
    return DriftSettings(
        columns=list(columns),
        numerical_columns=[c for c in columns if c != PREDICTION_COLUMN or not classifier],
        categorical_columns=[PREDICTION_COLUMN] if classifier else [],
        num_method=settings.num_method,
        cat_method=settings.cat_method,
        num_threshold=settings.num_threshold,
        cat_threshold=settings.cat_threshold,
        drift_share=settings.drift_share,
        max_rows=settings.max_rows,
        report_rows=settings.report_rows,
        seed=settings.seed,
    )


def _task_type(model: Any, probabilities: list[str]) -> str:
    from sklearn.base import is_classifier

    return CLASSIFICATION if probabilities or is_classifier(model) else REGRESSION


def _comparable(frame: pd.DataFrame, task_type: str) -> pd.DataFrame:
    """For a classifier, class labels as text that reads the same on both sides: whole numbers as integers (a log
    file whose classes came back as 1.0 still says "1"), nulls kept as nulls."""
    if task_type != CLASSIFICATION:
        return frame
    import pandas as pd

    labels = frame[PREDICTION_COLUMN]
    present = labels.notna()
    values = labels[present]
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and bool((values == values.round()).all()):
        values = values.astype("int64")
    text = pd.Series(None, index=labels.index, dtype=object)
    text[present] = values.astype(str)
    return frame.assign(**{PREDICTION_COLUMN: text})


def _nothing_served(log: pd.DataFrame, version: str, alias: str) -> str:
    if log.empty:
        return "no prediction was logged in the window"
    counts = log.groupby([log["model_version"].astype(str), log["role"].astype(str)]).size()
    found = ", ".join(f"version {v} {role} ({n} rows)" for (v, role), n in counts.items())
    return (
        f"none of the {len(log)} predictions logged in the window was served by version {version} (@{alias}); "
        f"the log holds {found}"
    )


def _unset(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
